"""Accessible names the way browsers compute them (W3C accname 1.2, the parts images use).

Order: aria-labelledby (the referenced elements' text, even when they are hidden),
aria-label, then the element's native name (img/input/area: ``alt``; svg: its ``<title>``
child), then the ``title`` attribute. An ``<object>``'s fallback content is not a name: it
is shown only when the object fails to load (axe-core's object-alt agrees).
"""
from __future__ import annotations

from dataclasses import dataclass

from selectolax.lexbor import LexborNode

from service.page_images import ImageOccurrence, PageImages, css_escape, visible_text

PRESENTATIONAL = frozenset({"none", "presentation"})


@dataclass(frozen=True)
class Name:
    text: str
    source: str  # aria-labelledby, aria-label, alt, svg-title, content, title, none


def _norm(text: str | None) -> str:
    return " ".join((text or "").split())


def _labelledby(node: LexborNode, page: PageImages) -> str:
    ids = (node.attributes.get("aria-labelledby") or "").split()
    parts = []
    for ident in ids:
        target = page.parser.css_first(f"#{css_escape(ident)}")
        if target is not None:
            label = _norm(target.attributes.get("aria-label")) or visible_text(target, alt_text=True) or \
                _norm(target.text(deep=True))
            parts.append(label)
    return _norm(" ".join(parts))


def accessible_name(image: ImageOccurrence, page: PageImages) -> Name:
    node, attrs = image.node, image.attrs
    if node is not None:
        by_id = _labelledby(node, page)
        if by_id:
            return Name(by_id, "aria-labelledby")
    if _norm(attrs.get("aria-label")):
        return Name(_norm(attrs.get("aria-label")), "aria-label")
    if image.kind in ("img", "input-image", "area") and image.alt is not None and _norm(image.alt):
        return Name(_norm(image.alt), "alt")
    if image.kind == "svg" and node is not None:
        title = next((c for c in node.iter() if c.tag == "title"), None)
        if title is not None and _norm(title.text(deep=True)):
            return Name(_norm(title.text(deep=True)), "svg-title")
    if _norm(attrs.get("title")):
        return Name(_norm(attrs.get("title")), "title")
    if image.kind == "input-image" and _norm(attrs.get("value")):
        return Name(_norm(attrs.get("value")), "value")
    return Name("", "none")


def control_has_name(image: ImageOccurrence, page: PageImages) -> bool:
    """Does the link or button around the image get a name from anything but this image?"""
    control = image.control
    if control is None or image.node is None:
        return True
    if control.text:
        return True
    ctrl = image.node.parent
    while ctrl is not None and ctrl.is_element_node:
        if (ctrl.tag == "a" and ctrl.attributes.get("href") is not None) or ctrl.tag == "button" or \
                (ctrl.attributes.get("role") or "").strip().lower() in ("link", "button"):
            break
        ctrl = ctrl.parent
    if ctrl is None or not ctrl.is_element_node:
        return True
    if _norm(ctrl.attributes.get("aria-label")) or _labelledby(ctrl, page) or _norm(ctrl.attributes.get("title")):
        return True
    for other in page.images:
        if other is image or other.hidden or other.control is None or other.node is None:
            continue
        parent = other.node.parent
        while parent is not None and parent.is_element_node and parent.mem_id != ctrl.mem_id:
            parent = parent.parent
        if parent is not None and parent.is_element_node and accessible_name(other, page).text \
                and (other.role or "") not in PRESENTATIONAL:
            return True
    return False
