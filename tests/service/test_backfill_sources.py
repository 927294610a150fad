"""`alttext backfill` on each kind of source, run for real on the debug drafter."""
from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from models.base import Capabilities
from models.debug import DebugDrafter
from service.backfill.writers import write_wp_cli
from tests.support.api import png
from tests.support.backfill import backfill, write_images
from tests.support.drafters import CountingDrafter
from tests.support.servers import LOCAL, Site

GOOD_ALT = "Fishing boats moored in Whitby harbour at dawn"


def by_id(rows):
    return {row["id"]: row for row in rows}


def test_folder_is_walked_recursively_and_duplicates_are_drafted_once(tmp_path):
    write_images(tmp_path / "site", {"a.png": "red", "b.png": "blue", "sub/c.png": "red", "sub/d.gif": "green",
                                     "notes.txt": "red"})
    (tmp_path / "site" / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    summary, rows, drafter = backfill(tmp_path / "site", tmp_path / "out.jsonl")
    assert [r["id"] for r in rows] == ["a.png", "b.png", "sub/broken.jpg", "sub/c.png", "sub/d.gif"]
    assert drafter.images == 3  # red, blue, green: sub/c.png is a.png's pixels under another name
    rows = by_id(rows)
    assert rows["sub/c.png"]["new_alt"] == rows["a.png"]["new_alt"] == "A 24 by 16 image, mostly red."
    assert rows["a.png"]["decision"] == "fill"
    assert (rows["sub/broken.jpg"]["decision"], rows["sub/broken.jpg"]["error_code"]) == ("error", "invalid_image")
    assert summary.decisions == {"fill": 4, "error": 1}
    assert summary.errors == {"invalid_image": 1}


def test_csv_manifest_gives_one_decision_per_item(tmp_path):
    write_images(tmp_path, {"img/red.png": "red", "img/blue.png": "blue", "img/green.png": "green"})
    (tmp_path / "manifest.csv").write_text(
        "id,src,caption,caption_visible,context,existing_alt,role,lang\n"
        f"1,img/red.png,,,,{GOOD_ALT},,\n"            # good human alt: kept, never drafted
        "2,img/blue.png,Our new boat,true,,,,en\n"     # no alt: filled
        "3,img/green.png,,,,IMG_2041.jpg,,\n"          # a file name: proposal only
        "4,img/red.png,,,,,decorative,\n"              # decorative
        "5,img/missing.png,,,,,,\n"                    # error row, the run goes on
        "6,img/red.png,,,,,wallpaper,\n"               # a bad role: error row
        "7,img/blue.png,,maybe,,,,\n",                 # a bad flag: error row
        encoding="utf-8")
    summary, rows, drafter = backfill(tmp_path / "manifest.csv", tmp_path / "out.csv")
    rows = by_id(rows)
    assert {k: r["decision"] for k, r in rows.items()} == {
        "1": "keep", "2": "fill", "3": "propose", "4": "decorative", "5": "error", "6": "error", "7": "error"}
    assert rows["1"]["new_alt"] == GOOD_ALT and rows["1"]["confidence"] == "1.0"
    assert rows["3"]["existing_alt"] == "IMG_2041.jpg" and rows["3"]["new_alt"]
    assert "existing_alt_filename" in rows["3"]["warnings"] and "file name" in rows["3"]["reasons"]
    assert rows["4"]["new_alt"] == ""
    assert rows["5"]["error_code"] == "not_found" and "No such file" in rows["5"]["reasons"]
    assert rows["6"]["error_code"] == "invalid_request" and "role" in rows["6"]["reasons"]
    assert drafter.images == 2  # blue and green; the kept and decorative ones cost no model call
    assert list(rows["2"]) == ["id", "src", "existing_alt", "new_alt", "decision", "confidence", "warnings",
                               "reasons", "error_code", "page", "wp_post_id", "selector"]


def test_jsonl_manifest_with_urls_bad_items_become_error_rows(tmp_path):
    with Site({"/ok.png": png("blue")}) as site:
        lines = [
            {"id": "ok", "src": site.url("/ok.png"), "context": "Our boat"},
            {"id": "404", "src": site.url("/gone.png")},
            {"id": "refused", "src": "http://10.0.0.7/x.png"},
            {"id": "metadata", "src": "http://169.254.169.254/latest/meta-data/"},
            {"id": "empty-alt", "src": site.url("/ok.png"), "existing_alt": ""},
        ]
        (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
        summary, rows, _ = backfill(tmp_path / "m.jsonl", tmp_path / "out.jsonl", allow=LOCAL)
    rows = by_id(rows)
    assert rows["ok"]["decision"] == "fill" and rows["ok"]["new_alt"].startswith("A 24 by 16 image")
    assert (rows["404"]["decision"], rows["404"]["error_code"]) == ("error", "fetch_failed")
    assert rows["refused"]["error_code"] == rows["metadata"]["error_code"] == "fetch_blocked"
    assert rows["empty-alt"]["decision"] == "propose"  # alt="" on an informative image is poor, not missing
    assert rows["line-6"]["error_code"] == "invalid_request"
    assert summary.items == 6


WXR = """<?xml version="1.0" encoding="UTF-8" ?>
<rss version="2.0" xmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"
     xmlns:content="http://purl.org/rss/1.0/modules/content/" xmlns:wp="http://wordpress.org/export/1.2/">
<channel><title>Harbour blog</title>
<item><title>Boats</title><wp:post_id>11</wp:post_id><wp:post_parent>10</wp:post_parent>
  <wp:post_type>attachment</wp:post_type>
  <wp:attachment_url>http://127.0.0.1:9/wp-content/uploads/2026/11/boats.png</wp:attachment_url>
  <content:encoded><![CDATA[Boats in the harbour]]></content:encoded>
  <excerpt:encoded><![CDATA[The fleet at dawn]]></excerpt:encoded>
  <wp:postmeta><wp:meta_key>_wp_attached_file</wp:meta_key><wp:meta_value>2026/11/boats.png</wp:meta_value></wp:postmeta>
  <wp:postmeta><wp:meta_key>_wp_attachment_image_alt</wp:meta_key><wp:meta_value></wp:meta_value></wp:postmeta>
</item>
<item><title>Pier</title><wp:post_id>12</wp:post_id><wp:post_type>attachment</wp:post_type>
  <wp:attachment_url>http://127.0.0.1:9/wp-content/uploads/2026/11/pier.png</wp:attachment_url>
  <wp:postmeta><wp:meta_key>_wp_attached_file</wp:meta_key><wp:meta_value>2026/11/pier.png</wp:meta_value></wp:postmeta>
  <wp:postmeta><wp:meta_key>_wp_attachment_image_alt</wp:meta_key><wp:meta_value>{good}</wp:meta_value></wp:postmeta>
</item>
<item><title>DSC_0042</title><wp:post_id>13</wp:post_id><wp:post_type>attachment</wp:post_type>
  <wp:attachment_url>http://127.0.0.1:9/wp-content/uploads/2026/11/dsc.png</wp:attachment_url>
  <wp:postmeta><wp:meta_key>_wp_attached_file</wp:meta_key><wp:meta_value>2026/11/dsc.png</wp:meta_value></wp:postmeta>
  <wp:postmeta><wp:meta_key>_wp_attachment_image_alt</wp:meta_key><wp:meta_value>DSC_0042.JPG</wp:meta_value></wp:postmeta>
</item>
<item><title>Lost</title><wp:post_id>14</wp:post_id><wp:post_type>attachment</wp:post_type>
  <wp:attachment_url>http://127.0.0.1:9/wp-content/uploads/2026/11/lost.png</wp:attachment_url>
</item>
<item><title>A day at the harbour</title><wp:post_id>10</wp:post_id><wp:post_type>post</wp:post_type>
  <content:encoded><![CDATA[<p>We spent the day with the fishing fleet.</p><img class="wp-image-13" src="x">]]></content:encoded>
  <wp:postmeta><wp:meta_key>_thumbnail_id</wp:meta_key><wp:meta_value>12</wp:meta_value></wp:postmeta>
</item>
</channel></rss>
"""


def fake_wp(tmp_path: Path) -> tuple[dict, Path]:
    """A `wp` on PATH that records its arguments, one JSON array per call."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "wp-calls.jsonl"
    script = bindir / "wp"
    script.write_text(f"#!{os.sys.executable}\nimport json, sys\n"
                      f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}, log


def test_wordpress_export_with_uploads_and_a_wp_cli_script(tmp_path):
    (tmp_path / "export.xml").write_text(WXR.replace("{good}", GOOD_ALT))
    write_images(tmp_path / "uploads" / "2026" / "11", {"boats.png": "blue", "pier.png": "green", "dsc.png": "red"})
    summary, rows, drafter = backfill(tmp_path / "export.xml", tmp_path / "out.jsonl", uploads=str(tmp_path / "uploads"))
    rows = by_id(rows)
    assert {k: r["decision"] for k, r in rows.items()} == {"wp-11": "fill", "wp-12": "keep", "wp-13": "propose",
                                                           "wp-14": "error"}
    assert rows["wp-14"]["error_code"] == "fetch_blocked"  # no local file; its URL is on loopback
    assert rows["wp-11"]["wp_post_id"] == "11"
    script = tmp_path / "out.wp-cli.sh"
    env, log = fake_wp(tmp_path)
    subprocess.run(["sh", str(script)], env=env, check=True)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [["post", "meta", "update", "11", "_wp_attachment_image_alt", rows["wp-11"]["new_alt"]]]

    # --overwrite-poor adds the proposal for the poor human alt (same checkpoint: nothing redrafted)
    before = drafter.images
    backfill(tmp_path / "export.xml", tmp_path / "out.jsonl", uploads=str(tmp_path / "uploads"), overwrite_poor=True,
             drafter=drafter)
    assert drafter.images == before
    assert "wp post meta update 13 " in script.read_text()


def test_the_context_of_an_attachment_comes_from_the_posts_that_use_it(tmp_path):
    from service.backfill.sources import wxr_items

    (tmp_path / "export.xml").write_text(WXR.replace("{good}", GOOD_ALT))
    items = {it.id: it for it in wxr_items(tmp_path / "export.xml")}
    assert items["wp-11"].page["caption"] == "The fleet at dawn"
    assert "A day at the harbour" in items["wp-11"].page["context"]  # its parent post
    assert "fishing fleet" in items["wp-13"].page["context"]          # wp-image-13 in a post
    assert "A day at the harbour" in items["wp-12"].page["context"]   # a featured image
    assert "existing_alt" not in items["wp-11"].page                   # empty meta = no alt


def test_wxr_with_entities_is_refused(tmp_path):
    from service.backfill.sources import SourceError, wxr_items

    (tmp_path / "bomb.xml").write_text('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]>'
                                       '<rss xmlns:wp="http://wordpress.org/export/1.2/"><channel>&a;</channel></rss>')
    with pytest.raises(SourceError):
        list(wxr_items(tmp_path / "bomb.xml"))


def test_wp_cli_script_quotes_every_value_safely(tmp_path):
    nasty = "It's $(touch pwned) `id` \"quoted\" ; rm -rf / & a \\ backslash\nnew line"
    rows = [{"decision": "fill", "wp_post_id": "7", "new_alt": nasty},
            {"decision": "fill", "wp_post_id": "8; rm -rf /", "new_alt": "x"},   # not a post id: skipped
            {"decision": "propose", "wp_post_id": "9", "new_alt": "poor one"},   # needs --overwrite-poor
            {"decision": "review", "wp_post_id": "10", "new_alt": "unsure"}]
    script = tmp_path / "apply.sh"
    assert write_wp_cli(rows, script, overwrite_poor=False) == 1
    env, log = fake_wp(tmp_path)
    subprocess.run(["sh", str(script)], env=env, check=True, cwd=tmp_path)
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert calls == [["post", "meta", "update", "7", "_wp_attachment_image_alt", nasty.replace("\n", " ")]]
    assert not (tmp_path / "pwned").exists()
    assert write_wp_cli(rows, script, overwrite_poor=True) == 2


class PromptedDrafter(CountingDrafter):
    """The debug drafter, declared promptable (as transformers and openai: backends are), and
    recording the page text each image was drafted with."""

    def __init__(self) -> None:
        super().__init__(DebugDrafter())
        self.hints: list[str] = []

    @property
    def capabilities(self):
        return Capabilities(takes_hints=True)

    def draft(self, images, hints=None):
        self.hints += [str(h) for h in hints]
        return super().draft(images, hints)


def test_promptable_backend_gets_page_text_and_is_remembered_per_caption(tmp_path):
    write_images(tmp_path, {"img/red.png": "red"})
    (tmp_path / "manifest.csv").write_text(
        "id,src,caption\n"
        "1,img/red.png,Our new boat\n"
        "2,img/red.png,Our new boat\n"      # same pixels, same page text: drafted once
        "3,img/red.png,The harbour wall\n",  # same pixels, other page text: drafted again
        encoding="utf-8")
    drafter = PromptedDrafter()
    summary, rows, _ = backfill(tmp_path / "manifest.csv", tmp_path / "out.jsonl", drafter=drafter)
    assert summary.decisions == {"fill": 3}
    assert drafter.images == 2
    assert sorted(drafter.hints) == ["Our new boat.", "The harbour wall."]
