"""HTML sources: every kind of image occurrence with its context, and --apply with an undo record."""
from __future__ import annotations

from pathlib import Path

import pytest

from service.backfill.html import set_attribute
from tests.support.backfill import backfill, write_images
from tests.support.servers import LOCAL, Site

GOOD = "Fishing boats moored in Whitby harbour at dawn"
LAZY = "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"
PAGE = f"""<!doctype html>
<html lang="en-GB">
<head><meta charset="utf-8"><title>Harbour news</title></head>
<body>
<figure><img src="img/red.png" alt="{GOOD}"  width=24><figcaption>The harbour at dawn</figcaption></figure>
<figure><img src="img/blue.png"><figcaption>Our new boat, the Mary Rose</figcaption></figure>
<p>Tickets for the boat trip go on sale on Monday. <img src='img/green.png' alt='IMG_2041.jpg'></p>
<a href="/search"><img src="img/yellow.png" /></a>
<form><button type="submit"><img src="img/purple.png">Send</button>
<input type="image" src="img/orange.png" value="Search"></form>
<img src="img/map.png" usemap="#harbour" alt="Map of the harbour">
<map name="harbour"><area shape="rect" coords="0,0,10,10" href="/north-pier"></map>
<img class="lazy" src="{LAZY}" data-src="img/lazy.png">
<img src="img/spacer.png" role="presentation">
<img src="img/missing.png">
<p>caf\u00e9 \u2014 <img src="img/black.png"></p>
</body>
</html>
"""


@pytest.fixture
def site(tmp_path) -> Path:
    root = tmp_path / "site"
    write_images(root / "news" / "img", {"red.png": "red", "blue.png": "blue", "green.png": "green", "yellow.png": "yellow",
                                "purple.png": "purple", "orange.png": "orange", "map.png": "white",
                                "lazy.png": "grey", "spacer.png": "white", "black.png": "black"})
    (root / "news" / "index.html").write_text(PAGE, encoding="utf-8")
    (root / "about.html").write_bytes(b"<html><body><p>No pictures here.</p></body></html>")
    return root


def test_every_occurrence_with_its_context(site, tmp_path):
    summary, rows, _ = backfill(site, tmp_path / "out.jsonl")
    assert [r["id"] for r in rows] == [f"news/index.html#{i}" for i in range(12)]
    got = {r["src"].rsplit("/", 1)[-1]: r for r in rows}
    assert got["red.png"]["decision"] == "keep" and got["red.png"]["new_alt"] == GOOD
    assert got["blue.png"]["decision"] in ("fill", "review")
    assert got["green.png"]["decision"] == "propose"
    assert got["lazy.png"]["decision"] in ("fill", "review")  # data-src, not the placeholder, was described
    assert got["spacer.png"]["decision"] == "decorative" and got["spacer.png"]["new_alt"] == ""
    assert got["missing.png"]["decision"] == "error" and got["missing.png"]["error_code"] == "not_found"
    kinds = [r["location"]["kind"] for r in rows]
    assert kinds.count("area") == 1 and kinds.count("input-image") == 1
    area = next(r for r in rows if r["location"]["kind"] == "area")
    assert area["src"].endswith("map.png") and area["location"]["attr"] == "alt"
    assert summary.items == 12


def test_page_context_reaches_the_pipeline(site):
    from service.backfill.sources import iter_source

    items = {Path(it.src).name: it for it in iter_source(str(site)) if it.where["kind"] != "area"}
    assert items["blue.png"].page["caption"] == "Our new boat, the Mary Rose"
    assert items["blue.png"].page["lang"] == "en-GB"
    assert items["yellow.png"].page["role"] == "functional" and items["yellow.png"].page["link_href"] == "/search"
    assert items["purple.png"].page["link_text"] == "Send"
    assert items["orange.png"].page["action"] == "Search"
    assert "Tickets for the boat trip" in items["green.png"].page["context"]
    assert "Harbour news" in items["green.png"].page["context"]
    assert items["map.png"].page["existing_alt"] == "Map of the harbour"


def test_apply_writes_copies_keeps_good_alt_byte_identical_and_undo_restores(site, tmp_path):
    original = {p: p.read_bytes() for p in site.rglob("*") if p.is_file()}
    out_dir = tmp_path / "fixed"
    summary, rows, _ = backfill(site, tmp_path / "out.jsonl", apply_dir=out_dir)
    assert {p: p.read_bytes() for p in site.rglob("*") if p.is_file()} == original  # source untouched
    fixed = (out_dir / "news" / "index.html").read_text(encoding="utf-8")
    assert f'<img src="img/red.png" alt="{GOOD}"  width=24>' in fixed           # good human alt: same bytes
    assert "<img src='img/green.png' alt='IMG_2041.jpg'>" in fixed              # poor alt: only proposed
    blue = next(r for r in rows if r["src"].endswith("blue.png"))
    if blue["decision"] == "fill":
        assert f'<img src="img/blue.png" alt="{blue["new_alt"]}">' in fixed
    assert '<img src="img/spacer.png" role="presentation" alt="">' in fixed      # decorative, had no alt
    assert '<img src="img/missing.png">' in fixed                              # error: untouched
    assert "caf\u00e9 \u2014" in fixed
    # Only alt attributes were added: removing them gives back the original page, byte for byte.
    import re
    stripped = re.sub(r' alt="[^"]*"(?=\s*/?>)', "", fixed)
    assert stripped == re.sub(r' alt="[^"]*"(?=\s*/?>)', "", PAGE)
    assert summary.apply["pages"] == 1 and not (out_dir / "about.html").exists()

    # --overwrite-poor also writes the proposal over the poor human alt
    backfill(site, tmp_path / "out.jsonl", apply_dir=out_dir, overwrite_poor=True)
    assert "IMG_2041.jpg" not in (out_dir / "news" / "index.html").read_text()

    from service.backfill.writers import undo
    restored, problems = undo(tmp_path / "out.undo.json")
    assert problems == [] and not (out_dir / "news" / "index.html").exists()


def test_in_place_and_undo_restore_every_byte(site, tmp_path):
    page = site / "news" / "index.html"
    # A page that is not UTF-8 and uses CRLF: still restored exactly.
    page.write_bytes(PAGE.replace("\n", "\r\n").replace("caf\u00e9", "caf\xe9").encode("latin-1", errors="replace"))
    before = page.read_bytes()
    backfill(site, tmp_path / "out.jsonl", in_place=True)
    after = page.read_bytes()
    assert after != before and b"caf\xe9" in after  # the Latin-1 byte survived untouched
    from service.backfill.writers import undo
    restored, problems = undo(tmp_path / "out.undo.json")
    assert (restored, problems) == (1, []) and page.read_bytes() == before


def test_apply_refuses_the_source_folder_without_in_place(site, tmp_path):
    with pytest.raises(ValueError, match="in-place"):
        backfill(site, tmp_path / "out.jsonl", apply_dir=site)


def test_pages_from_a_sitemap_and_a_url_list(tmp_path):
    from tests.support.api import png

    with Site({"/robots.txt": "User-agent: *\nDisallow: /private/\n",
               "/a.html": '<html lang="fr"><img src="/img/a.png"></html>', "/img/a.png": png("red"),
               "/private/b.html": '<img src="/img/a.png">'}) as s:
        s.routes["/sitemap.xml"] = ('<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
                                    f"<url><loc>{s.url('/a.html')}</loc></url><url><loc>{s.url('/private/b.html')}</loc></url>"
                                    f"<url><loc>{s.url('/nope.html')}</loc></url></urlset>")
        summary, rows, _ = backfill(s.url("/sitemap.xml"), tmp_path / "out.jsonl", allow=LOCAL)
        assert [(r["decision"], r["error_code"]) for r in rows] == [
            ("review", None), ("error", "fetch_blocked"), ("error", "fetch_failed")]
        assert "language_mismatch" in rows[0]["warnings"]  # a French page: we write English, so a person checks
        assert "/private/b.html" not in s.paths()
        (tmp_path / "urls.txt").write_text(f"# pages\n{s.url('/a.html')}\n")
        _, rows, _ = backfill(tmp_path / "urls.txt", tmp_path / "urls.jsonl", allow=LOCAL)
        assert [r["id"] for r in rows] == [s.url("/a.html") + "#0"]


@pytest.mark.parametrize("raw, expected", [
    ('<img src="a.png">', '<img src="a.png" alt="X &amp; &quot;Y&quot;">'),
    ('<img src="a.png" />', '<img src="a.png" alt="X &amp; &quot;Y&quot;" />'),
    ("<img ALT='old' src=a.png>", '<img alt="X &amp; &quot;Y&quot;" src=a.png>'),
    ('<img data-alt="alt=x" src="a.png" alt>', '<img data-alt="alt=x" src="a.png" alt="X &amp; &quot;Y&quot;">'),
])
def test_set_attribute_touches_only_the_attribute(raw, expected):
    assert set_attribute(raw, "alt", 'X & "Y"') == expected
