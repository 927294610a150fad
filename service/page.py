"""What the service takes about an image's page: the request's input.

Page text is untrusted. It is cleaned once, here, when a PageContext is made (markup
stripped, control and bidi characters removed, whitespace normalised, capped), so
everything downstream - the pipeline's hint, the merge, the quality checks - works on
clean text and never cleans it again. The caption's credit line, agency tags, byline and
handout lead-in are split off once too: ``caption_body`` is the caption without them.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from service.text import MAX_INPUT_CHARS, sanitise, strip_credits

Role = Literal["informative", "decorative", "functional", "complex", "text"]

# A request item (a dict) carrying this key set to True holds page text a PageContext already
# cleaned (the dump of a validated API model, or a job item stored from one).
PAGE_TEXT_CLEAN = "page_text_clean"
_URL_CONTROLS = re.compile(r"[\x00-\x1f\x7f]")


class PageContext(BaseModel):
    """What the page already says about the image. All of it is untrusted text, cleaned on the
    way in: the text fields hold clean text."""

    model_config = ConfigDict(extra="forbid")

    caption: str | None = Field(None, max_length=5000, description="Caption that goes with the image, if any.")
    caption_visible: bool = Field(
        True, description="The caption is shown next to the image (a figcaption), so the alt must not repeat it."
    )
    context: str | None = Field(None, max_length=20000, description="Surrounding text or page title.")
    role: Role = "informative"
    link_href: str | None = Field(None, max_length=2000, description="Where the image links to (functional).")
    link_text: str | None = Field(
        None, max_length=500, description="Visible text inside the same link or button, beside the image."
    )
    action: str | None = Field(None, max_length=200, description="Button or link purpose if known, e.g. 'Search'.")
    lang: str = Field("en", min_length=2, max_length=35, description="BCP 47 language of the page.")
    existing_alt: str | None = Field(None, max_length=5000, description="Alt text the image has now.")
    max_chars: int | None = Field(None, ge=20, le=1000, description="Length budget; default from settings.")

    @field_validator("caption", "context", "link_href", "link_text", "action", "existing_alt")
    @classmethod
    def _clean(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or (info.context or {}).get(PAGE_TEXT_CLEAN):
            return value
        if info.field_name == "link_href":
            value = _URL_CONTROLS.sub("", value)  # as a browser reads an href: controls inside do not count
        return sanitise(value, limit=CLEAN_LIMITS[info.field_name])

    @classmethod
    def from_clean(cls, fields: Mapping[str, Any]) -> PageContext:
        """A PageContext from the fields of one that was already validated (an API item, a stored
        job item): checked again, but not cleaned twice, because cleaning is not idempotent for
        text that quotes entities ("&amp;amp;" reads "&amp;" once cleaned, "&" twice)."""
        return cls.model_validate(dict(fields), context={PAGE_TEXT_CLEAN: True})

    @property
    def caption_split(self) -> tuple[str, str | None]:
        """(caption body, medium): the clean caption without its credit line, agency tags, byline,
        handout lead-in and filing date, and the medium a lead-in named ("illustration"), if any."""
        return strip_credits(self.caption) if self.caption else ("", None)

    @property
    def caption_body(self) -> str:
        """The clean caption without its credit line ("" when there is no caption)."""
        return self.caption_split[0]


# How much of each page field is kept once clean (what each use cut it to before); nothing in
# an alt needs more.
CLEAN_LIMITS = {"caption": MAX_INPUT_CHARS, "context": MAX_INPUT_CHARS, "link_href": 2000,
                "link_text": MAX_INPUT_CHARS, "action": 200, "existing_alt": 100_000}
