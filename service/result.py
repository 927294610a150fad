"""What the service answers about an image (the input is service.page.PageContext)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from models.draft import Draft

Source = Literal["human", "merged", "draft", "caption"]


class AltResult(BaseModel):
    alt: str = Field(description='Alt text to use; "" for a decorative image.')
    decorative: bool = False
    long_description: str | None = Field(
        None, description="Fuller description for charts, diagrams and maps, and the whole of a hidden caption "
        "too long for alt.")
    confidence: float = Field(ge=0.0, le=1.0)
    needs_review: bool
    warnings: list[str] = Field(default_factory=list, description="Machine-readable codes.")
    source: Source
    ai_generated: bool
    proposal: str | None = Field(None, description="Our suggestion when existing human alt is kept but fails a rule.")
    draft: Draft | None = None
