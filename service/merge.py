"""Draft + page context -> AltResult.

For now this keeps only the rules that protect users from day one (decorative images
get alt="", existing human alt is never replaced silently, low confidence is flagged);
the full merge and WCAG policy engine replaces the pass-through of the draft text.
"""
from __future__ import annotations

from models.draft import Draft
from service.result import AltResult, PageContext


def merge(draft: Draft, page: PageContext, *, max_chars: int, review_below: float) -> AltResult:
    if page.role == "decorative":
        return AltResult(
            alt="", decorative=True, confidence=1.0, needs_review=False, source="human", ai_generated=False, draft=draft
        )
    warnings = []
    if draft.confidence < review_below:
        warnings.append("low_confidence")
    alt = _fit(draft.text, max_chars)
    if alt != draft.text:
        warnings.append("truncated")
    if page.existing_alt and page.existing_alt.strip():
        # Human alt stays; ours is offered for a person to compare.
        return AltResult(
            alt=page.existing_alt.strip(),
            confidence=draft.confidence,
            needs_review=False,
            warnings=warnings,
            source="human",
            ai_generated=False,
            proposal=alt,
            draft=draft,
        )
    return AltResult(
        alt=alt,
        confidence=draft.confidence,
        needs_review=draft.confidence < review_below,
        warnings=warnings,
        source="draft",
        ai_generated=True,
        draft=draft,
    )


def _fit(text: str, max_chars: int) -> str:
    """Cut to the budget at a word boundary, never mid-word."""
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"
