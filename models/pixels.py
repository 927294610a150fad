"""Cheap pixel statistics: greyscale or colour, and what kind of image this is.

No model here, only numpy on a downscaled copy, so it costs about a millisecond.
The thresholds were chosen on COCO photos and on synthetic charts, logos,
screenshots and text images generated in the tests; they are heuristics and the
confidence the composer reports reflects that.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from models.draft import ImageKind

_ANALYSIS_SIDE = 256


@dataclass(frozen=True)
class PixelStats:
    greyscale: bool
    top_colour_share: float  # share of pixels in the 8 most common (quantised) colours
    distinct_colours: int  # distinct quantised colours
    background_share: float  # share of the single most common colour
    background_light: bool  # the most common colour is near white
    edge_density: float  # share of pixels on a strong edge


def _greyscale(rgb: np.ndarray) -> bool:
    # Channels agree almost everywhere. JPEG chroma noise gives a few units of spread
    # even on black-and-white photos, hence the tolerance; the 99th percentile ignores
    # a few stray pixels.
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # elementwise over the three planes: numpy's max/min along a length-3 last axis is ~20x slower
    spread = np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)
    return bool(np.percentile(spread, 99) <= 12)


def is_greyscale(image: Image.Image) -> bool:
    """Cheap check on a 64-pixel thumbnail, for backends that need nothing else."""
    small = image.convert("RGB")
    small.thumbnail((64, 64))
    return _greyscale(np.asarray(small, dtype=np.int16))


def pixel_stats(image: Image.Image) -> PixelStats:
    small = image.convert("RGB")
    small.thumbnail((_ANALYSIS_SIDE, _ANALYSIS_SIDE))
    rgb = np.asarray(small, dtype=np.int16)
    greyscale = _greyscale(rgb)

    # 32 levels per channel: fine enough that a photo's gradients spread over hundreds
    # of colours, coarse enough that JPEG noise on flat graphics stays in a few.
    quantised = (rgb >> 3).reshape(-1, 3)
    codes = quantised[:, 0] * 1024 + quantised[:, 1] * 32 + quantised[:, 2]
    counts = np.bincount(codes, minlength=32768)
    ordered = np.sort(counts)[::-1]
    total = float(codes.size)

    dominant = np.argmax(counts)
    background_light = bool(min(dominant // 1024, (dominant // 32) % 32, dominant % 32) >= 24)  # channels >= 192

    # the channel mean, summed in float64 as rgb.mean(axis=2) does, without its slow last-axis reduction
    grey = (rgb[..., 0].astype(np.float64) + rgb[..., 1] + rgb[..., 2]) / 3
    gx = np.abs(np.diff(grey, axis=1))
    gy = np.abs(np.diff(grey, axis=0))
    edges = (gx[:-1, :] > 40) | (gy[:, :-1] > 40)
    return PixelStats(
        greyscale=greyscale,
        top_colour_share=float(ordered[:8].sum() / total),
        distinct_colours=int((counts > total * 0.001).sum()),
        background_share=float(ordered[0] / total),
        background_light=background_light,
        edge_density=float(edges.mean()),
    )


def image_kind(stats: PixelStats, *, text_area: float, text_chars: int, object_count: int) -> ImageKind:
    """Classify the medium from pixel stats plus how much text OCR found.

    ``text_area`` is the share of the image covered by OCR boxes.
    """
    # Measured: generated charts, logos and flat drawings (PNG or JPEG) have >= 0.95 of
    # their pixels in 8 colours; COCO photos 0.05-0.76, a night shot 0.90.
    flat = stats.top_colour_share >= 0.93 and stats.distinct_colours <= 40
    # A sign or poster in a photo is still a photo: objects and natural colours say so.
    if (text_area > 0.25 and (flat or object_count == 0)) or (text_chars >= 40 and flat):
        return "screenshot" if stats.background_share < 0.85 and text_chars >= 80 else "text"
    if flat and stats.background_light and stats.background_share > 0.5 and text_chars >= 4 and object_count == 0:
        # a large plain background, a few solid colours and axis labels
        return "chart"
    if flat and object_count == 0:
        return "logo" if stats.distinct_colours <= 15 and text_chars < 25 else "illustration"
    return "photo"


# ImageNet classes that name a kind of picture rather than a thing in a photo. The photo
# models were not trained on these kinds, so what they name in them is a guess.
KIND_CLASSES: dict[str, ImageKind] = {
    "book jacket": "document", "envelope": "document", "menu": "document", "crossword puzzle": "document",
    "binder": "document", "packet": "document", "web site": "screenshot", "comic book": "illustration",
    "jigsaw puzzle": "map", "shower curtain": "map", "slide rule": "diagram", "oscilloscope": "chart",
}


def kind_from_classes(kind: ImageKind, labels: list[tuple[str, float]], best_object_score: float) -> ImageKind:
    """Refine a pixel-based ``kind`` with the classifier: a photo whose top classes say
    "book jacket" or "web site" and in which no object is detected with confidence is that
    kind of picture instead (a confident object keeps it a photo)."""
    if kind != "photo" or best_object_score >= 0.7:
        return kind
    for name, score in labels[:2]:
        if name in KIND_CLASSES and score >= 0.2:
            return KIND_CLASSES[name]
    return kind
