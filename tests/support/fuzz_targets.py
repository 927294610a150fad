"""Fuzz targets shared by the fast hypothesis tests (tests/service/test_fuzz.py) and the long
atheris run (scripts/fuzz.py): each takes bytes, runs the real code and checks what a user
would notice. A target raising anything but AssertionError-free success is a finding; keep
its input under tests/fixtures/fuzz/<target>/ and test_fuzz replays it for ever.
"""
from __future__ import annotations

import re
import unicodedata

from pydantic import ValidationError

from models.draft import Draft, Evidence, ModelRef
from models.imageio import ImageError, load_image
from service.merge import link_purpose, merge
from service.page import PageContext
from service.text import sanitise

_TAG = re.compile(r"</?[A-Za-z!?][^<>]*>")
_BAD_CATEGORIES = ("Cc", "Cf", "Zl", "Zp", "Cs")
_MODEL = ModelRef(id="fuzz", revision="1", backend="test")
ROLES = ("informative", "decorative", "functional", "complex", "text")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass" if b"\xed" in data else "replace") if data else ""


def _clean(value: str) -> None:
    assert not any(unicodedata.category(ch) in _BAD_CATEGORIES for ch in value), repr(value)
    assert not _TAG.search(value), repr(value)


def image_loader(data: bytes) -> None:
    """Any bytes: an RGB image of the stated size, or an ImageError with a known code."""
    try:
        out = load_image(data, max_pixels=4_000_000)
    except ImageError as err:
        assert err.code in {"invalid_image", "image_too_large", "unsupported_media_type"}, err.code
        assert err.reason
    else:
        assert out.image.mode == "RGB" and out.image.size == (out.width, out.height)


def text_sanitiser(data: bytes) -> None:
    """Any text: no control, format, surrogate or separator characters, no tags, within the limit."""
    try:
        text = _text(data)
    except UnicodeDecodeError:
        return
    out = sanitise(text, limit=300)
    _clean(out)
    assert len(out) <= 300


def merge_step(data: bytes) -> None:
    """Any page fields and draft text: an AltResult within the budget, clean text, and a
    link purpose only from http(s), mailto, tel or relative addresses."""
    parts = (data + b"\0" * 8).split(b"\0")
    try:
        fields = [_text(p)[:400] for p in parts[:7]]
    except UnicodeDecodeError:
        return
    role = ROLES[data[0] % len(ROLES)] if data else "informative"
    max_chars = 20 + (data[-1] if data else 0)
    draft_text, caption, context, existing, href, link_text, action = fields
    try:
        page = PageContext(caption=caption or None, context=context or None, existing_alt=existing or None,
                           link_href=href or None, link_text=link_text or None, action=action[:200] or None,
                           role=role, caption_visible=bool(len(data) % 2), max_chars=max_chars)
    except ValidationError:  # the API answers 422 for such fields (e.g. lone surrogates): not merge's input
        return
    draft = None if role == "decorative" else Draft(text=draft_text or "A picture.", confidence=0.7,
                                                     evidence=Evidence(text=action[:50]), model=_MODEL,
                                                     latency_ms=1.0)
    result = merge(draft, page, max_chars=max_chars, nlp_mode="rules")
    for value, ours in ((result.alt, result.source != "human"), (result.proposal or "", True)):
        _clean(value)
        if ours:  # kept human alt is never rewritten, even when over the budget (it gets a warning)
            assert len(value) <= max_chars, (len(value), max_chars, value)
    purpose = link_purpose(href)
    if purpose is not None:
        scheme = re.match(r"^\s*([A-Za-z][A-Za-z0-9+.-]*):", re.sub(r"[\x00-\x1f\x7f]", "", href))
        assert scheme is None or scheme.group(1).lower() in ("http", "https", "mailto", "tel"), (href, purpose)


TARGETS = {"image_loader": image_loader, "text_sanitiser": text_sanitiser, "merge_step": merge_step}
