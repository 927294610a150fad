"""Text in the image, read with RapidOCR's bundled PP-OCRv4 models (ONNX, in the wheel).

Two choices that matter for speed and output:
- detection runs with the long side capped at 640 px; the package default upscales the
  short side to 736 px, which costs about 5x (440 ms vs 85 ms per COCO photo here) for
  no gain on signs and screenshots;
- the recogniser (trained mostly on Chinese) often drops the spaces between Latin
  words ("OPEN24HOURS"); we put them back where the line's pixels show a word gap.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from statistics import median

import numpy as np
from PIL import Image

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


class TextReader:
    def __init__(self, min_score: float = 0.8) -> None:
        from rapidocr_onnxruntime import RapidOCR

        self.engine = RapidOCR(det_limit_type="max", det_limit_side_len=640, use_cls=False)
        self.min_score = min_score

    def read(self, image: Image.Image) -> list[TextLine]:
        """Lines of confidently read text, top to bottom. Fragments without a Latin letter
        or digit, or shorter than 2 characters, are dropped: in photos they are noise."""
        rgb = np.asarray(image)
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
