"""The photos benchmarks send: the shipped COCO test photos, each made unique so no cache can answer."""
from __future__ import annotations

import time
from functools import lru_cache
from pathlib import Path

PHOTOS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "coco"
# Shipped photos in which the embedded default reads text (a stop sign, a street sign). Its
# throughput target is for photos without text, so its rows leave these out (checked in tests).
PHOTOS_WITH_TEXT = frozenset({"000000122745", "000000226111"})


def photos(n: int, *, without_text: bool = False) -> list[bytes]:
    """``n`` distinct JPEGs: shipped photos with a unique trailing tag (decoders ignore it)."""
    return [photo(i, without_text=without_text) for i in range(n)]


def photo(i: int, *, without_text: bool = False) -> bytes:
    """The ``i``-th shipped photo with a tag no other call gives, so no cache can answer it.
    ``without_text``: only the photos in which the embedded default reads no text."""
    files = _photo_bytes(without_text)
    return files[i % len(files)] + f"alttext-bench-{i}-{time.time_ns()}".encode()


@lru_cache(maxsize=2)
def _photo_bytes(without_text: bool) -> tuple[bytes, ...]:
    return tuple(f.read_bytes() for f in sorted(PHOTOS.glob("*.jpg")) if not (without_text and f.stem in PHOTOS_WITH_TEXT))
