"""The debug backend (ALTTEXT_MODEL=debug): instant, deterministic, no model weights, no torch.

It says only what the pixels plainly show: the size and the main colour, e.g.
"A 640 by 480 image, mostly blue." Use it to develop a CMS plugin or try the API on a
laptop in a second, and in tests that need the real service around a predictable drafter.
Its drafts are not alt text anyone should publish.
"""
from __future__ import annotations

import time
from collections.abc import Sequence

from PIL import Image
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.base import Capabilities, Drafter
from models.draft import Draft, Evidence, ModelRef
from models.pixels import is_greyscale

MODEL_ID = "debug"
REVISION = "1"
# Named colours the main colour snaps to (nearest in RGB).
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 60, 220), "yellow": (235, 220, 40),
    "black": (10, 10, 10), "white": (245, 245, 245), "grey": (128, 128, 128), "purple": (130, 40, 160),
    "orange": (240, 140, 20), "brown": (120, 75, 35), "pink": (240, 150, 190),
}
CONFIDENCE = 0.9


def colour_name(rgb: Sequence[float]) -> str:
    """The palette colour nearest to ``rgb``."""
    return min(PALETTE, key=lambda name: sum((a - b) ** 2 for a, b in zip(rgb, PALETTE[name])))


def main_colour(image: Image.Image) -> str:
    """The palette colour covering most of the image (pixels snapped to the palette, then counted)."""
    small = image.convert("RGB").resize((32, 32), Image.Resampling.BOX) if max(image.size) > 32 else image.convert("RGB")
    counts: dict[str, int] = {}
    for count, rgb in small.getcolors(maxcolors=small.width * small.height):
        name = colour_name(rgb)
        counts[name] = counts.get(name, 0) + count
    # Ties go to the palette order, so the answer never depends on dict or pixel order.
    order = list(PALETTE)
    return max(counts, key=lambda name: (counts[name], -order.index(name)))


class DebugSettings(BaseSettings):
    """This backend's settings: ALTTEXT_DEBUG_* environment variables (or the .env file)."""

    model_config = SettingsConfigDict(env_prefix="ALTTEXT_DEBUG_", env_file=".env", extra="ignore")

    delay_ms: float = Field(0.0, ge=0, le=60_000, description="Wait this long in each model call.")


class DebugDrafter(Drafter):
    """Describes each image by its size and main colour. Same image in, same draft out."""

    about = "built in, no weights: describes size and main colour (for development and tests)"
    capabilities = Capabilities(takes_hints=False, batch_size=64, device="cpu")

    def __init__(self, delay_ms: float = 0.0) -> None:
        """``delay_ms``: wait this long in each ``draft`` call, to act like a slow model (a CMS
        plugin's spinner and timeouts, or a test that stops the server mid-job)."""
        if delay_ms < 0:
            raise ValueError("delay_ms must be at least 0")
        self._model = ModelRef(id=MODEL_ID, revision=REVISION, backend="debug")
        self.delay_s = delay_ms / 1000

    @classmethod
    def from_name(cls, name: str, **options) -> DebugDrafter:
        """ALTTEXT_MODEL=debug, with ALTTEXT_DEBUG_* settings from the environment (or .env)."""
        return cls(**(DebugSettings().model_dump() | options))

    @property
    def model(self) -> ModelRef:
        return self._model

    def draft(self, images: Sequence[Image.Image], hints: Sequence[str | None] | None = None) -> list[Draft]:
        if self.delay_s:
            time.sleep(self.delay_s)
        drafts = []
        for image in images:
            start = time.perf_counter()
            colour = main_colour(image)
            text = f"A {image.width} by {image.height} image, mostly {colour}."
            evidence = Evidence(kind="unknown", greyscale=is_greyscale(image))
            drafts.append(Draft(text=text, confidence=CONFIDENCE, evidence=evidence, model=self._model,
                                latency_ms=round((time.perf_counter() - start) * 1000, 2)))
        return drafts
