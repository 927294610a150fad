"""Polite crawling against a real local site: robots.txt, per-host spacing, sitemaps, same-origin crawl."""
from __future__ import annotations

import asyncio
import gzip

import pytest

from service.crawl import BlockingCrawler, Crawler, CrawlError, HostLimiter, links, parse_sitemap
from service.fetch import Fetcher, FetchError
from tests.support.servers import LOCAL, Site, local_resolver


def crawler(*, interval: float = 0.0, robots: bool = True, allow=LOCAL) -> BlockingCrawler:
    fetcher = Fetcher(allow=allow, resolver=local_resolver, timeout_s=5)
    return BlockingCrawler(Crawler(fetcher, min_interval_s=interval, respect_robots=robots))


PAGE = '<html><body><a href="/b">b</a> <a href="/c#top">c</a> <a href="{other}">elsewhere</a>' \
       '<a href="mailto:x@example.org">mail</a></body></html>'


@pytest.fixture
def site():
    with Site() as s:
        s.routes.update({
            "/robots.txt": "User-agent: *\nDisallow: /private\n",
            "/": PAGE.format(other=f"http://localhost:{s.port}/"),
            "/b": '<a href="/b2">deeper</a><a href="/private/x">secret</a>',
            "/b2": "<p>two levels down</p>",
            "/c": "<p>c</p>",
            "/private/x": "<p>secret</p>",
        })
        yield s


def test_crawl_stays_on_origin_and_within_depth(site):
    with crawler() as c:
        pages = list(c.crawl(site.url("/"), max_depth=1))
    assert [p.final_url for p in pages] == [site.url("/"), site.url("/b"), site.url("/c")]
    assert "/b2" not in site.paths()  # depth 2
    assert all(host == f"127.0.0.1:{site.port}" for _, host, _, _ in site.hits)  # never the other origin


def test_robots_txt_is_obeyed_and_the_refused_page_is_never_requested(site):
    with crawler() as c:
        results = list(c.crawl(site.url("/"), max_depth=2))
    refused = [r for r in results if isinstance(r, FetchError)]
    assert [(e.reason, e.url) for e in refused] == [("robots", site.url("/private/x"))]
    assert "/private/x" not in site.paths()
    assert site.paths().count("/robots.txt") == 1  # fetched once per origin
    assert all(ua == "alttext-bot" for _, _, ua, _ in site.hits)


def test_max_pages_caps_the_crawl(site):
    with crawler() as c:
        assert len(list(c.crawl(site.url("/"), max_depth=5, max_pages=2))) == 2


def test_missing_robots_allows_and_a_failing_one_disallows():
    with Site({"/": "<p>home</p>"}) as s:
        with crawler() as c:
            assert c.page(s.url("/")).body == b"<p>home</p>"
    with Site({"/": "<p>home</p>", "/robots.txt": (503, "text/plain", "down")}) as s:
        with crawler() as c, pytest.raises(CrawlError) as info:
            c.page(s.url("/"))
        assert info.value.reason == "robots" and "/" not in s.paths()
    with Site({"/": "<p>home</p>", "/robots.txt": "User-agent: *\nDisallow: /\n"}) as s:
        with crawler(robots=False) as c:
            assert c.page(s.url("/")).body == b"<p>home</p>"


def test_ssrf_rules_still_apply_underneath(site):
    with crawler(allow=[]) as c, pytest.raises(FetchError) as info:
        c.page(site.url("/"))
    assert (info.value.code, info.value.reason) == ("fetch_blocked", "loopback")
    assert site.hits == []


def test_a_page_that_is_not_html_is_refused(site):
    site.routes["/data.txt"] = "plain"
    with crawler() as c, pytest.raises(CrawlError) as info:
        c.page(site.url("/data.txt"))
    assert info.value.reason == "not_html"


def test_requests_to_one_host_are_spaced_and_crawl_delay_is_honoured():
    with Site({"/robots.txt": "User-agent: *\nCrawl-delay: 1\n", "/a": "a", "/b": "b"}) as s:
        with crawler(interval=0.05) as c:
            c.page(s.url("/a"))
            c.page(s.url("/b"))
        times = [t for _, _, _, t in s.hits]
        assert [p for p, *_ in s.hits] == ["/robots.txt", "/a", "/b"]
        # Hits are timed by the server, whose threads a busy machine schedules late by up to a
        # few hundred ms; the robots delay (1 s) is far above our own interval (0.05 s) either way.
        assert times[2] - times[1] >= 0.75


def test_host_limiter_spaces_one_host_but_not_two():
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = HostLimiter(2.0, clock=lambda: now[0], sleep=sleep)

    async def go():
        await limiter.wait("a")
        await limiter.wait("b")
        await limiter.wait("a")

    asyncio.run(go())
    assert slept == [2.0]


URLSET = b"""<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <url><loc>%s</loc></url><url><loc> %s </loc></url>
</urlset>"""


def test_sitemap_index_with_gzip_children(site):
    site.routes["/sitemap.xml"] = (
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        "<sitemap><loc>/s1.xml.gz</loc></sitemap><sitemap><loc>/s2.xml</loc></sitemap>"
        "<sitemap><loc>/s1.xml.gz</loc></sitemap></sitemapindex>")
    site.routes["/s1.xml.gz"] = gzip.compress(URLSET % (site.url("/").encode(), site.url("/b").encode()))
    site.routes["/s2.xml"] = URLSET % (b"/c", b"/b2")
    with crawler() as c:
        urls = list(c.sitemap(site.url("/sitemap.xml")))
    assert urls == [site.url("/"), site.url("/b"), site.url("/c"), site.url("/b2")]
    assert site.paths().count("/s1.xml.gz") == 1


def test_sitemap_with_entities_or_wrong_root_is_refused():
    bomb = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><urlset><url><loc>&b;</loc></url></urlset>'
    with pytest.raises(CrawlError, match="not usable XML"):
        parse_sitemap(bomb)
    xxe = b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY x SYSTEM "file:///etc/passwd">]><urlset><url><loc>&x;</loc></url></urlset>'
    with pytest.raises(CrawlError):
        parse_sitemap(xxe)
    with pytest.raises(CrawlError, match="not a sitemap"):
        parse_sitemap(b"<rss><loc>x</loc></rss>")
    with pytest.raises(CrawlError) as info:
        parse_sitemap(gzip.compress(b"<urlset>" + b" " * 5000 + b"</urlset>"), max_bytes=1000)
    assert info.value.code == "image_too_large"


def test_links_honour_base_and_drop_fragments_and_other_schemes():
    html = '<base href="https://example.org/docs/"><a href="a.html#x">a</a><a href="/b">b</a>' \
           '<a href="javascript:void(0)">js</a><area href="map.html"><a href="ftp://x/y">ftp</a><a href="a.html">again</a>'
    assert links(html, "https://other.example/") == [
        "https://example.org/docs/a.html", "https://example.org/b", "https://example.org/docs/map.html"]
