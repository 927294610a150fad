"""The WordPress plugin (integrations/wordpress/alttext) on a real WordPress 6.1 + MariaDB + PHP's
built-in server, talking to a real `alttext serve`. Nothing is mocked: uploads go through the REST
API, the backfill runs the plugin's WP-CLI command class, retries run through wp-cron.php."""
from __future__ import annotations

import json
import re
import time
import subprocess
import urllib.error

import pytest

from tests.support.images import COCO_FIXTURES
from tests.support.api import free_port
from tests.support.cms import PLUGIN, WordPressSite, missing_or_fail, wordpress_missing

CATS = COCO_FIXTURES / "000000555705.jpg"
OTHER = sorted(p for p in COCO_FIXTURES.glob("*.jpg") if p != CATS)


@pytest.fixture(scope="module")
def site(alttext_server, tmp_path_factory):
    missing_or_fail("WordPress", wordpress_missing())
    wp = WordPressSite(tmp_path_factory.mktemp("wordpress"))
    try:
        wp.start(alttext_server.base, alttext_server.key)
        yield wp
    finally:
        wp.stop()


def test_every_plugin_file_passes_php_lint():
    missing_or_fail("php", None if subprocess.run(["which", "php"], capture_output=True).returncode == 0 else "no php")
    files = sorted(PLUGIN.rglob("*.php"))
    assert len(files) >= 7
    for path in files:
        out = subprocess.run(["php", "-l", str(path)], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr


def test_upload_through_rest_gets_alt_text_from_the_running_service(site, alttext_server):
    parent = site.create_post("Our cats have a new favourite spot", "Milo and Luna sit by the front door every morning.")
    status, media = site.upload(CATS, "IMG_2041.jpg", caption="Milo and Luna guarding the front door", post=str(parent))
    assert status == 201, media
    meta = site.php("meta", str(media["id"]))
    expected = alttext_server.describe(
        CATS, caption="Milo and Luna guarding the front door", caption_visible=True, lang="en-GB", max_chars=125,
        context="Our cats have a new favourite spot\nMilo and Luna sit by the front door every morning.")
    assert expected["alt"] and expected["source"] != "human"
    # what the editor sees in the REST answer and in the attachment's alt field is the service's text
    assert media["alt_text"] == expected["alt"] == meta["alt"]
    assert meta["ai_generated"] == "1" and meta["source"] == "draft"
    assert meta["needs_review"] == ("1" if expected["needs_review"] else "0")
    assert float(meta["confidence"]) == pytest.approx(expected["confidence"])
    assert "pending" not in meta
    # the service saw this attachment's request (X-Request-Id), authenticated with the plugin's key
    assert f'"request_id": "wp-attachment-{media["id"]}"' in alttext_server.log.read_text().replace('":"', '": "')


def test_alt_typed_by_an_editor_becomes_human_alt(site):
    status, media = site.upload(OTHER[0], "IMG_3001.jpg")
    assert status == 201 and media["alt_text"]
    assert site.php("meta", str(media["id"]))["ai_generated"] == "1"
    status, edited = site.rest("POST", f"/wp/v2/media/{media['id']}", json.dumps({"alt_text": "A red bus outside the depot"}).encode(),
                               {"Content-Type": "application/json"})
    assert status == 200 and edited["alt_text"] == "A red bus outside the depot"
    meta = site.php("meta", str(media["id"]))
    assert "ai_generated" not in meta and meta["source"] == "human" and meta["alt"] == "A red bus outside the depot"


def test_service_down_never_blocks_an_upload_and_wp_cron_retries(site, alttext_server):
    site.php("settings", '{"service_url": "http://127.0.0.1:%d"}' % free_port())
    try:
        status, media = site.upload(OTHER[1], "IMG_3002.jpg")
        assert status == 201 and media["alt_text"] == ""          # the upload went through, no alt yet
        meta = site.php("meta", str(media["id"]))
        assert int(meta["pending"]) > 0 and meta["error"]["code"] == "alttext_unreachable"
        page = site.login().open(f"{site.base}/wp-admin/options-general.php?page=alttext", timeout=30).read().decode()
        assert "Last service error" in page and "alttext_unreachable" in page
        assert "1 image is waiting for a retry" in page
    finally:
        site.php("settings", '{"service_url": "%s"}' % alttext_server.base)
    due = site.php("make-due")                                   # as if the backoff delay had passed
    assert media["id"] in due["due"] and due["was_scheduled_at"]
    site.cron()
    meta = site.php("meta", str(media["id"]))
    assert meta["alt"] and meta["ai_generated"] == "1" and "pending" not in meta and "error" not in meta
    page = site.login().open(f"{site.base}/wp-admin/options-general.php?page=alttext", timeout=30).read().decode()
    assert "No service errors since the last successful call" in page


def test_429_is_retried_after_the_services_retry_after(site, alttext_server):
    limited = alttext_server.create_key("wp-limited", rate_limit=1)
    site.php("settings", '{"api_key": "%s"}' % limited)
    try:
        first = site.upload(OTHER[2], "IMG_3003.jpg")[1]
        second = site.upload(OTHER[3], "IMG_3004.jpg")[1]
        assert first["alt_text"] and second["alt_text"] == ""
        meta = site.php("meta", str(second["id"]))
        assert meta["error"]["code"] == "alttext_rate_limited"
        assert 0 < int(meta["pending"]) - time.time() <= 61       # Retry-After, not the default backoff
    finally:
        site.php("settings", '{"api_key": "%s"}' % alttext_server.key)


def test_api_key_is_never_printed_back(site, alttext_server):
    page = site.login().open(f"{site.base}/wp-admin/options-general.php?page=alttext", timeout=30).read().decode()
    assert alttext_server.key not in page and "A key is saved" in page


def test_media_screen_shows_review_state_and_approve_needs_a_valid_nonce(site):
    site.php("settings", '{"mode": "propose"}')
    try:
        status, media = site.upload(OTHER[4], "IMG_3005.jpg")
    finally:
        site.php("settings", '{"mode": "fill"}')
    assert status == 201 and media["alt_text"] == ""              # propose mode: the field stays empty
    meta = site.php("meta", str(media["id"]))
    assert meta["proposal"] and meta["needs_review"] == "1"
    browser = site.login()
    listing = browser.open(f"{site.base}/wp-admin/upload.php?mode=list", timeout=30).read().decode()
    assert "Needs review" in listing and "AI-generated" in listing and "Proposed alt text:" in listing
    links = re.findall(r'href="([^"]*action=alttext_approve&(?:amp;|#038;)attachment_id=%d[^"]*)"' % media["id"], listing)
    assert links, "no approve link for the proposal"
    url = links[0].replace("&amp;", "&").replace("&#038;", "&")
    with pytest.raises(urllib.error.HTTPError) as forged:          # same link, wrong nonce
        browser.open(re.sub(r"_wpnonce=\w+", "_wpnonce=0123456789", url), timeout=30)
    assert forged.value.code == 403
    assert site.php("meta", str(media["id"]))["alt"] == ""
    browser.open(url, timeout=30).read()
    meta = site.php("meta", str(media["id"]))
    assert meta["alt"] == meta["generated_alt"] and meta["needs_review"] == "0" and "proposal" not in meta


def test_backfill_command_is_resumable_and_keeps_human_alt(site):
    empty = site.php("sideload", str(OTHER[5]), "old-1.jpg", "")["id"]
    poor = site.php("sideload", str(OTHER[6]), "old-2.jpg", "IMG_0001")["id"]
    good = site.php("sideload", str(CATS), "old-3.jpg", "Two tabby cats asleep on a pair of trainers")["id"]

    dry = site.php("wp", "alttext", "backfill", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"{empty}\twould be filled\t" in dry.stdout and "Dry run:" in dry.stdout
    assert site.php("meta", str(empty))["alt"] == ""              # nothing saved

    first = site.php("wp", "alttext", "backfill", "--limit=1")
    assert first.returncode == 0 and "run again to continue" in first.stdout, first.stdout + first.stderr
    rest = site.php("wp", "alttext", "backfill")
    assert rest.returncode == 0 and "every image checked" in rest.stdout, rest.stdout + rest.stderr
    lines = (first.stdout + rest.stdout).splitlines()
    ids = [int(line.split("\t")[0]) for line in lines if "\t" in line]
    assert len(ids) == len(set(ids)) and {empty, poor, good} <= set(ids)   # each once: the second run resumed

    filled, flagged, kept = (site.php("meta", str(i)) for i in (empty, poor, good))
    assert filled["alt"] and filled["ai_generated"] == "1"
    assert flagged["alt"] == "IMG_0001" and flagged["proposal"] and flagged["needs_review"] == "1"
    assert "existing_alt_filename" in flagged["warnings"] and "ai_generated" not in flagged
    assert kept["alt"] == "Two tabby cats asleep on a pair of trainers" and "ai_generated" not in kept

    again = site.php("wp", "alttext", "backfill", "--restart", "--overwrite-human")
    assert again.returncode == 0 and "every image checked" in again.stdout
    # checked images are not sent again; a never-checked image with human alt would be


def test_backfill_reports_an_unreachable_service_and_resumes(site, alttext_server):
    todo = site.php("sideload", str(OTHER[0]), "old-4.jpg", "")["id"]
    site.php("settings", '{"service_url": "http://127.0.0.1:%d"}' % free_port())
    try:
        down = site.php("wp", "alttext", "backfill")
        assert down.returncode == 1 and "Run the command again to resume" in down.stderr
    finally:
        site.php("settings", '{"service_url": "%s"}' % alttext_server.base)
    up = site.php("wp", "alttext", "backfill")
    assert up.returncode == 0 and f"{todo}\tfilled\t" in up.stdout, up.stdout + up.stderr
