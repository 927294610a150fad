"""The audit's rules: which images fail WCAG 1.1.1 (or read badly), and why.

Each rule has a stable id, a severity (axe-core's scale: critical > serious > moderate >
minor) and the WCAG success criterion it serves. Structural rules mean what the standard
engines mean (axe-core's image-alt, input-image-alt, area-alt, role-img-alt, svg-img-alt,
object-alt, link-name / button-name for image-only controls, image-redundant-alt); the
others go beyond them. Correct images give no finding, and a decorative image that is
correctly hidden is never reported.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from service.audit.language import detect_language
from service.audit.names import PRESENTATIONAL, accessible_name, control_has_name
from service.merge import PLACEHOLDERS
from service.page_images import ImageOccurrence, PageImages
from service.text import content_words, strip_credits

SEVERITIES = ("minor", "moderate", "serious", "critical")


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    wcag: str
    title: str


RULES: dict[str, Rule] = {r.id: r for r in [
    Rule("missing-alt", "critical", "1.1.1", "Image has no text alternative"),
    Rule("empty-alt-on-functional", "critical", "2.4.4", "Only content of a link or button is marked empty"),
    Rule("filename-alt", "serious", "1.1.1", "Alt text is a file name"),
    Rule("placeholder-alt", "serious", "1.1.1", "Alt text is a placeholder"),
    Rule("redundant-prefix", "minor", "1.1.1", "Alt text starts with 'image of' or similar"),
    Rule("duplicates-caption", "moderate", "1.1.1", "Alt text repeats text read with the image"),
    Rule("credit-in-alt", "minor", "1.1.1", "Alt text carries a credit or copyright line"),
    Rule("too-long", "moderate", "1.1.1", "Alt text is too long and there is no long description"),
    Rule("wrong-language", "moderate", "3.1.2", "Alt text is in another language than the page says"),
    Rule("inconsistent-alt-across-pages", "moderate", "3.2.4", "Same image, contradicting alt on other pages"),
    Rule("decorative-with-alt", "minor", "1.1.1", "Decorative image carries text"),
    Rule("alt-mismatch", "serious", "1.1.1", "Alt text disagrees with what the image shows"),
]}


@dataclass
class Options:
    max_alt_chars: int = 250
    check_language: bool = True


@dataclass
class Hit:
    """A rule's verdict on one image occurrence, before proposals are added."""

    rule: str
    image: ImageOccurrence
    reason: str
    confidence: float
    current_alt: str | None
    wcag: str | None = None  # when it differs from the rule's default (links vs buttons)
    propose_empty: bool = False  # the right fix is alt="" (decorative, or the text is already there)
    extra: dict = field(default_factory=dict)


# --- the text rules ------------------------------------------------------------------------

_FILE_EXT = re.compile(r"\.(?:jpe?g|png|gif|webp|bmp|tiff?|avif|svg|heic)\b", re.I)
_CAMERA = re.compile(r"^(?:IMG|DSC|DSCN|DCIM|PXL|MVIMG|GOPR|Screenshot|Screen Shot|image|photo|pic)[ _-]?\d+", re.I)
_SLUG = re.compile(r"^[\w.]+(?:[-_][\w.]+)+$")
_SLUG_HINT = re.compile(r"(?:^|[-_])(?:final|v\d+|copy|edit(?:ed)?|web|hi-?res|lo-?res|thumb|banner|hero|img|\d{2,}|"
                        r"\d+x\d+)(?:$|[-_.])", re.I)
_EXTRA_PLACEHOLDERS = {"loading", "loading...", "loading…", "spacer", "banner", "pic", "photo image", "image image",
                       "blank", "default", "dummy", "test", "alt", "img", "graphic", "picture", "foto", "bild",
                       "avatar", "profile picture", "profile photo", "profile image", "user", "headshot",
                       "user avatar",
                       "photo placeholder", "click here", "here", "more", "read more", "link"}
_PREFIX = re.compile(r"^(?:(?:a|an|the|this)\s+)?(?:image|picture|photo|photograph|pic|graphic|img|icon)\s+"
                     r"(?:of|showing|shows|depicting|that shows)\b", re.I)
_CREDIT = re.compile(r"(?:©|\(c\)\s|\bcopyright\b|\ball rights reserved\b|\b(?:photo|image|picture)\s*(?:by|credit|:)|"
                     r"\bcredit\s*:|\bcourtesy of\b|\bvia (?:getty|reuters|ap|afp|shutterstock)|\bgetty images\b|"
                     r"\bshutterstock\b|\balamy\b)", re.I)
_DECORATIVE_SRC = re.compile(r"(?:^|[/_-])(?:spacer|pixel|blank|transparent|clear|dot|1x1|divider|separator|"
                             r"ornament|flourish|swirl|border|shadow|corner|bullet|rule|track(?:ing)?|beacon|"
                             r"decor(?:ation|ative)?)(?:[\w-]*)\.(?:gif|png|svg|jpe?g|webp)(?:$|\?)", re.I)


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def similar(a: str, b: str) -> float:
    """Fuzzy sameness of two short texts (0-1): difflib's ratio on normalised words, or
    mutual containment of content words."""
    na, nb = _norm(a), _norm(b)
    if not na or not nb:
        return 0.0
    if na == nb:
        return 1.0
    ratio = difflib.SequenceMatcher(None, na, nb).ratio()
    wa, wb = set(content_words(a)), set(content_words(b))
    overlap = len(wa & wb) / max(len(wa | wb), 1) if wa and wb else 0.0
    return max(ratio, overlap)


def _filename_like(alt: str, src: str | None) -> bool:
    text = alt.strip()
    if _FILE_EXT.search(text) or _CAMERA.match(text):
        return True
    if src:
        stem = PurePosixPath(unquote(urlsplit(src).path)).stem.lower()
        if stem and len(stem) > 3 and _norm(text) == _norm(stem) and (" " not in text):
            return True
    return bool(_SLUG.match(text) and " " not in text and (_SLUG_HINT.search(text) or re.search(r"\d", text)))


def _placeholder(alt: str) -> bool:
    bare = alt.strip().lower().strip(" .!:-")
    bare_dots = alt.strip().lower()
    return bare in PLACEHOLDERS or bare in _EXTRA_PLACEHOLDERS or bare_dots in _EXTRA_PLACEHOLDERS


def _has_long_description(image: ImageOccurrence) -> bool:
    return any((image.attrs.get(a) or "").strip() for a in ("aria-describedby", "longdesc", "aria-details"))


def _decorative_signal(image: ImageOccurrence) -> str | None:
    if image.role in PRESENTATIONAL:
        return f'role="{image.role}" marks it decorative'
    if image.src and _DECORATIVE_SRC.search(image.src):
        return f"its file ({PurePosixPath(urlsplit(image.src).path).name}) is a spacer or ornament"
    try:
        w, h = int(image.width or 0), int(image.height or 0)
    except ValueError:
        w = h = 0
    if image.width and image.height and w <= 2 and h <= 2:
        return f"it is {w}x{h} pixels (a spacer or tracking pixel)"
    return None


def _functional_wcag(image: ImageOccurrence) -> str:
    return "4.1.2" if image.control and image.control.tag in ("button", "input") else "2.4.4"


# --- one page ------------------------------------------------------------------------------


def check_page(page: PageImages, options: Options | None = None) -> list[Hit]:
    options = options or Options()
    hits: list[Hit] = []
    for image in page.images:
        hits.extend(check_image(image, page, options))
    return hits


def check_image(image: ImageOccurrence, page: PageImages, options: Options) -> list[Hit]:
    name = accessible_name(image, page)
    kind = image.kind
    hit = lambda rule, reason, confidence=1.0, **kw: Hit(rule, image, reason, confidence,  # noqa: E731
                                                          name.text if name.source != "none" else image.alt, **kw)
    in_control = image.control is not None and kind in ("img", "svg", "role-img", "object")
    marked_empty = (
        image.hidden or (kind == "img" and image.alt is not None and not image.alt.strip() and name.source == "none")
        or (image.role in PRESENTATIONAL and name.source in ("none", "alt"))
    )
    if image.hidden or marked_empty:
        if in_control and not control_has_name(image, page):
            how = ("aria-hidden" if image.hidden else f'role="{image.role}"' if image.role in PRESENTATIONAL
                   else 'alt=""')
            what = "button" if image.control.tag == "button" else "link"
            return [hit("empty-alt-on-functional",
                        f"The image is the only content of a {what} and is marked decorative ({how}), so the "
                        f"{what} has no accessible name; screen readers announce only '{what}'.",
                        wcag=_functional_wcag(image))]
        if image.hidden:
            return []  # correctly hidden: never a finding
        if name.source == "none" or image.role in PRESENTATIONAL and name.source == "alt":
            signal = None
            if name.source == "alt" and image.alt and image.alt.strip():
                signal = _decorative_signal(image)
            if signal:
                return [hit("decorative-with-alt", f"The image is decorative ({signal}) but carries the text "
                            f"'{image.alt.strip()}', which screen readers may read.", 0.8, propose_empty=True)]
            return []

    if not name.text:
        if kind == "svg" and image.role not in ("img", "graphics-document", "graphics-symbol"):
            if not in_control or control_has_name(image, page):
                return []  # an unlabelled inline SVG outside a control is not exposed as an image
        if kind == "object" and not image.attrs.get("data"):
            return []
        what = {"img": "<img> has no alt attribute", "input-image": "<input type=image> has no alt text",
                "area": "<area href> has no alt text", "svg": "the SVG graphic has no accessible name "
                "(no <title>, aria-label or aria-labelledby)", "object": "<object> has no text alternative",
                "role-img": 'the role="img" element has no accessible name'}[kind]
        reason = f"{what[0].upper()}{what[1:]}; screen readers fall back to the file name or skip it."
        wcag = _functional_wcag(image) if kind in ("input-image", "area") or (
            in_control and not control_has_name(image, page)) else "1.1.1"
        return [hit("missing-alt", reason, wcag=wcag)]

    text = name.text
    hits: list[Hit] = []
    signal = _decorative_signal(image) if kind == "img" else None
    if signal and name.source == "alt":
        hits.append(hit("decorative-with-alt", f"The image is decorative ({signal}) but carries the text '{text}'.",
                        0.8, propose_empty=True))
        return hits
    if _filename_like(text, image.src):
        hits.append(hit("filename-alt", f"The alt text '{text}' is a file name, not a description.", 0.95))
    elif _placeholder(text):
        hits.append(hit("placeholder-alt", f"The alt text '{text}' is a placeholder that says nothing about the "
                        "image.", 0.95))
    if _PREFIX.match(text):
        hits.append(hit("redundant-prefix", f"The alt text opens with '{_PREFIX.match(text).group(0)}': screen "
                        "readers already announce an image.", 0.95))
    if _CREDIT.search(text) or (strip_credits(text)[0].rstrip(".") != text.rstrip(".") and
                                  len(strip_credits(text)[0]) < len(text) - 3):
        hits.append(hit("credit-in-alt", "The alt text carries a credit or copyright line, which belongs in the "
                        "caption, not in what the image shows.", 0.9))
    dup = _duplicate(image, text)
    if dup is not None:
        where, other, score, empty = dup
        hits.append(hit("duplicates-caption", f"The alt text repeats the {where} ('{other[:80]}'), so screen readers "
                        "read it twice.", round(score, 2), propose_empty=empty))
    if len(text) > options.max_alt_chars and not _has_long_description(image):
        hits.append(hit("too-long", f"The alt text is {len(text)} characters (limit {options.max_alt_chars}) and "
                        "there is no long description (aria-describedby, longdesc).", 1.0))
    if options.check_language:
        expected = (image.lang or page.lang or "").split("-")[0].lower()
        found = detect_language(text, expected) if expected else None
        if found is not None:
            hits.append(hit("wrong-language", f"The alt text reads as {found[2]} ({found[0]}), but the page "
                            f"language is {expected} and nothing marks the change (lang attribute).",
                            round(found[1], 2)))
    return hits


def _duplicate(image: ImageOccurrence, text: str) -> tuple[str, str, float, bool] | None:
    candidates: list[tuple[str, str, bool]] = []
    if image.caption:
        candidates.append(("visible caption", image.caption, False))
    if image.control is not None:
        if image.control.heading:
            candidates.append(("card heading in the same link", image.control.heading, True))
        if image.control.text:
            candidates.append((f"{'button' if image.control.tag == 'button' else 'link'} text", image.control.text,
                               True))
    if image.nearby_text:
        candidates.append(("text next to it", image.nearby_text, True))
    best = None
    for where, other, empty in candidates:
        score = similar(text, other)
        if score >= 0.85 and (best is None or score > best[2]):
            best = (where, other, score, empty)
    return best


# --- across pages --------------------------------------------------------------------------


def check_across(pages: list[tuple[PageImages, str]], digests: dict[str, str] | None = None) -> list[Hit]:
    """The same image (same effective source, or the same content hash where ``digests``
    maps a source to one) with contradicting alt on different pages."""
    digests = digests or {}
    groups: dict[str, list[tuple[ImageOccurrence, str, str]]] = {}
    for page, label in pages:
        for image in page.images:
            if image.kind != "img" or image.hidden or not image.src or image.src.startswith("data:"):
                continue
            name = accessible_name(image, page).text
            if name and image.role not in PRESENTATIONAL and not _placeholder(name) \
                    and not _filename_like(name, image.src):
                groups.setdefault(digests.get(image.src, image.src), []).append((image, name, label))
    hits = []
    for entries in groups.values():
        if len({label for _, _, label in entries}) < 2:
            continue
        for image, name, label in entries:
            others = [(n, lab, img) for img, n, lab in entries if lab != label and similar(n, name) < 0.6]
            if others:
                other, where, twin = others[0]
                mine, theirs = (PurePosixPath(urlsplit(i.src or "").path).name for i in (image, twin))
                same = f"({mine})" if mine == theirs else f"({mine}, the same file as {theirs} there)"
                hits.append(Hit("inconsistent-alt-across-pages", image,
                                f"The same image {same} is described as '{name}' here but as '{other}' on "
                                f"{where}.", 0.8, name))
    return hits
