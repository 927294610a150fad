"""Where backfill items come from. Every source is a generator (flat memory) and yields
items in the same order with the same ids each time, which is what resume relies on.

- a folder of images (recursive, sorted)
- a CSV or JSON Lines manifest: id, src (path or URL), caption, caption_visible, context,
  existing_alt, role, lang
- a WordPress export (WXR): attachments with their alt, caption, description and title, and
  the posts that use them as context; files from a local uploads copy or by URL
- HTML: a file, a folder of them, a sitemap (file or URL), a list of URLs (.txt), a page URL
  (``crawl`` follows same-origin links)
"""
from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from service.backfill import html as pages
from service.backfill.items import PAGE_FIELDS, Item
from service.page import PageContext

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".avif", ".svg"}
HTML_EXTS = {".html", ".htm", ".xhtml"}
KINDS = ("auto", "images", "manifest", "wxr", "html", "sitemap", "urls")


class SourceError(Exception):
    """The source as a whole cannot be read (not one bad item: those become error rows)."""


def is_url(text: str) -> bool:
    return urlsplit(text).scheme in ("http", "https")


def detect(source: str) -> str:
    """Which kind of source ``source`` is, from its name and (for XML) its root element."""
    if is_url(source):
        return "sitemap" if urlsplit(source).path.endswith((".xml", ".xml.gz")) else "html"
    path = Path(source)
    if path.is_dir():
        has_html = any(p.suffix.lower() in HTML_EXTS for p in _walk(path))
        return "html" if has_html else "images"
    if not path.is_file():
        raise SourceError(f"No such file or folder: {source}")
    ext = path.suffix.lower()
    if ext in (".csv", ".jsonl", ".ndjson"):
        return "manifest"
    if ext in HTML_EXTS:
        return "html"
    if ext == ".txt":
        return "urls"
    if ext in (".xml", ".gz"):
        head = path.read_bytes()[:4096]
        return "wxr" if b"wordpress.org/export" in head else "sitemap"
    raise SourceError(f"Cannot tell what kind of source {source} is; pass --source-type.")


def _walk(root: Path) -> Iterator[Path]:
    """Files under ``root`` in a stable order (sorted at each level), symlinked folders not followed."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            yield Path(dirpath) / name


def iter_source(source: str, kind: str = "auto", *, uploads: str | None = None, crawler=None,
                depth: int = 0, max_pages: int = 1000) -> Iterator[Item]:
    kind = detect(source) if kind == "auto" else kind
    if kind == "images":
        return folder_items(Path(source))
    if kind == "manifest":
        return manifest_items(Path(source))
    if kind == "wxr":
        return wxr_items(Path(source), uploads=uploads)
    if kind in ("html", "sitemap", "urls"):
        return html_items(source, kind, crawler=crawler, depth=depth, max_pages=max_pages)
    raise SourceError(f"Unknown source type {kind!r}; one of {', '.join(KINDS)}.")


# ----------------------------------------------------------------------------- folder


def folder_items(root: Path) -> Iterator[Item]:
    for path in _walk(root):
        if path.suffix.lower() in IMAGE_EXTS:
            yield Item(id=path.relative_to(root).as_posix(), src=str(path.resolve()))


# ----------------------------------------------------------------------------- manifest

_TRUE, _FALSE = {"true", "1", "yes", "y", "t"}, {"false", "0", "no", "n", "f", ""}


def manifest_items(path: Path) -> Iterator[Item]:
    base = path.resolve().parent
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for n, row in enumerate(csv.DictReader(fh), start=1):
                yield _manifest_item(n, row, base, from_csv=True)
    else:
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    if not isinstance(row, dict):
                        raise ValueError("not an object")
                except ValueError as exc:
                    yield Item(id=f"line-{n}", src="", error=("invalid_request", f"Line {n} is not a JSON object: {exc}."))
                    continue
                yield _manifest_item(n, row, base, from_csv=False)


def _manifest_item(n: int, row: dict, base: Path, from_csv: bool) -> Item:
    item_id = str(row.get("id") or "").strip() or f"line-{n}"
    src = str(row.get("src") or "").strip()
    page: dict = {}
    for key in PAGE_FIELDS:
        value = row.get(key)
        if value is None or (isinstance(value, str) and key != "existing_alt" and not value.strip()):
            continue
        page[key] = value
    if isinstance(page.get("caption_visible"), str):
        flag = page["caption_visible"].strip().lower()
        if flag not in _TRUE | _FALSE:
            return Item(id=item_id, src=src, error=("invalid_request", f"caption_visible must be true or false, not {flag!r}."))
        page["caption_visible"] = flag in _TRUE
    if from_csv and page.get("existing_alt") == "":
        # A CSV cell is always text: an empty existing_alt cell means "no alt". In JSON Lines,
        # "" is an explicit empty alt and null (or no key) is none.
        page.pop("existing_alt")
    try:
        PageContext(**page)
    except ValueError as exc:
        first = exc.errors()[0] if hasattr(exc, "errors") else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "row"
        return Item(id=item_id, src=src, page={}, error=("invalid_request", f"{where}: {first.get('msg', exc)}"))
    if not src:
        return Item(id=item_id, src="", page=page, error=("invalid_request", "The row has no src."))
    if not is_url(src) and not src.startswith("data:"):
        src = str((base / src).resolve()) if not os.path.isabs(src) else src
    return Item(id=item_id, src=src, page=page)


# ----------------------------------------------------------------------------- WordPress WXR

WP = "{http://wordpress.org/export/1.2/}"
_WP_IMAGE = re.compile(r"wp-image-(\d+)")


def _tag(el) -> str:
    return el.tag.rsplit("}", 1)[-1]


def _child(el, name: str) -> str:
    for c in el:
        if _tag(c) == name:
            return (c.text or "").strip()
    return ""


def _wxr_fields(el) -> dict:
    """The fields of one <item> we use, by local name (WXR versions differ in namespaces)."""
    out: dict = {"meta": {}}
    for c in el:
        name = c.tag.rsplit("}", 1)[-1]
        ns = c.tag[1:].split("}")[0] if c.tag.startswith("{") else ""
        if name == "postmeta":
            out["meta"][_child(c, "meta_key")] = _child(c, "meta_value")
        elif name == "encoded":
            out["excerpt" if "excerpt" in ns else "content"] = c.text or ""
        else:
            out[name] = (c.text or "").strip()
    return out


def _iter_wxr(path: Path) -> Iterator[dict]:
    try:
        for _event, el in SafeET.iterparse(str(path), events=("end",), forbid_dtd=True):
            if _tag(el) == "item":
                yield _wxr_fields(el)
                el.clear()
    except (DefusedXmlException, SafeET.ParseError) as exc:
        raise SourceError(f"{path} is not a usable WordPress export: {exc}") from exc


def wxr_items(path: Path, *, uploads: str | None = None) -> Iterator[Item]:
    """Attachments in export order. A first pass notes, for each attachment, the posts that use
    it (parent, featured image, wp-image-N in the content) in a throwaway on-disk SQLite table,
    so memory stays flat however big the export is."""
    from service.text import sanitise

    uses = sqlite3.connect("")  # private temporary database on disk
    uses.execute("CREATE TABLE uses (attachment TEXT, post TEXT, title TEXT, text TEXT)")
    for it in _iter_wxr(path):
        if it.get("post_type") == "attachment":
            continue
        title = it.get("title", "")
        text = sanitise(it.get("content", ""), limit=400)
        refs = set(_WP_IMAGE.findall(it.get("content", "")))
        if it["meta"].get("_thumbnail_id"):
            refs.add(it["meta"]["_thumbnail_id"])
        uses.executemany("INSERT INTO uses VALUES (?, ?, ?, ?)", [(r, it.get("post_id", ""), title, text) for r in refs])
        if it.get("post_id"):
            uses.execute("INSERT INTO uses VALUES (?, ?, ?, ?)", ("parent:" + it["post_id"], it["post_id"], title, text))
    uses.commit()
    try:
        for it in _iter_wxr(path):
            if it.get("post_type") != "attachment":
                continue
            yield _wxr_item(it, uses, uploads)
    finally:
        uses.close()


def _wxr_item(it: dict, uses: sqlite3.Connection, uploads: str | None) -> Item:
    post_id = it.get("post_id", "")
    meta = it["meta"]
    src = ""
    if uploads and meta.get("_wp_attached_file"):
        local = Path(uploads) / meta["_wp_attached_file"]
        if local.is_file():
            src = str(local.resolve())
    src = src or it.get("attachment_url", "")
    rows = uses.execute("SELECT title, text FROM uses WHERE attachment IN (?, ?) LIMIT 3",
                        (post_id, "parent:" + it.get("post_parent", "-"))).fetchall()
    context = [it.get("title", ""), re.sub(r"<[^>]+>", " ", it.get("content", ""))]
    context += [f"{title}: {text}" if text else title for title, text in rows]
    alt = meta.get("_wp_attachment_image_alt")
    page = {"caption": (it.get("excerpt") or "").strip() or None, "context": " | ".join(c.strip() for c in context if c.strip())[:2000] or None,
            "existing_alt": alt if alt and alt.strip() else None}
    item = Item(id=f"wp-{post_id}", src=src, page={k: v for k, v in page.items() if v is not None},
                where={"wp_post_id": post_id})
    if not src:
        item.error = ("invalid_request", "The attachment has no file or URL.")
    return item


# ----------------------------------------------------------------------------- HTML


def html_items(source: str, kind: str, *, crawler=None, depth: int = 0, max_pages: int = 1000) -> Iterator[Item]:
    if kind == "html" and not is_url(source):
        path = Path(source)
        files = [p for p in _walk(path) if p.suffix.lower() in HTML_EXTS] if path.is_dir() else [path]
        root = path if path.is_dir() else path.parent
        for file in files:
            yield from _page_items(file.relative_to(root).as_posix(), file.read_bytes(), None, file=file, root=root)
        return
    if crawler is None:
        raise SourceError("Fetching pages needs a crawler.")
    if kind == "urls":
        urls = (line.strip() for line in Path(source).read_text().splitlines())
        urls = (u for u in urls if u and not u.startswith("#"))
    elif kind == "sitemap":
        urls = _sitemap_urls(source, crawler)
    else:
        urls = None
    if urls is None:  # a page URL: crawl from it
        for result in crawler.crawl(source, max_depth=depth, max_pages=max_pages):
            yield from _fetched_items(result)
        return
    for n, url in enumerate(urls):
        if n >= max_pages:
            return
        try:
            result = crawler.page(url)
        except Exception as exc:  # FetchError/CrawlError: one error row for the page
            exc.url = url
            result = exc
        yield from _fetched_items(result)


def _sitemap_urls(source: str, crawler) -> Iterator[str]:
    if is_url(source):
        yield from crawler.sitemap(source)
        return
    from service.crawl import parse_sitemap

    _kind, locs = parse_sitemap(Path(source).read_bytes())
    for loc in locs:
        if _kind == "sitemapindex":
            yield from crawler.sitemap(loc)
        else:
            yield loc


def _fetched_items(result) -> Iterator[Item]:
    if isinstance(result, Exception):
        url = getattr(result, "url", "")
        yield Item(id=f"{url}#page", src=url, where={"page": url},
                   error=(getattr(result, "code", "fetch_failed"), str(result)))
        return
    yield from _page_items(result.final_url, result.body, result.final_url)


def _page_items(ref: str, body: bytes, url: str | None, *, file: Path | None = None,
                root: Path | None = None) -> Iterator[Item]:
    try:
        found = pages.page_items(body, url)
    except Exception as exc:  # a page the parser cannot take is one error row, not a dead run
        yield Item(id=f"{ref}#page", src=ref, error=("invalid_request", f"The page could not be parsed: {exc}."))
        return
    for occ, fields, src, inline in found:
        where = {"page": ref, "index": occ.index, "kind": occ.kind, "line": occ.line, "column": occ.column,
                 "attr": pages.TEXT_ATTR[occ.kind], "selector": occ.selector, "tag": pages.start_tag_fingerprint(occ.html)}
        item = Item(id=f"{ref}#{occ.index}", src=src or "", page=fields, where=where)
        if inline:
            item.src, item.data = "inline:svg", inline
        elif src and file is not None and not is_url(src) and not src.startswith("data:"):
            target = (root / src.lstrip("/")) if src.startswith("/") else (file.parent / src)
            item.src = str(target.resolve())
        if not item.src:
            item.error = ("invalid_request", f"The {occ.kind} has no image source.")
        yield item
