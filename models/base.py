"""The drafter contract every backend implements, and what a backend declares about itself.

Callers (the service's batcher, the CLI, the evaluation harness) read everything they need
from here: ``capabilities`` says whether page hints are used, the preferred batch size and
the device; ``warm_up()`` loads weights before the service says it is ready. Nothing calls
``hasattr`` on a drafter or compares backend names.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from PIL import Image

from models.draft import Draft, ModelRef
from models.versions import installed_version


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do. ``takes_hints``: page text can change its draft (so caches key
    on it); ``batch_size``: images per ``draft`` call it prefers; ``device``: where it runs;
    ``dtype``: the precision of a local neural model's weights (None where that does not apply)."""

    takes_hints: bool = False
    batch_size: int = 8
    device: str = "cpu"
    dtype: str | None = None


class Drafter(ABC):
    """Batch of RGB images in, one Draft per image out, in the same order.

    ``hints`` are optional per-image page texts (caption/context, already cleaned by the
    service) that a promptable model may use; backends whose ``capabilities.takes_hints``
    is False ignore them.

    A backend also declares, as class attributes, what it needs: ``requires`` (label ->
    PyPI distribution, for ``alttext models``) and ``settings_options`` (which of the
    generic drafter settings - revision, device, dtype, batch_size - its constructor takes).
    """

    requires: ClassVar[Mapping[str, str]] = {}
    settings_options: ClassVar[tuple[str, ...]] = ()
    about: ClassVar[str] = ""

    @property
    @abstractmethod
    def model(self) -> ModelRef: ...

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities()

    @abstractmethod
    def draft(self, images: Sequence[Image.Image], hints: Sequence[str | None] | None = None) -> list[Draft]: ...

    def warm_up(self) -> None:
        """Load whatever is loaded lazily, so the first real call is as fast as the next."""

    def health(self) -> tuple[bool, str] | None:
        """For a backend that depends on a remote server: (answers, detail), cheap enough for
        every /ready call. None (the default) means there is nothing remote to check."""
        return None

    def add_listener(self, listener: Callable[[float, str], None]) -> None:
        """Be told of every remote request: (seconds, outcome: "ok" or an error code).
        Local backends make no remote requests, so the default ignores it."""

    @classmethod
    def from_name(cls, name: str, **options: Any) -> Drafter:
        """Build the backend that ``name`` (the ALTTEXT_MODEL value) chose. Backends that take
        the name as a model id (transformers, ``openai:MODEL``) override this."""
        return cls(**options)

    @classmethod
    def describe_requirements(cls) -> str:
        """One line for ``alttext models``: each required distribution and its installed version."""
        parts = [f"{label}: {pkg} {installed_version(pkg) or 'MISSING'}" for label, pkg in cls.requires.items()]
        return "; ".join(parts + ([cls.about] if cls.about else []))

    @classmethod
    def options_from(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """The subset of generic drafter settings this backend takes (None means unset)."""
        return {k: values[k] for k in cls.settings_options if values.get(k) is not None}


class WrappingDrafter(Drafter):
    """A drafter around another one (counting, memoising, caching): it is the inner model, with
    the inner capabilities, warm-up and health; subclasses override ``draft`` only."""

    def __init__(self, inner: Drafter) -> None:
        self.inner = inner

    @property
    def model(self) -> ModelRef:
        return self.inner.model

    @property
    def capabilities(self) -> Capabilities:
        return self.inner.capabilities

    def draft(self, images: Sequence[Image.Image], hints: Sequence[str | None] | None = None) -> list[Draft]:
        return self.inner.draft(images, hints)

    def warm_up(self) -> None:
        self.inner.warm_up()

    def health(self) -> tuple[bool, str] | None:
        return self.inner.health()

    def add_listener(self, listener: Callable[[float, str], None]) -> None:
        self.inner.add_listener(listener)
