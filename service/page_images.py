"""HTML page -> every image occurrence, with what the page says about each one.

One home for "which images does this page show, and in what context": the audit
(`service/audit/`) and the backfill's HTML source both read pages through here.

The DOM comes from selectolax's lexbor engine (an HTML5-conformant parser, so the tree
is the one browsers build). lexbor keeps no source positions, so a second pass with the
standard library's tokenizer records where each start tag was written (line, column,
the tag as written); the two are matched by tag name and attributes in document order.

Occurrences, in document order:
- ``img`` (a lazy-loaded ``data-src`` / ``data-srcset`` is the effective source when
  ``src`` is missing or a placeholder; ``<picture><source srcset>`` candidates are kept)
- ``input type=image``, ``area`` (with the map's image), any element with ``role=img``,
  inline ``svg`` and ``object``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

from selectolax.lexbor import LexborHTMLParser, LexborNode

VOID = frozenset("area base br col embed hr img input link meta param source track wbr".split())
_SKIP_TEXT = frozenset({"script", "style", "template", "noscript", "head", "title"})
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_BLOCKS = frozenset("""address article aside blockquote body dd details div dl dt fieldset figcaption figure footer form
h1 h2 h3 h4 h5 h6 header li main nav ol p section table td th tr ul""".split())
_LAZY_SRC = ("data-src", "data-lazy-src", "data-original", "data-lazy", "data-url")
_LAZY_SRCSET = ("data-srcset", "data-lazy-srcset")
_PLACEHOLDER_SRC = re.compile(r"^(?:data:|about:blank$|#$)|(?:^|/)(?:blank|spacer|pixel|placeholder|lazy|loading|"
                              r"transparent|1x1|grey|gray|empty)[\w.-]*\.(?:gif|png|svg|jpe?g|webp)(?:$|\?)", re.I)
HTML_LIMIT = 2000  # an element's source beyond this is cut (inline SVG can be huge)


@dataclass
class Control:
    """The link or button an image sits in (or is, for ``input type=image``)."""

    tag: str  # a, button, input, area, or the element carrying role=link/button
    href: str | None
    text: str  # the control's own text, without this image's contribution
    heading: str | None  # a card heading (h1-h6) inside the same link
    other_images: int  # other images inside the control that could give it a name


@dataclass
class ImageOccurrence:
    index: int  # document order, 0-based
    kind: str  # img, input-image, area, role-img, svg, object
    tag: str
    attrs: dict[str, str | None]
    alt: str | None  # the alt attribute as written; None when absent
    src: str | None  # effective source, resolved against the page URL
    srcset: list[str]  # other candidates: srcset, data-srcset, <picture><source>
    lazy: bool  # the effective source came from data-src / data-srcset
    role: str | None  # first token of an explicit role attribute, lower-cased
    hidden: bool  # aria-hidden="true" or the hidden attribute, on it or an ancestor
    caption: str | None  # figcaption of the enclosing figure
    control: Control | None
    nearby_text: str  # text beside the image in its block (before, then after)
    lang: str | None  # nearest lang attribute (the element's or an ancestor's)
    selector: str
    html: str  # the element as written in the source
    line: int | None  # 1-based source line of the start tag
    column: int | None  # 1-based
    width: str | None = None
    height: str | None = None
    node: LexborNode | None = field(default=None, repr=False, compare=False)


@dataclass
class PageImages:
    url: str | None
    lang: str | None  # <html lang>
    title: str
    images: list[ImageOccurrence]
    parser: LexborHTMLParser = field(repr=False, compare=False)

    def by_id(self, element_id: str) -> LexborNode | None:
        return self.parser.css_first(f"#{css_escape(element_id)}") if element_id else None


# --- source positions ---------------------------------------------------------------------


@dataclass
class _Tag:
    tag: str
    attrs: dict[str, str | None]
    start: int
    end: int  # end of the element (end tag included) once known, else end of the start tag
    line: int
    column: int
    used: bool = False


class _Scanner(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\r\n|\n|\r", source)]
        self.tags: dict[str, list[_Tag]] = {}
        self.open: list[_Tag] = []

    def _offset(self) -> int:
        line, col = self.getpos()
        return self.line_starts[line - 1] + col

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, attrs, void=tag in VOID)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._record(tag, attrs, void=True)

    def _record(self, tag: str, attrs: list[tuple[str, str | None]], void: bool) -> None:
        start = self._offset()
        raw = self.get_starttag_text() or ""
        line, col = self.getpos()
        entry = _Tag(tag, {k: v for k, v in reversed(attrs)}, start, start + len(raw), line, col + 1)
        self.tags.setdefault(tag, []).append(entry)
        if not void:
            self.open.append(entry)

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.open) - 1, -1, -1):
            if self.open[i].tag == tag:
                end = self.source.find(">", self._offset())
                self.open[i].end = (end + 1) if end >= 0 else len(self.source)
                del self.open[i:]
                return


def _attrs_equal(a: dict[str, str | None], b: dict[str, str | None]) -> bool:
    norm = lambda d: {k.lower(): (v or "") for k, v in d.items()}  # noqa: E731
    return norm(a) == norm(b)


# --- text ----------------------------------------------------------------------------------


def _is_hidden_here(node: LexborNode) -> bool:
    attrs = node.attributes
    return "hidden" in attrs or (attrs.get("aria-hidden") or "").strip().lower() == "true" or \
        "display:none" in (attrs.get("style") or "").replace(" ", "").lower()


def is_hidden(node: LexborNode) -> bool:
    """Hidden from assistive technology: aria-hidden, hidden or display:none here or above."""
    while node is not None and node.tag not in ("html", "-undef", "#document"):
        if node.is_element_node and _is_hidden_here(node):
            return True
        node = node.parent
    return False


def visible_text(node: LexborNode, skip: LexborNode | None = None, alt_text: bool = False) -> str:
    """Text a reader meets inside ``node``; ``skip`` (and its subtree) left out. With
    ``alt_text``, images contribute their alt (as they do to a link's name)."""
    parts: list[str] = []
    _collect(node, skip, alt_text, parts)
    return " ".join(" ".join(parts).split())


def _collect(node: LexborNode, skip: LexborNode | None, alt_text: bool, parts: list[str]) -> None:
    child = node.child
    while child is not None:
        if skip is not None and child.mem_id == skip.mem_id:
            pass
        elif child.is_text_node:
            parts.append(child.text_content or "")
        elif child.is_element_node and child.tag not in _SKIP_TEXT and not _is_hidden_here(child):
            if alt_text and child.tag == "img" and child.attributes.get("alt"):
                parts.append(child.attributes["alt"] or "")
            elif child.tag != "svg":
                _collect(child, skip, alt_text, parts)
        child = child.next


def css_escape(ident: str) -> str:
    out = re.sub(r"([^\w-])", lambda m: "\\" + m.group(1), ident)
    return ("\\3" + out[0] + " " + out[1:]) if out[:1].isdigit() else out


def _selector(node: LexborNode, parser: LexborHTMLParser) -> str:
    parts: list[str] = []
    current: LexborNode | None = node
    while current is not None and current.is_element_node and current.tag not in ("html", "#document"):
        element_id = current.attributes.get("id")
        if element_id and len(parser.css(f"#{css_escape(element_id)}")) == 1:
            parts.append(f"#{css_escape(element_id)}")
            break
        tag = current.tag
        parent = current.parent
        if parent is not None and parent.is_element_node:
            same = [c for c in parent.iter() if c.tag == tag]
            if len(same) > 1:
                position = next(i for i, c in enumerate(same, 1) if c.mem_id == current.mem_id)
                tag = f"{tag}:nth-of-type({position})"
        parts.append(tag)
        current = parent
    return " > ".join(reversed(parts))


# --- the walk -------------------------------------------------------------------------------


def _kind(node: LexborNode) -> str | None:
    tag, attrs = node.tag, node.attributes
    role = (attrs.get("role") or "").strip().lower().split(" ")[0]
    if tag == "img":
        return "img"
    if tag == "input" and (attrs.get("type") or "").strip().lower() == "image":
        return "input-image"
    if tag == "area" and attrs.get("href") is not None:
        return "area"
    if tag == "svg":
        return "svg"
    if tag == "object":
        return "object"
    if role == "img":
        return "role-img"
    return None


def _ancestor(node: LexborNode, test) -> LexborNode | None:
    current = node.parent
    while current is not None and current.is_element_node:
        if test(current):
            return current
        current = current.parent
    return None


def _is_control(node: LexborNode) -> bool:
    role = (node.attributes.get("role") or "").strip().lower()
    return (node.tag == "a" and node.attributes.get("href") is not None) or node.tag == "button" or \
        role in ("link", "button")


def _srcset_urls(value: str | None) -> list[str]:
    if not value:
        return []
    return [c.strip().split()[0] for c in value.split(",") if c.strip()]


def _sources(node: LexborNode, kind: str, base: str | None) -> tuple[str | None, list[str], bool]:
    attrs = node.attributes
    join = (lambda u: urljoin(base, u)) if base else (lambda u: u)  # noqa: E731
    if kind == "object":
        raw = attrs.get("data")
    elif kind == "area":
        raw = None
    else:
        raw = attrs.get("src")
        if kind == "svg" or kind == "role-img":
            raw = None
    raw = (raw or "").strip() or None
    lazy_src = next(((attrs.get(k) or "").strip() for k in _LAZY_SRC if (attrs.get(k) or "").strip()), None)
    srcset = _srcset_urls(attrs.get("srcset"))
    lazy_srcset = [u for k in _LAZY_SRCSET for u in _srcset_urls(attrs.get(k))]
    if node.parent is not None and node.parent.tag == "picture":
        for source in node.parent.iter():
            if source.tag == "source":
                srcset += _srcset_urls(source.attributes.get("srcset") or source.attributes.get("data-srcset"))
    lazy = False
    if lazy_src and (raw is None or _PLACEHOLDER_SRC.search(raw)):
        raw, lazy = lazy_src, True
    elif raw is None and lazy_srcset:
        raw, lazy = lazy_srcset[0], True
    elif raw is None and srcset:
        raw = srcset[0]
    candidates = [join(u) for u in dict.fromkeys(srcset + lazy_srcset) if u]
    return (join(raw) if raw else None), candidates, lazy


def _node_text(node: LexborNode) -> str:
    if node.is_text_node:
        return " ".join((node.text_content or "").split())
    if node.is_element_node and node.tag not in _SKIP_TEXT and not _is_hidden_here(node):
        return visible_text(node)
    return ""


def _is_block(node: LexborNode) -> bool:
    return node.is_element_node and (node.tag in _BLOCKS or node.tag in ("figure", "picture", "img", "br", "hr"))


def _nearby(node: LexborNode, limit: int = 300) -> str:
    """Text read together with the image: the nearest non-empty inline text before and after
    it in the same line of text (a heading or paragraph beside it is not), climbing out of
    inline wrappers (and out of a link or button) until some is found."""
    current = node
    while current is not None and current.is_element_node and current.tag not in ("body", "html"):
        before, after = "", ""
        sibling = current.prev
        while sibling is not None and not before and not _is_block(sibling):
            before, sibling = _node_text(sibling), sibling.prev
        sibling = current.next
        while sibling is not None and not after and not _is_block(sibling):
            after, sibling = _node_text(sibling), sibling.next
        text = " ".join(t for t in (before[-limit // 2:], after[:limit // 2]) if t)
        if text:
            return text
        parent = current.parent
        if parent is None or (parent.tag in _BLOCKS and not _is_control(parent)):
            return ""
        current = parent
    return ""


def _lang(node: LexborNode) -> str | None:
    current: LexborNode | None = node
    while current is not None and current.is_element_node:
        lang = current.attributes.get("lang")
        if lang is not None and lang.strip():
            return lang.strip()
        current = current.parent
    return None


def extract_images(source: str, url: str | None = None) -> PageImages:
    """Every image occurrence on the page ``source`` (HTML text), in document order.
    ``url`` is where the page lives: image sources are resolved against it (and <base>)."""
    parser = LexborHTMLParser(source)
    scanner = _Scanner(source)
    try:
        scanner.feed(source)
        scanner.close()
    except Exception:  # the stdlib tokenizer is lenient; positions are a nicety, never fatal
        scanner.tags = {}
    base_node = parser.css_first("base[href]")
    base = url
    if base_node is not None:
        base = urljoin(url or "", base_node.attributes.get("href") or "") or base
    root = parser.css_first("html")
    page_lang = (root.attributes.get("lang") or "").strip() or None if root is not None else None
    title_node = parser.css_first("title")
    title = " ".join((title_node.text() if title_node is not None else "").split())

    images: list[ImageOccurrence] = []
    pointer: dict[str, int] = {}
    for node in (parser.root.traverse() if parser.root is not None else []):
        if not node.is_element_node:
            continue
        kind = _kind(node)
        if kind is None:
            continue
        if kind != "svg" and _ancestor(node, lambda n: n.tag == "svg") is not None:
            continue  # parts of an inline SVG are the SVG's business
        if kind == "role-img" and _ancestor(node, lambda n: _kind(n) == "role-img") is not None:
            continue
        attrs = dict(node.attributes)
        tag_entry = _match(scanner, pointer, node.tag, attrs)
        html = source[tag_entry.start:tag_entry.end] if tag_entry is not None else (node.html or "")
        if len(html) > HTML_LIMIT:
            html = html[:HTML_LIMIT] + "…"
        src, srcset, lazy = _sources(node, kind, base)
        role = (attrs.get("role") or "").strip().lower().split(" ")[0] or None
        figure = _ancestor(node, lambda n: n.tag == "figure")
        caption = None
        if figure is not None:
            cap = next((c for c in figure.iter() if c.tag == "figcaption"), None)
            caption = visible_text(cap) if cap is not None else None
        control = _control(node, kind)
        images.append(ImageOccurrence(
            index=len(images), kind=kind, tag=node.tag, attrs=attrs,
            alt=attrs.get("alt") if "alt" in attrs else None,
            src=src, srcset=srcset, lazy=lazy, role=role, hidden=is_hidden(node), caption=caption or None,
            control=control, nearby_text=_nearby(node), lang=_lang(node), selector=_selector(node, parser),
            html=html, line=tag_entry.line if tag_entry else None, column=tag_entry.column if tag_entry else None,
            width=attrs.get("width"), height=attrs.get("height"), node=node,
        ))
    return PageImages(url=url, lang=page_lang, title=title, images=images, parser=parser)


def _match(scanner: _Scanner, pointer: dict[str, int], tag: str, attrs: dict[str, Any]) -> _Tag | None:
    entries = scanner.tags.get(tag, [])
    for i in range(pointer.get(tag, 0), len(entries)):
        if not entries[i].used and _attrs_equal(entries[i].attrs, attrs):
            entries[i].used = True
            pointer[tag] = i + 1
            return entries[i]
    return None


def _control(node: LexborNode, kind: str) -> Control | None:
    attrs = node.attributes
    if kind == "input-image":
        return Control("input", None, "", None, 0)
    if kind == "area":
        return Control("area", attrs.get("href"), "", None, 0)
    ctrl = _ancestor(node, _is_control)
    if ctrl is None:
        return None
    heading_node = next((c for c in ctrl.iter() if c.tag in _HEADINGS), None)
    if heading_node is None:  # a nested heading deeper down
        heading_node = next((c for c in ctrl.traverse() if c.tag in _HEADINGS), None)
    others = sum(1 for c in ctrl.traverse() if c.mem_id != node.mem_id and c.mem_id != ctrl.mem_id
                 and _kind(c) is not None and not _is_hidden_here(c))
    return Control(
        tag=ctrl.tag, href=ctrl.attributes.get("href"),
        text=visible_text(ctrl, skip=node),
        heading=visible_text(heading_node) if heading_node is not None else None,
        other_images=others,
    )
