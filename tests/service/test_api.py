"""The HTTP API through an ASGI client, on a tiny real drafter (mean colour)."""
from __future__ import annotations

import io
import json
import logging
import threading
import time

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.support.api import b64, metric, png, settings, wait_for, wait_ready
from tests.support.drafters import ColourDrafter
from tests.support.servers import LocalServer


@pytest.fixture
def drafter():
    return ColourDrafter()


@pytest.fixture
def client(tmp_path, drafter):
    with TestClient(create_app(settings(tmp_path), drafter)) as c:
        wait_ready(c)
        yield c


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return body["error"]


# --- health and readiness -----------------------------------------------------------------


def test_ready_is_503_until_the_model_is_loaded(tmp_path, monkeypatch):
    release = threading.Event()

    def slow_load(name, **options):
        release.wait(10)
        return ColourDrafter()

    monkeypatch.setattr("models.registry.load_drafter", slow_load)
    with TestClient(create_app(settings(tmp_path))) as c:
        assert c.get("/health").json() == {"status": "ok"}
        loading = c.get("/ready")
        assert loading.status_code == 503 and loading.headers["retry-after"]
        assert loading.json()["status"] == "loading"
        early = c.post("/v1/alt-text", files={"image": ("a.png", png("red"), "image/png")})
        assert error_of(early, 503, "overloaded") and early.headers["retry-after"]
        release.set()
        wait_ready(c)
        assert c.get("/ready").json()["model"]["id"] == "tiny-colour"
        assert c.post("/v1/alt-text", files={"image": ("a.png", png("red"), "image/png")}).status_code == 200


def test_ready_reports_where_and_in_which_precision_a_local_model_runs(tmp_path, monkeypatch):
    # A tiny BLIP with random weights through the real loader: auto picks bfloat16 on a CPU
    # with bf16 units (injected here, both ways), and ALTTEXT_DTYPE=float32 keeps float32.
    from evaluation.bench_service import build_model
    from models import transformers_backend

    # The result cache keys on the dtype: switching ALTTEXT_DTYPE=float32 gives float32's drafts,
    # not those cached in bfloat16 (one data folder throughout, the same image each time).
    model = str(build_model(tmp_path / "blip", tiny=True))
    for units, dtype, expected, first in (({"avx512_bf16": True}, None, "bfloat16", "miss"),
                                          ({"avx2": True}, "auto", "float32", "miss"),
                                          ({"amx_bf16": True}, "float32", "float32", "hit")):
        monkeypatch.setattr(transformers_backend, "cpu_capabilities", lambda units=units: units)
        with TestClient(create_app(settings(tmp_path, model=model, dtype=dtype, device="cpu"))) as c:
            wait_ready(c, timeout_s=60)
            ready = c.get("/ready").json()
            assert ready["model"] | {"revision": None} == {"id": model, "revision": None, "backend": "transformers",
                                                          "device": "cpu", "dtype": expected}
            assert c.post("/v1/alt-text", files={"image": ("a.png", png("red"), "image/png")}).status_code == 200
            assert metric(c.get("/metrics").text, "alttext_cache_lookups_total", result=first) == 1, (dtype, expected)
    with TestClient(create_app(settings(tmp_path / "colour"), ColourDrafter())) as c:
        wait_ready(c)
        assert "dtype" not in c.get("/ready").json()["model"]  # not a neural model: no precision to report


def test_ready_reports_a_model_that_failed_to_load(tmp_path, monkeypatch):
    def broken(name, **options):
        raise OSError("weights not found")

    monkeypatch.setattr("models.registry.load_drafter", broken)
    with TestClient(create_app(settings(tmp_path))) as c:
        time.sleep(0.2)
        r = c.get("/ready")
        assert r.status_code == 503 and r.json() == {"status": "failed", "model": None,
                                                     "detail": "OSError: weights not found"}
        assert c.get("/health").status_code == 200


# --- one image ---------------------------------------------------------------------------


def test_multipart_upload_with_page_fields(client):
    r = client.post("/v1/alt-text", files={"image": ("sky.png", png("blue"), "image/png")},
                    data={"caption": "The sky over Leeds", "caption_visible": "false", "max_chars": "80"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "blue" in body["alt"] and "Leeds" in body["alt"]
    assert body["ai_generated"] is True and body["draft"]["model"]["id"] == "tiny-colour"


def test_empty_form_fields_count_as_not_given(client):
    # A plugin posting a fresh upload sends existing_alt= (empty): that is "no alt yet",
    # not a human decision that the image is decorative.
    r = client.post("/v1/alt-text", files={"image": ("a.png", png("red"), "image/png")},
                    data={"existing_alt": "", "caption": "", "lang": "", "caption_visible": "1"})
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "draft" and r.json()["alt"] == "A mostly red image."
    # JSON can say "" explicitly, and then it is the human's alt
    r = client.post("/v1/alt-text", json={"image_base64": b64(png("red")), "existing_alt": ""})
    assert r.json()["source"] == "human"
    bad = client.post("/v1/alt-text", files={"image": ("a.png", png(), "image/png")}, data={"caption_visible": "yes"})
    assert bad.status_code == 422 and "caption_visible" in bad.json()["error"]["message"]


def test_decorative_role_gives_empty_alt(client):
    r = client.post("/v1/alt-text", files={"image": ("a.png", png("grey"), "image/png")}, data={"role": "decorative"})
    assert r.status_code == 200 and r.json()["alt"] == "" and r.json()["decorative"] is True


@pytest.mark.parametrize("encode", [b64, lambda data: "data:image/png;base64," + b64(data)])
def test_json_base64_and_data_urls(client, encode):
    r = client.post("/v1/alt-text", json={"image_base64": encode(png("green")), "lang": "en"})
    assert r.status_code == 200, r.text
    assert r.json()["alt"] == "A mostly green image."


def test_image_url_from_an_allowlisted_server(tmp_path, drafter):
    with LocalServer(png("yellow")) as srv, \
            TestClient(create_app(settings(tmp_path, fetch_allow=["127.0.0.1/32"]), drafter)) as c:
        wait_ready(c)
        r = c.post("/v1/alt-text", json={"image_url": srv.url("/img")})
        assert r.status_code == 200 and r.json()["alt"] == "A mostly yellow image."
        assert error_of(c.post("/v1/alt-text", json={"image_url": srv.url("/status/404")}), 502, "fetch_failed")
        assert metric(c.get("/metrics").text, "alttext_stage_duration_seconds_count", stage="fetch") == 2


def test_image_url_to_loopback_is_blocked_by_default(client):
    with LocalServer(png("red")) as srv:
        err = error_of(client.post("/v1/alt-text", json={"image_url": srv.url("/img")}), 400, "fetch_blocked")
        assert "loopback" in err["message"]
        assert srv.seen.requests == []


@pytest.mark.parametrize("data, status, code", [
    (b"\x89PNG\r\n\x1a\nbroken", 400, "invalid_image"),
    (b"just some text, not an image", 415, "unsupported_media_type"),
    (b"", 400, "invalid_image"),
])
def test_bad_uploads(client, data, status, code):
    error_of(client.post("/v1/alt-text", files={"image": ("x.png", data, "image/png")}), status, code)


def test_image_over_the_byte_limit(tmp_path, drafter):
    with TestClient(create_app(settings(tmp_path, max_image_bytes=2048), drafter)) as c:
        wait_ready(c)
        big = png((1, 2, 3), size=(300, 300)) + b"\0" * 4096
        error_of(c.post("/v1/alt-text", files={"image": ("a.png", big, "image/png")}), 413, "image_too_large")
        error_of(c.post("/v1/alt-text", json={"image_base64": b64(big)}), 413, "image_too_large")


def test_body_over_the_request_limit(tmp_path, drafter):
    with TestClient(create_app(settings(tmp_path, max_body_bytes=8192), drafter)) as c:
        wait_ready(c)
        error_of(c.post("/v1/alt-text", json={"image_base64": "A" * 20000}), 413, "payload_too_large")

        def chunked():  # no Content-Length: the cap is enforced while reading
            for _ in range(10):
                yield b"A" * 2000

        r = c.post("/v1/jobs", content=chunked(), headers={"content-type": "application/jsonl"})
        error_of(r, 413, "payload_too_large")


@pytest.mark.parametrize("body, fragment", [
    ({}, "exactly one of image_url or image_base64"),
    ({"image_url": "https://example.org/a.png", "image_base64": "AAAA"}, "exactly one"),
    ({"image_base64": "AAAA", "colour": "red"}, "colour"),
    ({"image_base64": "AAAA", "max_chars": 5}, "max_chars"),
    ({"image_base64": "AAAA", "role": "hero"}, "role"),
    ([1, 2], "ImageInput"),
])
def test_invalid_json_requests(client, body, fragment):
    err = error_of(client.post("/v1/alt-text", json=body), 422, "invalid_request")
    assert fragment.lower() in err["message"].lower()


def test_validation_errors_do_not_echo_input(client):
    secret = "s3cr3t-page-text-" + "x" * 20
    r = client.post("/v1/alt-text", json={"image_base64": b64(png()), "role": secret})
    assert r.status_code == 422 and secret not in r.text


def test_wrong_content_types_and_malformed_bodies(client):
    error_of(client.post("/v1/alt-text", content=b"abc", headers={"content-type": "text/plain"}),
             415, "unsupported_media_type")
    error_of(client.post("/v1/alt-text", content=b"{nope", headers={"content-type": "application/json"}),
             422, "invalid_request")
    error_of(client.post("/v1/alt-text", data={"caption": "no file"}, files={"other": ("a", b"b")}),
             422, "invalid_request")
    error_of(client.post("/v1/alt-text", files={"image": ("a.png", png(), "image/png")}, data={"bogus": "1"}),
             422, "invalid_request")


def test_unknown_routes_and_methods_use_the_envelope(client):
    error_of(client.get("/v1/nothing"), 404, "not_found")
    error_of(client.get("/v1/alt-text"), 405, "method_not_allowed")


def test_request_ids_are_echoed_or_made(client):
    r = client.get("/health", headers={"X-Request-Id": "cms-upload-42"})
    assert r.headers["x-request-id"] == "cms-upload-42"
    r = client.get("/health", headers={"X-Request-Id": "bad id\nwith newline"})
    assert r.headers["x-request-id"] != "bad id\nwith newline" and len(r.headers["x-request-id"]) == 32


# --- batch -------------------------------------------------------------------------------


def test_batch_keeps_order_and_isolates_bad_items(client):
    items = [{"id": "a", "image_base64": b64(png("red"))},
             {"id": "b", "image_base64": b64(b"not an image")},
             {"id": "c", "image_base64": b64(png("blue")), "role": "decorative"},
             {"image_url": "http://10.0.0.1/internal.png"},
             {"id": "e", "image_base64": b64(png("green"))}]
    r = client.post("/v1/alt-text:batch", json={"items": items})
    assert r.status_code == 200, r.text
    out = r.json()["results"]
    assert [x["index"] for x in out] == [0, 1, 2, 3, 4]
    assert [x["id"] for x in out] == ["a", "b", "c", None, "e"]
    assert [x["status"] for x in out] == ["ok", "error", "ok", "error", "ok"]
    assert out[0]["result"]["alt"] == "A mostly red image."
    assert out[1]["error"]["code"] == "unsupported_media_type"
    assert out[2]["result"]["alt"] == ""
    assert out[3]["error"]["code"] == "fetch_blocked"
    assert out[4]["result"]["alt"] == "A mostly green image."


def test_batch_size_limit(tmp_path, drafter):
    with TestClient(create_app(settings(tmp_path, max_batch_items=2), drafter)) as c:
        wait_ready(c)
        items = [{"image_base64": b64(png())}] * 3
        err = error_of(c.post("/v1/alt-text:batch", json={"items": items}), 422, "invalid_request")
        assert "/v1/jobs" in err["message"]
        error_of(c.post("/v1/alt-text:batch", json={"items": []}), 422, "invalid_request")


# --- cache, overload, timeout ------------------------------------------------------------


def test_cache_by_content_model_policy_and_page(client, drafter):
    image = png("purple")
    first = client.post("/v1/alt-text", json={"image_base64": b64(image), "caption": "Ours"})
    again = client.post("/v1/alt-text", json={"image_base64": b64(image), "caption": "Ours"})
    assert first.json() == again.json()
    assert sum(drafter.batches) == 1  # the second answer came from the cache
    other_page = client.post("/v1/alt-text", json={"image_base64": b64(image), "caption": "Theirs"})
    assert other_page.status_code == 200 and sum(drafter.batches) == 2
    text = client.get("/metrics").text
    assert metric(text, "alttext_cache_lookups_total", result="hit") == 1
    assert metric(text, "alttext_cache_lookups_total", result="miss") == 2


def test_cache_survives_a_restart(tmp_path):
    image = b64(png("orange"))
    first = ColourDrafter()
    with TestClient(create_app(settings(tmp_path), first)) as c:
        wait_ready(c)
        answer = c.post("/v1/alt-text", json={"image_base64": image}).json()
    second = ColourDrafter()
    with TestClient(create_app(settings(tmp_path), second)) as c:
        wait_ready(c)
        assert c.post("/v1/alt-text", json={"image_base64": image}).json() == answer
    assert second.batches == []


def test_overload_answers_503_with_retry_after(tmp_path):
    slow = ColourDrafter(delay_s=0.5)
    app = create_app(settings(tmp_path, queue_size=2, max_batch_items=2, batch_size=1, cache=False), slow)
    with TestClient(app) as c:
        wait_ready(c)
        results: list = []

        def call(i):
            results.append(c.post("/v1/alt-text", json={"image_base64": b64(png((i, 0, 0)))}))

        threads = [threading.Thread(target=call, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(r.status_code for r in results)
        assert 200 in statuses and 503 in statuses, statuses
        refused = next(r for r in results if r.status_code == 503)
        assert error_of(refused, 503, "overloaded") and int(refused.headers["retry-after"]) >= 1
        # never more requests in flight than the queue holds: the rest were turned away at the door
        assert metric(c.get("/metrics").text, "alttext_failures_total", code="overloaded", reason="in_flight") >= 1
        assert len(slow.batches) == statuses.count(200)


def test_a_batch_that_does_not_fit_the_queue_now_is_refused_whole(tmp_path):
    slow = ColourDrafter(delay_s=0.4)
    app = create_app(settings(tmp_path, queue_size=3, max_batch_items=3, batch_size=1, cache=False), slow)
    batch = {"items": [{"image_base64": b64(png(colour))} for colour in ("red", "blue", "green")]}
    with TestClient(app) as c:
        wait_ready(c)
        first: list = []
        t = threading.Thread(target=lambda: first.append(c.post("/v1/alt-text:batch", json=batch)))
        t.start()
        wait_for(lambda: metric(c.get("/metrics").text, "alttext_queue_depth", priority="interactive") >= 1)
        r = c.post("/v1/alt-text:batch", json=batch)
        error_of(r, 503, "overloaded")
        assert int(r.headers["retry-after"]) >= 1
        assert metric(c.get("/metrics").text, "alttext_failures_total", code="overloaded", reason="queue_full") == 1
        t.join()
        assert first[0].status_code == 200
        assert c.post("/v1/alt-text:batch", json=batch).status_code == 200  # room again: admitted


def test_slow_model_answers_504(tmp_path):
    with TestClient(create_app(settings(tmp_path, request_timeout_s=0.2), ColourDrafter(delay_s=1.0))) as c:
        wait_ready(c)
        error_of(c.post("/v1/alt-text", json={"image_base64": b64(png())}), 504, "timeout")


# --- metrics, logs, CORS -----------------------------------------------------------------


def test_metrics_cover_routes_stages_and_failures(client):
    client.post("/v1/alt-text", files={"image": ("a.png", png("red"), "image/png")})
    client.post("/v1/alt-text", files={"image": ("a.txt", b"hello", "text/plain")})
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert metric(text, "alttext_http_requests_total", route="/v1/alt-text", method="POST", status="200") == 1
    assert metric(text, "alttext_http_requests_total", route="/v1/alt-text", method="POST", status="415") == 1
    assert metric(text, "alttext_http_request_duration_seconds_count", route="/v1/alt-text", method="POST",
                  status="415") == 1
    for stage in ("decode", "draft", "merge"):
        assert metric(text, "alttext_stage_duration_seconds_count", stage=stage) >= 1, stage
    assert metric(text, "alttext_failures_total", code="unsupported_media_type", reason="unknown") == 1
    assert metric(text, "alttext_batch_size_count") == 1
    assert metric(text, "alttext_model_ready") == 1
    assert "alttext_queue_depth" in text


@pytest.fixture
def json_logs():
    """The service's JSON log lines, captured with the formatter `alttext serve` uses."""
    from service.observability import json_formatter

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(json_formatter())
    logger = logging.getLogger("service")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_logs_are_json_and_hold_no_keys_or_image_bytes(tmp_path, drafter, json_logs):
    app = create_app(settings(tmp_path, require_api_key=True), drafter)
    _, secret = app.state.services.keys.create("logs")
    image = b64(png("blue"))
    with TestClient(app) as c:
        wait_ready(c)
        r = c.post("/v1/alt-text", json={"image_base64": image}, headers={"Authorization": f"Bearer {secret}",
                                                                         "X-Request-Id": "log-test-1"})
        assert r.status_code == 200
        c.post("/v1/alt-text", json={"image_base64": image}, headers={"Authorization": "Bearer alt_wrong"})
        c.post("/v1/alt-text", json={"image_base64": image, "caption": "Private draft caption"},
               headers={"Authorization": f"Bearer {secret}"})
    text = json_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    access = [line for line in lines if line["logger"] == "service.access"]
    ours = next(line for line in access if line["request_id"] == "log-test-1")
    assert ours["route"] == "/v1/alt-text" and ours["status"] == 200 and ours["key_id"].startswith("key_")
    assert {"time", "level", "duration_ms", "method"} <= set(ours)
    assert any(line["status"] == 401 for line in access)
    assert secret not in text and "alt_wrong" not in text and image[:40] not in text
    assert "Private draft caption" not in text


def test_cors_for_configured_cms_origins(tmp_path, drafter):
    app = create_app(settings(tmp_path, cors_origins=["https://cms.example.org"]), drafter)
    with TestClient(app) as c:
        pre = c.options("/v1/alt-text", headers={"Origin": "https://cms.example.org",
                                                  "Access-Control-Request-Method": "POST",
                                                  "Access-Control-Request-Headers": "authorization"})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "https://cms.example.org"
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        other = c.options("/v1/alt-text", headers={"Origin": "https://evil.example",
                                                    "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in other.headers
        got = c.get("/health", headers={"Origin": "https://cms.example.org"})
        assert "x-request-id" in got.headers["access-control-expose-headers"].lower()
