"""One audit run: pages in, an AuditReport out. I/O (reading images, the model) comes in as
two async callables so the CLI and the HTTP API share every decision."""
from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from models.imageio import DEFAULT_MAX_BYTES, ImageError, LoadedImage, load_image
from service.audit.model import AuditReport, Finding, PageReport, summarise
from service.audit.rules import RULES, Hit, Options, check_across, check_page
from service.fetch import FetchError
from service.page_images import ImageOccurrence, PageImages, extract_images
from service.page import PageContext
from service.result import AltResult
from service.text import content_words

Loader = Callable[[str], Awaitable[bytes]]
Describer = Callable[[list[tuple[LoadedImage, PageContext]]], Awaitable[list[AltResult]]]
Progress = Callable[[int], None]
CHUNK = 16  # images per describer call


@dataclass
class PageInput:
    label: str  # what the report calls the page: a path or a URL
    html: str | None = None
    url: str | None = None  # where it lives (file:// for local files): image sources resolve against it
    error: tuple[str, str] | None = None  # (code, message) when the page could not be read


@dataclass
class AuditOptions:
    max_alt_chars: int = 250
    proposals: bool = True
    check_images: bool = False
    mismatch_min_confidence: float = 0.4  # a draft less sure than this never contradicts a human
    check_language: bool = True
    # models.imageio.load_image's limits, as Settings.image_limits() gives them ({}: its defaults)
    image_limits: dict = field(default_factory=dict)


@dataclass
class _Work:
    page: PageImages
    image: ImageOccurrence
    hits: list[Hit] = field(default_factory=list)
    result: AltResult | None = None
    error: str | None = None
    thumbnail: str | None = None


async def audit_pages(
    inputs: Sequence[PageInput], options: AuditOptions | None = None, *,
    loader: Loader | None = None, describer: Describer | None = None, progress: Progress | None = None,
) -> AuditReport:
    options = options or AuditOptions()
    rule_options = Options(max_alt_chars=options.max_alt_chars, check_language=options.check_language)
    parsed: list[tuple[PageInput, PageImages | None]] = []
    hits: list[Hit] = []
    for item in inputs:
        if item.html is None:
            parsed.append((item, None))
            continue
        page = await asyncio.to_thread(extract_images, item.html, item.url)
        parsed.append((item, page))
        hits += await asyncio.to_thread(check_page, page, rule_options)
        if progress:
            progress(1)
    pages = [page for _, page in parsed if page is not None]
    digests = await asyncio.to_thread(local_digests, pages, options.image_limits.get("max_bytes", DEFAULT_MAX_BYTES))
    hits += check_across([(page, item.label) for item, page in parsed if page is not None], digests)

    work: dict[tuple[int, int], _Work] = {}
    page_of = {id(page): page for _, page in parsed if page is not None}
    owner = {id(img): page for page in page_of.values() for img in page.images}
    for h in hits:
        key = (id(owner[id(h.image)]), h.image.index)
        work.setdefault(key, _Work(owner[id(h.image)], h.image)).hits.append(h)
    if options.check_images:
        for page in page_of.values():
            for image in page.images:
                if image.kind == "img" and not image.hidden and image.control is None and (image.alt or "").strip():
                    work.setdefault((id(page), image.index), _Work(page, image))

    needs_model = [w for w in work.values() if options.check_images
                   or (options.proposals and w.hits and not all(h.propose_empty for h in w.hits))]
    if describer is not None and loader is not None and needs_model:
        await _describe(needs_model, options, loader, describer)

    if options.check_images:
        for w in work.values():
            mismatch = _mismatch(w, options)
            if mismatch:
                w.hits.append(mismatch)

    reports: list[PageReport] = []
    for item, page in parsed:
        if page is None:
            code, message = item.error or ("page_unreadable", "The page could not be read.")
            reports.append(PageReport(page=item.label, error={"code": code, "message": message}))
            continue
        findings = []
        for image in page.images:
            w = work.get((id(page), image.index))
            if w is None:
                continue
            for h in w.hits:
                findings.append(_finding(h, w, options))
        reports.append(PageReport(page=item.label, lang=page.lang, title=page.title, images=len(page.images),
                                  findings=findings))
    return AuditReport(pages=reports, summary=summarise(reports))


def local_digests(pages: Sequence[PageImages], max_bytes: int) -> dict[str, str]:
    """Content hashes of the local (file://) images the pages use, so copies of one image
    under different names count as the same image. Remote images are compared by address."""
    import hashlib

    out: dict[str, str] = {}
    for page in pages:
        for image in page.images:
            src = image.src or ""
            if src in out or not src.startswith("file:"):
                continue
            path = Path(unquote(urlsplit(src).path))
            try:
                if path.is_file() and path.stat().st_size <= max_bytes:
                    out[src] = "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                continue
    return out


def _finding(h: Hit, w: _Work, options: AuditOptions) -> Finding:
    rule = RULES[h.rule]
    proposed: str | None = None
    proposal_confidence = needs_review = None
    warnings: list[str] = []
    if options.proposals or h.rule == "alt-mismatch":
        if h.propose_empty:
            proposed = ""
        elif w.result is not None:
            proposed = w.result.alt
            proposal_confidence = round(w.result.confidence, 3)
            needs_review, warnings = w.result.needs_review, list(w.result.warnings)
    finding = Finding(
        rule=h.rule, severity=rule.severity, wcag=h.wcag or rule.wcag, selector=h.image.selector, html=h.image.html,
        reason=h.reason, proposed_alt=proposed, confidence=round(min(max(h.confidence, 0.0), 1.0), 3),
        alt=h.current_alt, src=h.image.src, line=h.image.line, column=h.image.column,
        proposal_confidence=proposal_confidence, proposal_needs_review=needs_review, proposal_warnings=warnings,
        proposal_error=w.error if (options.proposals and proposed is None) else None,
    )
    finding._thumbnail = w.thumbnail
    return finding


THUMB_SIZE = (160, 120)


def thumbnail(image) -> str:
    """A small JPEG data: URI of a decoded image (rendered SVGs included) for the HTML report."""
    import io

    small = image.convert("RGB")
    small.thumbnail(THUMB_SIZE)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


# --- the model ------------------------------------------------------------------------------


def page_context(image: ImageOccurrence, page: PageImages) -> PageContext:
    """What the pipeline is told about an image found on a page."""
    lang = (image.lang or page.lang or "en")[:35]
    context = " ".join(t for t in (page.title, image.nearby_text) if t)[:20000] or None
    if image.kind in ("input-image", "area") or image.control is not None:
        control = image.control
        return PageContext(role="functional", link_href=(control.href or None) if control else None,
                           link_text=(control.text or None) if control else None, context=context,
                           lang=lang if len(lang) >= 2 else "en")
    return PageContext(caption=(image.caption or None) and image.caption[:5000], caption_visible=True,
                       context=context, lang=lang if len(lang) >= 2 else "en")


_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w.+-]+=[\w.+-]+)*)(;base64)?,(.*)$", re.I | re.S)


async def _bytes_for(image: ImageOccurrence, loader: Loader) -> bytes:
    if image.kind == "svg":
        svg = image.html if image.html.endswith("</svg>") else (image.node.html if image.node else "")
        if "xmlns=" not in svg[:400]:
            svg = svg.replace("<svg", '<svg xmlns="http://www.w3.org/2000/svg"', 1)
        return svg.encode("utf-8")
    if not image.src:
        raise ImageError("no_source", "The element has no image source.")
    match = _DATA_URL.match(image.src)
    if match:
        payload = match.group(4)
        try:
            return base64.b64decode(payload, validate=False) if match.group(3) else unquote(payload).encode()
        except (binascii.Error, ValueError) as exc:
            raise ImageError("bad_data_url", "The data: URL is not valid base64.") from exc
    return await loader(image.src)


async def _describe(items: list[_Work], options: AuditOptions, loader: Loader, describer: Describer) -> None:
    async def load(w: _Work) -> LoadedImage | None:
        try:
            data = await _bytes_for(w.image, loader)
            loaded = await asyncio.to_thread(load_image, data, **options.image_limits)
            w.thumbnail = await asyncio.to_thread(thumbnail, loaded.image)
            return loaded
        except FileNotFoundError:
            w.error = "image_not_found"
        except (ImageError, FetchError) as exc:
            w.error = getattr(exc, "code", "invalid_image")
        except OSError:
            w.error = "image_unreadable"
        return None

    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        loaded = await asyncio.gather(*(load(w) for w in chunk))
        ready = [(w, li) for w, li in zip(chunk, loaded) if li is not None]
        if not ready:
            continue
        results = await describer([(li, page_context(w.image, w.page)) for w, li in ready])
        for (w, _), result in zip(ready, results):
            w.result = result


def _stem(word: str) -> str:
    word = word.lower()
    for suffix in ("ies", "es", "s"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _mismatch(w: _Work, options: AuditOptions) -> Hit | None:
    """Alt that shares nothing with what the drafter sees, when the drafter is sure enough."""
    if w.result is None or w.result.draft is None or any(
            h.rule in ("filename-alt", "placeholder-alt", "missing-alt", "decorative-with-alt") for h in w.hits):
        return None
    alt = (w.image.alt or "").strip()
    draft = w.result.draft
    if not alt or draft.confidence < options.mismatch_min_confidence:
        return None
    seen = {_stem(x) for x in content_words(draft.text)}
    for label in (*draft.evidence.labels, *draft.evidence.objects):
        seen |= {_stem(x) for x in content_words(label.name)}
    said = {_stem(x) for x in content_words(alt)}
    if not said or not seen or said & seen:
        return None
    return Hit("alt-mismatch", w.image,
               f"The alt text says '{alt}', but the image looks like: '{draft.text}' (nothing in common).",
               round(draft.confidence, 3), alt)


# --- where pages and images come from --------------------------------------------------------


def file_loader(fetch: Callable[[str], Awaitable[bytes]] | None = None, max_bytes: int = 20 * 2**20) -> Loader:
    """file:// sources are read from disk; http(s) ones go through ``fetch`` (the SSRF-safe
    fetcher) when given, else they fail with fetch_blocked."""

    async def load(url: str) -> bytes:
        parts = urlsplit(url)
        if parts.scheme == "file":
            path = Path(unquote(parts.path))
            if not path.is_file():
                raise FileNotFoundError(path)
            if path.stat().st_size > max_bytes:
                raise ImageError("bytes", "The image file is too large.", code="image_too_large")
            return await asyncio.to_thread(path.read_bytes)
        if parts.scheme in ("http", "https") and fetch is not None:
            return await fetch(url)
        raise FetchError("fetch_blocked", "scheme", f"Images at {parts.scheme or 'relative'} addresses are not read.")

    return load


HTML_SUFFIXES = (".html", ".htm", ".xhtml")


def local_pages(paths: Sequence[Path]) -> list[PageInput]:
    """Files and folders (searched recursively for *.html, *.htm) -> pages, sorted per folder."""
    out: list[PageInput] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in HTML_SUFFIXES)
            out += [read_local(p) for p in files]
        else:
            out.append(read_local(path))
    return out


def read_local(path: Path) -> PageInput:
    label = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return PageInput(label, error=("page_not_found", f"No such file: {path}"))
    except OSError as exc:
        return PageInput(label, error=("page_unreadable", f"{path}: {exc.strerror or exc}"))
    return PageInput(label, html=decode_html(data), url=path.resolve().as_uri())


_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w-]+)""", re.I)


def decode_html(data: bytes, declared: str | None = None) -> str:
    """Bytes -> text: a BOM, the declared charset, a <meta charset>, then UTF-8 (bad bytes replaced)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace")
    for candidate in (declared, (_META_CHARSET.search(data[:4096]) or [None, None])[1]):
        if candidate:
            name = candidate.decode() if isinstance(candidate, bytes) else candidate
            try:
                return data.decode(name, errors="replace")
            except LookupError:
                pass
    return data.decode("utf-8", errors="replace")
