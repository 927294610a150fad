#!/usr/bin/env python
"""Screenshots of the CMS integrations' media screens, with real alt text from a running service.

    .venv/bin/python scripts/cms-screenshots.py            # writes docs/wordpress-media-library.png
                                                           #    and docs/wagtail-alt-text.png

Needs what the integration tests need (scripts/setup.sh --dev) plus Debian's `chromium`
(apt-get install chromium). It starts `alttext serve`, a fresh WordPress and a Wagtail dev
server in a scratch directory, uploads two COCO fixture photos to each (one new upload, one
older image whose alt is a file name, then the backfill), logs in as the admin, saves the
media screen's HTML and lets headless Chromium render it (Chromium cannot take the login
cookie from the command line; the page's CSS and images load from the live site).
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.cms import AlttextServer, WagtailSite, WordPressSite  # noqa: E402
from tests.support.images import COCO_FIXTURES  # noqa: E402

CATS = COCO_FIXTURES / "000000555705.jpg"
OTHER = COCO_FIXTURES / "000000226111.jpg"
CHROMIUM = ["chromium", "--headless", "--no-sandbox", "--disable-background-networking",
            "--disable-component-update", "--disable-gpu", "--hide-scrollbars"]


def screenshot(html: str, base: str, out: Path, tmp: Path, size: str = "1280,760") -> None:
    page = tmp / (out.stem + ".html")
    page.write_text(re.sub(r"<head([^>]*)>", rf'<head\1><base href="{base}/">', html, count=1))
    subprocess.run([*CHROMIUM, f"--screenshot={out}", f"--window-size={size}", page.as_uri()], check=True,
                   capture_output=True, timeout=120)
    from PIL import Image

    with Image.open(out) as shot:  # 256 colours: a third of the bytes, no visible change on admin screens
        shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size // 1024} KiB)")


def wordpress(service: AlttextServer, tmp: Path) -> None:
    site = WordPressSite(tmp / "wp")
    try:
        site.start(service.base, service.key)
        site.php("settings", '{"timeout": 120}')  # the offline model on a busy machine can take a while
        old = site.php("sideload", str(OTHER), "IMG_0001.jpg", "IMG_0001")["id"]
        site.php("wp", "alttext", "backfill")
        parent = site.create_post("Our cats have a new favourite spot", "Milo and Luna sit by the front door every morning.")
        status, media = site.upload(CATS, "IMG_2041.jpg", caption="Milo and Luna guarding the front door", post=str(parent))
        assert status == 201 and media["alt_text"], media
        html = site.login().open(f"{site.base}/wp-admin/upload.php?mode=list", timeout=60).read().decode()
        assert "Needs review" in html and media["alt_text"] in html and str(old)
        screenshot(html, site.base, ROOT / "docs" / "wordpress-media-library.png", tmp)
    finally:
        site.stop()


def wagtail(service: AlttextServer, tmp: Path) -> None:
    site = WagtailSite(tmp / "wagtail", service)
    try:
        site.start()
        site.seed_review_screen(OTHER, CATS)
        html = site.login()[0].open(f"{site.base}/admin/alttext/", timeout=60).read().decode()
        assert "Needs review" in html and "AI-generated" in html, html[-3000:]
        screenshot(html, site.base, ROOT / "docs" / "wagtail-alt-text.png", tmp)
    finally:
        site.stop()


def main() -> None:
    which = sys.argv[1:] or ["wordpress", "wagtail"]
    with tempfile.TemporaryDirectory(prefix="alttext-shots-") as scratch:
        tmp = Path(scratch)
        # the embedded offline model (what a site gets by default), not the tests' debug backend
        service = AlttextServer(tmp / "serve", {"ALTTEXT_REQUIRE_API_KEY": "true", "ALTTEXT_MODEL": "offline"})
        service.key = service.create_key("screenshots", rate_limit=0)
        service.start()
        try:
            if "wordpress" in which:
                wordpress(service, tmp)
            if "wagtail" in which:
                wagtail(service, tmp)
        finally:
            service.stop()


if __name__ == "__main__":
    main()
