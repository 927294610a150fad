"""A large JPEG is decoded the same way whichever way it comes in (``ALTTEXT_DECODE_SIDE``): an upload to
the HTTP API, the pipeline function that the CLI, backfill and evaluation harness call, and an audited
page, so one photo gets one alt text. The debug drafter names the size it was given, so the size shows
in the alt text a user reads."""
from __future__ import annotations

import asyncio
import io

from fastapi.testclient import TestClient
from PIL import Image

from models.debug import DebugDrafter
from service.app import create_app
from service.audit import AuditOptions, PageInput, audit_pages
from service.audit.run import file_loader
from service.cache import cache_key
from service.page import PageContext
from service.pipeline import describe_batch
from tests.support.api import settings, wait_ready


def big_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (3000, 2000), (30, 60, 220)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


HALF = "A 1500 by 1000 image, mostly blue."  # libjpeg's 1/2 scale keeps the long side >= 1024
FULL = "A 3000 by 2000 image, mostly blue."


def test_the_pipeline_decodes_by_the_setting(tmp_path):
    data = big_jpeg()
    assert describe_batch(DebugDrafter(), [data], settings=settings(tmp_path))[0].alt == HALF
    assert describe_batch(DebugDrafter(), [data], settings=settings(tmp_path, decode_side=None))[0].alt == FULL


def test_an_upload_is_decoded_as_the_pipeline_decodes_it(tmp_path):
    with TestClient(create_app(settings(tmp_path), DebugDrafter())) as client:
        wait_ready(client)
        r = client.post("/v1/alt-text", files={"image": ("big.jpg", big_jpeg(), "image/jpeg")})
    assert r.status_code == 200, r.text
    assert r.json()["alt"] == HALF


def test_an_audited_page_is_decoded_as_the_pipeline_decodes_it(tmp_path):
    conf = settings(tmp_path)
    (tmp_path / "big.jpg").write_bytes(big_jpeg())
    html = ('<!doctype html><html lang="en"><head><title>T</title></head><body>'
            '<img src="big.jpg" alt="A red barn"></body></html>')

    async def describer(pairs):
        return describe_batch(DebugDrafter(), [p[0] for p in pairs], [p[1] for p in pairs], conf)

    report = asyncio.run(audit_pages([PageInput("page.html", html=html, url=(tmp_path / "page.html").as_uri())],
                                     AuditOptions(check_images=True, image_limits=conf.image_limits()),
                                     loader=file_loader(), describer=describer))
    (finding,) = report.pages[0].findings
    assert finding.rule == "alt-mismatch" and finding.proposed_alt == HALF


def test_the_result_cache_does_not_answer_for_another_decode_size(tmp_path):
    model = DebugDrafter().model
    keys = {cache_key("0" * 64, model, PageContext(), settings(tmp_path, decode_side=side)) for side in (1024, 512, None)}
    assert len(keys) == 3
