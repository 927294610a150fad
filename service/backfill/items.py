"""One image occurrence to backfill, in a form that survives a checkpoint and a trip to a Ray worker."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from service.page import PageContext

# PageContext fields a source may set (max_chars comes from the run's settings).
PAGE_FIELDS = ("caption", "caption_visible", "context", "role", "link_href", "link_text", "action", "lang",
               "existing_alt")


@dataclass
class Item:
    """``id`` is stable across runs of the same source; ``src`` is a local path, an http(s)
    URL, or ``inline:`` for an image carried in ``data`` (an inline <svg>). ``where`` says how
    to write the result back (WXR post id; HTML file, tag index, tag name). A source that
    could not even make a usable item sets ``error`` = (code, message): it becomes an error row."""

    id: str
    src: str
    page: dict = field(default_factory=dict)
    where: dict = field(default_factory=dict)
    data: str | None = None
    error: tuple[str, str] | None = None

    def context(self) -> PageContext:
        return PageContext(**{k: v for k, v in self.page.items() if v is not None})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, row: dict) -> Item:
        row = dict(row)
        if row.get("error") is not None:
            row["error"] = tuple(row["error"])
        return cls(**row)
