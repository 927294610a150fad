"""The drafter contract every backend implements."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from PIL import Image

from models.draft import Draft, ModelRef


@runtime_checkable
class Drafter(Protocol):
    """Batch of RGB images in, one Draft per image out, in the same order.

    ``hints`` are optional per-image page texts (caption/context, already sanitised
    by the service) that a promptable model may use; backends that cannot take a
    prompt ignore them.
    """

    @property
    def model(self) -> ModelRef: ...

    def draft(self, images: Sequence[Image.Image], hints: Sequence[str | None] | None = None) -> list[Draft]: ...
