"""Photos for measuring activation ranges when a network is quantized to int8."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

FOLDER = Path(__file__).resolve().parent.parent.parent / "tests" / "fixtures" / "coco"


def photos() -> list[np.ndarray]:
    paths = sorted(FOLDER.glob("*.jpg"))
    if not paths:
        raise RuntimeError(f"no calibration photos in {FOLDER}")
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]
