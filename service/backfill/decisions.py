"""One decision per item, from the page and the pipeline's AltResult, and the output row."""
from __future__ import annotations

from service.backfill.items import Item
from service.merge import alt_problems
from service.page import PageContext
from service.result import AltResult

DECISIONS = ("keep", "fill", "propose", "decorative", "review", "error")
COLUMNS = ("id", "src", "existing_alt", "new_alt", "decision", "confidence", "warnings", "reasons",
           "error_code", "page", "wp_post_id")

_REASONS = {
    "existing_alt_empty": "the existing alt is empty on an informative image",
    "existing_alt_filename": "the existing alt is a file name",
    "existing_alt_placeholder": "the existing alt is a placeholder",
    "existing_alt_too_long": "the existing alt is too long",
    "existing_alt_credit_only": "the existing alt is only a credit line",
    "existing_alt_duplicates_caption": "the existing alt repeats the caption",
    "low_confidence": "the draft's confidence is under the review threshold",
    "language_mismatch": "the page is not in a language we write",
}


def passes(page: PageContext, budget: int) -> bool:
    """Human alt that passes the quality rules is kept as it is: no image needs drafting for it."""
    return page.existing_alt is not None and page.role != "decorative" and not alt_problems(
        page.existing_alt, page, page.max_chars or budget)


def _human_alt(item: Item) -> str | None:
    """The alt the page has, exactly as it stands (PageContext holds it cleaned, for the rules):
    what the row reports and what a kept alt writes back, never a rewritten version of it."""
    return item.page.get("existing_alt")


def _base(item: Item) -> dict:
    row = {
        "id": item.id, "src": item.src,
        "existing_alt": _human_alt(item),
        "page": item.where.get("page"), "wp_post_id": item.where.get("wp_post_id"),
    }
    if "line" in item.where:  # an HTML occurrence: where to write it back
        row["location"] = {k: item.where.get(k) for k in ("selector", "kind", "attr", "line", "column", "tag")}
    return row


def keep_row(item: Item) -> dict:
    return {**_base(item), "new_alt": _human_alt(item), "decision": "keep", "confidence": 1.0,
            "warnings": [], "reasons": ["the existing alt passes the quality rules"], "error_code": None}


def error_row(item: Item, code: str, message: str) -> dict:
    return {**_base(item), "new_alt": None, "decision": "error", "confidence": None, "warnings": [],
            "reasons": [message], "error_code": code}


def result_row(item: Item, page: PageContext, result: AltResult) -> dict:
    warnings = list(result.warnings)
    reasons = [_REASONS[w] for w in warnings if w in _REASONS]
    if page.role == "decorative" or result.decorative:
        decision, new_alt = "decorative", ""
        reasons.insert(0, "the page marks the image decorative" if page.role == "decorative"
                       else "the image adds nothing to the text beside it")
    elif page.existing_alt is not None:
        if result.proposal is None:
            decision, new_alt = "keep", _human_alt(item)
            reasons.insert(0, "the existing alt passes the quality rules")
        else:
            decision, new_alt = "propose", result.proposal
    else:
        new_alt = result.alt
        decision = "review" if result.needs_review else "fill"
        reasons.insert(0, "the image has no alt text")
        if decision == "review" and len(reasons) == 1:
            reasons.append("a rule asks for a person to check it")
    return {**_base(item), "new_alt": new_alt, "decision": decision, "confidence": result.confidence,
            "warnings": warnings, "reasons": reasons, "error_code": None}
