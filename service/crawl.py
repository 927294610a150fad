"""Polite fetching of pages, images, robots.txt and sitemaps, for backfill and audit.

Everything goes through the API's SSRF-safe ``Fetcher`` (public addresses only, every
redirect re-checked, byte cap, deadline). On top of it:

- a per-host rate limit: requests to one host are spaced at least ``min_interval_s`` apart
  (or the site's ``Crawl-delay`` when robots.txt asks for more);
- robots.txt, parsed by ``protego`` (Google's rules: longest match, ``Allow``, wildcards),
  fetched once per origin and obeyed for every crawled page. A robots.txt that answers 4xx
  allows everything; one that cannot be fetched (5xx, timeout, refused address) disallows
  the origin, as Google does;
- sitemaps (``urlset`` and ``sitemapindex``, gzip or plain) parsed with ``defusedxml``,
  which refuses DTDs and entities (no billion laughs, no external entities);
- a same-origin breadth-first crawl with a depth and a page cap.

``Crawler`` is async; ``BlockingCrawler`` runs one on a private event-loop thread for
synchronous callers (the backfill's sources).
"""
from __future__ import annotations

import asyncio
import threading
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from protego import Protego
from selectolax.lexbor import LexborHTMLParser as HTMLParser

from service.fetch import Fetched, Fetcher, FetchError

USER_AGENT = "alttext-bot"
HTML_TYPES = ("text/html", "application/xhtml+xml")


class CrawlError(FetchError):
    """A page we will not fetch (robots.txt) or cannot use (not HTML, bad sitemap).
    ``code`` follows FetchError's: ``fetch_blocked`` or ``fetch_failed``."""


@dataclass(frozen=True)
class Page:
    url: str            # the URL asked for
    final_url: str      # after redirects; relative links resolve against this
    content_type: str
    body: bytes
    depth: int = 0

    @property
    def html(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class HostLimiter:
    """At most one request per ``interval`` seconds to each host; hosts do not wait for each other."""

    def __init__(self, interval_s: float, clock=time.monotonic, sleep=asyncio.sleep) -> None:
        self.interval_s = interval_s
        self._clock, self._sleep = clock, sleep
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._extra: dict[str, float] = {}

    def slow_down(self, host: str, interval_s: float) -> None:
        """A host asked for more time between requests (robots.txt Crawl-delay)."""
        self._extra[host] = max(self._extra.get(host, 0.0), interval_s)

    async def wait(self, host: str) -> None:
        lock = self._locks.setdefault(host, asyncio.Lock())
        async with lock:
            now = self._clock()
            start = max(now, self._next.get(host, now))
            if start > now:
                await self._sleep(start - now)
            self._next[host] = start + max(self.interval_s, self._extra.get(host, 0.0))


class Crawler:
    def __init__(
        self,
        fetcher: Fetcher,
        *,
        min_interval_s: float = 1.0,
        user_agent: str = USER_AGENT,
        respect_robots: bool = True,
        max_crawl_delay_s: float = 30.0,
    ) -> None:
        self.fetcher = fetcher
        self.user_agent = user_agent
        self.respect_robots = respect_robots
        self.max_crawl_delay_s = max_crawl_delay_s
        self.limiter = HostLimiter(min_interval_s)
        self._robots: dict[str, Protego | None] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}

    async def aclose(self) -> None:
        await self.fetcher.aclose()

    async def _get(self, url: str, accept: str) -> Fetched:
        host = urlsplit(url).netloc.lower()
        await self.limiter.wait(host)
        return await self.fetcher.fetch(url, accept=accept, headers={"User-Agent": self.user_agent})

    # ------------------------------------------------------------------ robots.txt

    async def robots(self, url: str) -> Protego | None:
        """The parsed robots.txt for ``url``'s origin; None means the origin is off limits."""
        key = origin(url)
        lock = self._robots_locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._robots:
                self._robots[key] = await self._load_robots(key)
        return self._robots[key]

    async def _load_robots(self, key: str) -> Protego | None:
        try:
            fetched = await self._get(key + "/robots.txt", "text/plain")
            rules = Protego.parse(fetched.body.decode("utf-8", errors="replace"))
        except FetchError as exc:
            if exc.reason.startswith("http_4"):
                return Protego.parse("")  # no robots.txt: everything is allowed
            return None
        delay = rules.crawl_delay(self.user_agent)
        if delay:
            self.limiter.slow_down(urlsplit(key).netloc, min(float(delay), self.max_crawl_delay_s))
        return rules

    async def allowed(self, url: str) -> bool:
        if not self.respect_robots:
            return True
        rules = await self.robots(url)
        return rules is not None and rules.can_fetch(url, self.user_agent)

    # ------------------------------------------------------------------ fetching

    async def page(self, url: str, depth: int = 0) -> Page:
        """One HTML page, if robots.txt allows it. Raises FetchError / CrawlError."""
        await self.fetcher.check(url)  # a refused address says so, rather than "robots.txt unreachable"
        if not await self.allowed(url):
            raise CrawlError("fetch_blocked", "robots", f"robots.txt does not allow {url}.")
        fetched = await self._get(url, "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1")
        if fetched.content_type and fetched.content_type not in HTML_TYPES:
            raise CrawlError("fetch_failed", "not_html", f"{url} is {fetched.content_type}, not an HTML page.")
        return Page(url, fetched.url, fetched.content_type, fetched.body, depth)

    async def image(self, url: str) -> bytes:
        """An image's bytes, rate-limited per host. Images a page embeds are not crawled
        pages, so robots.txt is not consulted (as browsers and search engines render them)."""
        return (await self._get(url, "image/*")).body

    # ------------------------------------------------------------------ sitemaps

    async def sitemap(self, url: str, *, max_urls: int = 50_000, max_sitemaps: int = 100) -> AsyncIterator[str]:
        """Page URLs listed by a sitemap or sitemap index (nested indexes followed, each once)."""
        queue, seen, emitted = deque([url]), {url}, 0
        while queue and emitted < max_urls:
            current = queue.popleft()
            fetched = await self._get(current, "application/xml,text/xml;q=0.9,*/*;q=0.1")
            kind, locs = parse_sitemap(fetched.body, max_bytes=self.fetcher.max_bytes)
            for loc in locs:
                loc = urljoin(fetched.url, loc)
                if kind == "sitemapindex":
                    if loc not in seen and len(seen) < max_sitemaps:
                        seen.add(loc)
                        queue.append(loc)
                else:
                    yield loc
                    emitted += 1
                    if emitted >= max_urls:
                        return

    # ------------------------------------------------------------------ crawl

    async def crawl(self, start: str, *, max_depth: int = 1, max_pages: int = 100) -> AsyncIterator[Page | FetchError]:
        """Breadth-first over same-origin links from ``start``. Yields each Page, or the
        FetchError for a page that failed (with ``.url`` set), and goes on."""
        home = origin(start)
        start = urldefrag(start)[0]
        queue: deque[tuple[str, int]] = deque([(start, 0)])
        seen = {start}
        done = 0
        while queue and done < max_pages:
            url, depth = queue.popleft()
            done += 1
            try:
                page = await self.page(url, depth)
            except FetchError as exc:
                exc.url = url
                yield exc
                continue
            yield page
            if depth >= max_depth:
                continue
            for link in links(page.html, page.final_url):
                if origin(link) == home and link not in seen:
                    seen.add(link)
                    queue.append((link, depth + 1))


def links(html: str, base: str) -> list[str]:
    """Absolute http(s) links of a page (no fragments), honouring <base href>, in page order."""
    tree = HTMLParser(html)
    base_tag = tree.css_first("base[href]")
    if base_tag is not None:
        base = urljoin(base, base_tag.attributes.get("href") or "")
    out: list[str] = []
    for node in tree.css("a[href], area[href]"):
        href = (node.attributes.get("href") or "").strip()
        if not href or href.startswith(("#", "mailto:", "javascript:", "tel:", "data:")):
            continue
        url = urldefrag(urljoin(base, href))[0]
        if urlsplit(url).scheme in ("http", "https"):
            out.append(url)
    return list(dict.fromkeys(out))


def parse_sitemap(body: bytes, *, max_bytes: int = 50 * 2**20) -> tuple[str, list[str]]:
    """("urlset" | "sitemapindex", the <loc> values). Gzip is undone under a size cap;
    DTDs and entities are refused. Raises CrawlError."""
    if body[:2] == b"\x1f\x8b":
        body = _gunzip(body, max_bytes)
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except (DefusedXmlException, SafeET.ParseError, ValueError) as exc:
        raise CrawlError("fetch_failed", "bad_sitemap", f"The sitemap is not usable XML: {type(exc).__name__}.") from exc
    kind = root.tag.rsplit("}", 1)[-1]
    if kind not in ("urlset", "sitemapindex"):
        raise CrawlError("fetch_failed", "bad_sitemap", f"The document is a <{kind}>, not a sitemap.")
    locs = [el.text.strip() for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "loc" and el.text and el.text.strip()]
    return kind, locs


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    out = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = out.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise CrawlError("fetch_failed", "bad_sitemap", "The sitemap is not valid gzip.") from exc
    if len(data) > max_bytes:
        raise CrawlError("image_too_large", "bytes", f"The sitemap unpacks to more than {max_bytes} bytes.")
    return data


class BlockingCrawler:
    """A Crawler for synchronous code: one event loop on a private thread runs every call,
    so the fetcher's client and the rate limiter's state live in one loop."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="alttext-crawl", daemon=True)
        self._thread.start()

    def _run(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def page(self, url: str) -> Page:
        return self._run(self.crawler.page(url))

    def image(self, url: str) -> bytes:
        return self._run(self.crawler.image(url))

    def allowed(self, url: str) -> bool:
        return self._run(self.crawler.allowed(url))

    def _iterate(self, agen) -> Iterator:
        while True:
            try:
                yield self._run(agen.__anext__())
            except StopAsyncIteration:
                return

    def sitemap(self, url: str, **kwargs) -> Iterator[str]:
        return self._iterate(self.crawler.sitemap(url, **kwargs))

    def crawl(self, start: str, **kwargs) -> Iterator[Page | FetchError]:
        return self._iterate(self.crawler.crawl(start, **kwargs))

    def close(self) -> None:
        if self._loop.is_running():
            self._run(self.crawler.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> BlockingCrawler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def blocking_crawler(settings, *, min_interval_s: float = 1.0, respect_robots: bool = True,
                     resolver=None) -> BlockingCrawler:
    """A BlockingCrawler under the API's fetch settings (allowlist, timeout, byte cap, redirects)."""
    fetcher = Fetcher(allow=settings.fetch_allow, timeout_s=settings.fetch_timeout_s,
                      max_bytes=settings.max_image_bytes, max_redirects=settings.fetch_max_redirects,
                      resolver=resolver)
    return BlockingCrawler(Crawler(fetcher, min_interval_s=min_interval_s, respect_robots=respect_robots))
