"""The plugins' admin screens checked with axe-core in headless Chromium (tests/support/browser.py),
logged in as the site admin: WordPress's settings, backfill, media list and attachment screens, and
Wagtail's "Alt text" screen. On the CMS's own screens only what the plugin adds is checked (the CMS's
own markup is not ours to fix); the plugins' own pages are checked whole. Then the review action is
done by keyboard alone: Tab to "Approve", press Enter, and the CMS stores the approval."""
from __future__ import annotations

import importlib.util
import json
import time

from tests.support.browser import AXE_JS, Browser, require_browser
from tests.support.cms import WagtailSite, WordPressSite, missing_or_fail, wordpress_missing
from tests.support.images import COCO_FIXTURES

CATS = COCO_FIXTURES / "000000555705.jpg"
SIGN = COCO_FIXTURES / "000000226111.jpg"


def axe(browser: Browser, url: str, include: str) -> list[dict]:
    browser.load(url)
    assert browser.evaluate(f"document.querySelectorAll({json.dumps(include)}).length") > 0, f"{include} not on {url}"
    browser.evaluate(AXE_JS.read_text())
    run = f"axe.run({{include: [[{json.dumps(include)}]]}}).then(r => JSON.stringify(r.violations))"
    return json.loads(browser.evaluate(run, await_promise=True))


def summary(violations: list[dict]) -> list[tuple]:
    return [(v["id"], v["impact"], [n["html"][:120] for n in v["nodes"]]) for v in violations]


def tab_to(browser: Browser, predicate_js: str, limit: int = 250) -> None:
    """Press Tab until the focused element satisfies ``predicate_js`` (an expression over ``el``)."""
    for _ in range(limit):
        browser.press("Tab")
        if browser.evaluate(f"(el => !!el && ({predicate_js}))(document.activeElement)"):
            return
    raise AssertionError(f"never reached by Tab: {predicate_js}")


def eventually(check, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError("the action never took effect")
        time.sleep(0.2)
    return result


def with_cookies(browser: Browser, base: str, jar) -> None:
    for cookie in jar:
        browser.send("Network.setCookie", {"name": cookie.name, "value": cookie.value, "url": base + "/",
                                           "path": cookie.path or "/"})


def test_wordpress_plugin_screens_pass_axe(alttext_server, tmp_path):
    require_browser()
    missing_or_fail("WordPress", wordpress_missing())
    site = WordPressSite(tmp_path / "wp")
    try:
        site.start(alttext_server.base, alttext_server.key)
        poor = site.php("sideload", str(SIGN), "IMG_0001.jpg", "IMG_0001")["id"]
        site.php("wp", "alttext", "backfill")
        status, media = site.upload(CATS, "IMG_2041.jpg", caption="Milo and Luna guarding the front door")
        assert status == 201 and media["alt_text"]
        site.login()
        with Browser() as browser:
            with_cookies(browser, site.base, site.cookies)
            screens = [
                ("/wp-admin/options-general.php?page=alttext", "#wpbody-content"),
                ("/wp-admin/upload.php?page=alttext-backfill", "#wpbody-content"),
                ("/wp-admin/upload.php?mode=list", ".column-alttext"),
                (f"/wp-admin/post.php?post={poor}&action=edit", ".compat-field-alttext_status"),
            ]
            for path, include in screens:
                assert summary(axe(browser, site.base + path, include)) == [], path
            assert site.php("meta", str(poor))["needs_review"] == "1"
            browser.load(f"{site.base}/wp-admin/upload.php?mode=list")
            tab_to(browser, f"(el.href || '').includes('action=alttext_approve') && el.href.includes('attachment_id={poor}')")
            browser.press("Enter")
            eventually(lambda: site.php("meta", str(poor))["needs_review"] == "0")
    finally:
        site.stop()


def test_wagtail_alt_text_screen_passes_axe(alttext_server, tmp_path):
    require_browser()
    missing_or_fail("Wagtail app", None if importlib.util.find_spec("wagtail_alttext") else
                    "wagtail_alttext is not installed (pip install -e integrations/wagtail)")
    site = WagtailSite(tmp_path / "wagtail", alttext_server)
    try:
        site.start()
        site.seed_review_screen(SIGN, CATS)
        jar = site.login()[1]
        with Browser() as browser:
            with_cookies(browser, site.base, jar)
            assert summary(axe(browser, f"{site.base}/admin/alttext/", "main")) == []
            state = ("from wagtail_alttext.models import AltTextStatus; "
                     "print(AltTextStatus.objects.filter(needs_review=True).count())")
            assert site.manage("shell", "-c", state).split()[-1] == "1"
            tab_to(browser, "el.tagName === 'BUTTON' && el.textContent.trim().startsWith('Approve')")
            browser.press("Enter")
            eventually(lambda: site.manage("shell", "-c", state).split()[-1] == "0")
    finally:
        site.stop()
