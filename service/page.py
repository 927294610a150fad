"""What the service takes about an image's page: the request's input, untrusted text included."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["informative", "decorative", "functional", "complex", "text"]


class PageContext(BaseModel):
    """What the page already says about the image. All of it is untrusted text."""

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
