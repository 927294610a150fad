"""HTML pages for backfill: image occurrences (via ``service.page_images``) turned into items,
and alt attributes written back without touching any other byte.

Pages are decoded as UTF-8 with ``surrogateescape``, so any page (even a Latin-1 one)
re-encodes to exactly the bytes it came from; inserted text is ASCII (character references).
"""
from __future__ import annotations

import hashlib
import re

from service.page_images import ImageOccurrence, PageImages, extract_images

# The attribute that carries an occurrence's text alternative.
TEXT_ATTR = {"img": "alt", "area": "alt", "input-image": "alt", "role-img": "aria-label", "svg": "aria-label",
             "object": "aria-label"}


def decode(body: bytes) -> str:
    return body.decode("utf-8", errors="surrogateescape")


def clean(text: str | None) -> str | None:
    """Lone surrogates (bytes that were not UTF-8) become U+FFFD in text we pass on."""
    if text is None:
        return None
    return text.encode("utf-8", errors="replace").decode("utf-8")


def page_items(body: bytes, url: str | None) -> list[tuple[ImageOccurrence, dict, str | None, str | None]]:
    """(occurrence, PageContext fields, image source, inline SVG) for every image on the page."""
    text = decode(body)
    page = extract_images(text, url)
    return [_fields(occ, page) for occ in page.images]


def _fields(occ: ImageOccurrence, page: PageImages):
    attr = TEXT_ATTR[occ.kind]
    existing = occ.attrs.get(attr) if attr in occ.attrs else None
    fields: dict = {"lang": clean(occ.lang or page.lang or "en")[:35], "existing_alt": clean(existing)}
    if len(fields["lang"]) < 2:
        fields["lang"] = "en"
    if occ.hidden or occ.role in ("presentation", "none"):
        fields["role"] = "decorative"
    if occ.caption:
        fields["caption"], fields["caption_visible"] = clean(occ.caption[:5000]), True
    src = occ.src
    if occ.control is not None and fields.get("role") != "decorative":
        fields["role"] = "functional"
        if occ.control.href:
            fields["link_href"] = clean(occ.control.href[:2000])
        text = occ.control.text or occ.control.heading
        if text:
            fields["link_text"] = clean(text[:500])
        if occ.kind == "input-image":
            action = occ.attrs.get("value") or occ.attrs.get("title")
            if action:
                fields["action"] = clean(action[:200])
    if occ.kind == "area":
        src = _map_image(occ, page)
    context = " | ".join(p for p in (occ.nearby_text[:500], page.title[:200]) if p)
    if context:
        fields["context"] = clean(context)
    inline = None
    if occ.kind == "svg" and occ.node is not None:
        inline, src = clean(occ.node.html), None
    return occ, {k: v for k, v in fields.items() if v is not None}, src, inline


def _map_image(occ: ImageOccurrence, page: PageImages) -> str | None:
    """An <area>'s pixels are those of the image that uses its <map>."""
    node = occ.node.parent if occ.node is not None else None
    while node is not None and node.tag != "map":
        node = node.parent
    if node is None:
        return None
    name = node.attributes.get("name") or node.attributes.get("id") or ""
    for other in page.images:
        if other.kind == "img" and (other.attrs.get("usemap") or "").lstrip("#") == name:
            return other.src
    return None


# ----------------------------------------------------------------------------- writing back

_START_TAG = re.compile(r"""<[A-Za-z][^\s/>]*(?:\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?)*\s*/?>""")
_ATTR = re.compile(r"""\s+([^\s"'>/=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'=<>`]+))?""")


def start_tag_span(text: str, line: int | None, column: int | None) -> tuple[int, int] | None:
    """Where the start tag written at (line, column) (1-based, lines counted at \\n) begins and ends."""
    if not line or not column:
        return None
    pos = 0
    for _ in range(line - 1):
        pos = text.find("\n", pos) + 1
        if pos == 0:
            return None
    start = pos + column - 1
    match = _START_TAG.match(text, start)
    return (start, match.end()) if match else None


def tag_fingerprint(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", errors="surrogateescape")).hexdigest()[:16]


def start_tag_fingerprint(element_html: str) -> str | None:
    """Fingerprint of the start tag that begins ``element_html`` (the element as written)."""
    match = _START_TAG.match(element_html)
    return tag_fingerprint(match.group(0)) if match else None


def set_attribute(raw: str, name: str, value: str) -> str:
    """The start tag ``raw`` with attribute ``name`` set to ``value``; everything else as written."""
    escaped = (value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
               .encode("ascii", "xmlcharrefreplace").decode("ascii"))
    head = re.match(r"<[^\s/>]+", raw)
    pos = head.end() if head else 1
    while True:
        match = _ATTR.match(raw, pos)
        if not match:
            break
        if match.group(1).lower() == name:
            return raw[:match.start()] + f' {name}="{escaped}"' + raw[match.end():]
        pos = match.end()
    end = len(raw) - (2 if raw.endswith("/>") else 1)
    while end > 0 and raw[end - 1] in " \t\r\n":
        end -= 1
    return raw[:end] + f' {name}="{escaped}"' + raw[end:]
