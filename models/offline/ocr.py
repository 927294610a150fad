"""Text in the image, read with RapidOCR's bundled PP-OCRv4 models (ONNX, in the wheel).

Three choices that matter for speed and output:
- detection runs with ``det_limit_type="max"``; the package default upscales the short
  side to 736 px, which costs about 5x (440 ms vs 85 ms per COCO photo here) for no gain
  on signs and screenshots (with "max", RapidOCR keeps images up to 960 px as they are);
- a cheap gate first on large images: the same detection model on a copy with the long
  side at ``GATE_SIDE`` px (a quarter of the pixels of a 640 px photo: about 17 ms against
  about 90 ms on one core). Only when it finds a text region does the full read run; most
  photos have none, and a photo without text then costs the gate alone. The price: text
  too small to show at that size is no longer read (on COCO dev, 14 of the 24 photos with
  text had only such small text: a shop name far away, a bus number; on Concadia's 256 px
  images the gate does not run). ``evaluation/bench_offline.py`` measures the agreement;
- the recogniser (trained mostly on Chinese) often drops the spaces between Latin
  words ("OPEN24HOURS"); we put them back where the line's pixels show a word gap.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from statistics import median

import numpy as np
from PIL import Image

from models.versions import package_dir

_LATIN = re.compile(r"[A-Za-z0-9]")


@dataclass(frozen=True)
class TextLine:
    text: str
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels


def _word_gaps(grey: np.ndarray, box: tuple[float, float, float, float]) -> list[float]:
    """x positions (image pixels) of the blank column runs in a text line wide enough to be
    word gaps: wider than a quarter of the line height and twice the usual letter spacing."""
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    line = grey[max(0, y0):y1, max(0, x0):x1]
    if line.size == 0:
        return []
    background = np.median(line)
    ink = (np.abs(line - background) > 60).any(axis=0)
    gaps, run_start = [], None
    for x, has_ink in enumerate(ink):
        if not has_ink and run_start is None:
            run_start = x
        elif has_ink and run_start is not None:
            if run_start > 0:  # ignore the margin before the first letter
                gaps.append((run_start, x))
            run_start = None
    if not gaps:
        return []
    usual = median(end - start for start, end in gaps)
    wide = max(0.25 * line.shape[0], 2 * usual)
    return [max(0, x0) + (start + end) / 2 for start, end in gaps if end - start > wide]


def _respace(chars: list[str], char_boxes: list, gaps: list[float]) -> str:
    """Put a space between the two characters on either side of each word gap.

    The recogniser (trained mostly on Chinese text) often drops spaces between Latin
    words; its per-character boxes are too rough to measure spacing, the pixels are not.
    """
    centres = [sum(p[0] for p in b) / len(b) for b in char_boxes]
    out = [chars[0]]
    for i in range(1, len(chars)):
        if chars[i] != " " and out[-1] != " " and any(centres[i - 1] < g < centres[i] for g in gaps):
            out.append(" ")
        out.append(chars[i])
    return "".join(out)


def _det_model() -> Path:
    folder = package_dir("rapidocr_onnxruntime")
    if folder is None:
        raise RuntimeError("rapidocr-onnxruntime is not installed; run scripts/setup.sh")
    return folder / "models" / "ch_PP-OCRv4_det_infer.onnx"


GATE_SIDE = 320  # long side of the gate's copy, a multiple of 32 (the detector's stride)
GATE_MIN_SIDE = 480  # smaller images go straight to the full read: the gate would save little
GATE_THRESHOLD = 0.3  # text probability per pixel; the detector's own binarisation threshold
GATE_MIN_PIXELS = 3  # gate pixels above the threshold, so that a speck of noise is not text


class TextReader:
    """``threads``: ONNX Runtime threads per call. The drafter runs several images at once,
    one per core, so one thread each and no spinning thread pool competing for the cores."""

    def __init__(self, min_score: float = 0.8, *, threads: int = 1, gate: bool = True) -> None:
        from rapidocr_onnxruntime import RapidOCR

        det_model = _det_model()  # the text detection model bundled in the wheel

        self.engine = RapidOCR(det_model_path=str(det_model), det_limit_type="max", det_limit_side_len=640,
                               use_cls=False, intra_op_num_threads=threads, inter_op_num_threads=1)
        if find_spec("onnx") is not None:
            from models.offline.ort import model_session

            # RapidOCR's own session turns ONNX Runtime's memory arena off, so every call
            # allocates its buffers afresh; ours keeps it (and the optimized copy, see
            # fold_pads): 1-2.5 ms less per gate call on one core (12.9 -> 11.9, 14.3 -> 11.8
            # in two runs), the same outputs bit for bit
            self.engine.text_det.infer.session = model_session(det_model.read_bytes(),
                                                               threads=threads if threads > 0 else None)
        self.min_score = min_score
        self.gate = gate

    def has_text(self, rgb: np.ndarray) -> bool:
        """Whether a downscaled copy shows any text region: the text detector on a
        ``GATE_SIDE`` px copy, thresholded per pixel (no box building, no recognition)."""
        import cv2

        det = self.engine.text_det
        h, w = rgb.shape[:2]
        ratio = min(1.0, GATE_SIDE / max(h, w))
        size = (max(32, round(w * ratio / 32) * 32), max(32, round(h * ratio / 32) * 32))
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        blob = ((small.astype(np.float32) * (1 / 255.0) - 0.5) / 0.5).transpose(2, 0, 1)[None]
        probability = det.infer(np.ascontiguousarray(blob, dtype=np.float32))[0]
        return int((probability > GATE_THRESHOLD).sum()) >= GATE_MIN_PIXELS

    def read(self, image: Image.Image, rgb: np.ndarray | None = None) -> list[TextLine]:
        """Lines of confidently read text, top to bottom. Fragments without a Latin letter
        or digit, or shorter than 2 characters, are dropped: in photos they are noise.
        ``rgb``: the image as an array, when the caller has it already."""
        rgb = np.asarray(image) if rgb is None else rgb
        if self.gate and max(rgb.shape[:2]) >= GATE_MIN_SIDE and not self.has_text(rgb):
            return []
        result, _ = self.engine(rgb, return_word_box=True)
        grey = rgb.mean(axis=2) if result else None
        lines = []
        for item in result or []:
            quad, text, score = item[0], item[1], float(item[2])
            xs = [p[0] for p in quad]
            ys = [p[1] for p in quad]
            box = (min(xs), min(ys), max(xs), max(ys))
            if len(item) >= 5 and item[4] and len(item[4]) == len(item[3]):
                text = _respace(list(item[4]), item[3], _word_gaps(grey, box))
            text = " ".join(text.split())
            if score < self.min_score or len(text) < 2 or not _LATIN.search(text):
                continue
            lines.append(TextLine(text, score, box))
        return sorted(lines, key=lambda line: (round(line.box[1] / 10), line.box[0]))
