"""Drafters for tests: ``ColourDrafter``, a tiny real backend that names the mean colour (fast
enough for hundreds of requests, and it fails loudly if two threads ever call it at once,
because real backends are not thread-safe), and ``CountingDrafter``, which wraps a real
drafter and counts the images it was asked to describe."""
from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from PIL import ImageStat

from models.base import Drafter, WrappingDrafter
from models.draft import Draft, Evidence, ModelRef

PALETTE = {
    "red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 60, 220), "yellow": (235, 220, 40),
    "black": (10, 10, 10), "white": (245, 245, 245), "grey": (128, 128, 128), "purple": (130, 40, 160),
    "orange": (240, 140, 20),
}


def colour_name(rgb: Sequence[float]) -> str:
    return min(PALETTE, key=lambda n: sum((a - b) ** 2 for a, b in zip(rgb, PALETTE[n])))


class ColourDrafter(Drafter):
    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.batches: list[int] = []
        self._busy = threading.Lock()
        self._model = ModelRef(id="tiny-colour", revision="1", backend="test")

    @property
    def model(self) -> ModelRef:
        return self._model

    def draft(self, images, hints=None) -> list[Draft]:
        if not self._busy.acquire(blocking=False):
            raise RuntimeError("ColourDrafter called from two threads at once")
        try:
            start = time.perf_counter()
            self.batches.append(len(images))
            if self.delay_s:
                time.sleep(self.delay_s)
            out = []
            for im in images:
                mean = ImageStat.Stat(im.convert("RGB")).mean
                name = colour_name(mean)
                out.append(Draft(text=f"A mostly {name} image.", confidence=0.9,
                                 evidence=Evidence(kind="illustration", greyscale=name in ("black", "white", "grey")),
                                 model=self._model, latency_ms=(time.perf_counter() - start) * 1000))
            return out
        finally:
            self._busy.release()


class CountingDrafter(WrappingDrafter):
    """Wraps a real drafter and records how many images it was asked to describe."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.images = 0

    def draft(self, images, hints=None):
        self.images += len(images)
        return self.inner.draft(images, hints)
