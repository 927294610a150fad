"""Regression tests for the findings of the hardening review (issue 10), one section each,
through the real app on a tiny real drafter. docs/hardening.md lists what each covers."""
from __future__ import annotations

from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.merge import merge
from service.page import PageContext
from tests.support.api import b64, png, settings, wait_for, wait_ready
from tests.support.drafters import ColourDrafter
from tests.support.servers import LocalServer

SECRET = "whsec_" + b64(b"a test secret of thirty-two bytes")


def error_of(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    return body["error"]


@pytest.fixture
def server():
    with LocalServer(png("red")) as srv:
        yield srv


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(settings(tmp_path, fetch_allow=["127.0.0.1/32"]), ColourDrafter())) as c:
        wait_ready(c)
        yield c


# --- 1. IPv6 forms that embed IPv4 are refused, and no connection is attempted ------------------


@pytest.mark.parametrize("host", ["[::127.0.0.1]", "[::ffff:0:127.0.0.1]", "[64:ff9b::7f00:1]", "[2002:7f00:1::]"])
def test_embedded_loopback_is_refused_through_the_api(tmp_path, server, host):
    # Only 127.0.0.1/32 itself is allowlisted: its IPv6 disguises are not.
    with TestClient(create_app(settings(tmp_path, fetch_allow=["127.0.0.1/32"]), ColourDrafter())) as c:
        wait_ready(c)
        r = c.post("/v1/alt-text", json={"image_url": f"http://{host}:{server.port}/img"})
        assert "loopback" in error_of(r, 400, "fetch_blocked")["message"]
    assert server.seen.requests == []


# --- 2. Deeply nested JSON is a 422 on every route ----------------------------------------------


@pytest.mark.parametrize("route, body", [
    ("/v1/alt-text", '{"caption": %s}'),
    ("/v1/alt-text:batch", '{"items": [{"caption": %s}]}'),
    ("/v1/jobs", '{"items": [{"caption": %s}]}'),
])
def test_deeply_nested_json_is_invalid_request(client, route, body):
    deep = "[" * 5000 + "]" * 5000
    r = client.post(route, content=body % deep, headers={"Content-Type": "application/json"})
    error_of(r, 422, "invalid_request")


# --- 3. A redirect whose Location cannot be parsed ----------------------------------------------

BAD_LOCATION = "data:text/html,<script>alert(1)</script>"


def test_an_unparseable_redirect_is_fetch_failed_for_images(client, server):
    url = server.url("/redirect?to=" + quote(BAD_LOCATION, safe=""))
    error_of(client.post("/v1/alt-text", json={"image_url": url}), 502, "fetch_failed")
    batch = client.post("/v1/alt-text:batch", json={"items": [{"image_url": url}, {"image_base64": b64(png())}]})
    assert [r["status"] for r in batch.json()["results"]] == ["error", "ok"]
    assert batch.json()["results"][0]["error"]["code"] == "fetch_failed"
    job = client.post("/v1/jobs", json={"items": [{"image_url": url}]})
    done = wait_for(lambda: (j := client.get(job.headers["location"]).json())["status"] == "completed" and j)
    assert done["failed"] == 1
    item = client.get(job.headers["location"] + "/results").json()["items"][0]
    assert item["error"]["code"] == "fetch_failed"


@pytest.mark.parametrize("location", [BAD_LOCATION, "https://example.org/elsewhere"])
def test_a_redirecting_webhook_receiver_is_a_counted_failed_attempt(tmp_path, location):
    # Webhooks never follow redirects: each 3xx is one failed attempt, retried on schedule, then given up.
    with LocalServer() as hook, TestClient(create_app(
            settings(tmp_path, fetch_allow=["127.0.0.1/32"], webhook_secret=SECRET), ColourDrafter())) as c:
        wait_ready(c)
        target = hook.url("/redirect?to=" + quote(location, safe=""))
        r = c.post("/v1/jobs", json={"items": [{"image_base64": b64(png())}], "webhook": {"url": target}})
        job = wait_for(lambda: (j := c.get(r.headers["location"]).json())["webhook"]["state"] == "failed" and j)
        assert job["webhook"]["attempts"] == 3  # first try + two configured retries, then no more
        posts = [x for x in hook.seen.requests if x["method"] == "POST"]
        assert len(posts) == 3
        assert not any(x["method"] == "GET" for x in hook.seen.requests)


# --- 7. 405 names the allowed methods ----------------------------------------------------------


@pytest.mark.parametrize("method, path, allow", [
    ("GET", "/v1/alt-text", "POST"), ("PUT", "/v1/jobs/job_x", "GET, DELETE"), ("DELETE", "/health", "GET"),
    ("POST", "/metrics", "GET"), ("POST", "/v1/jobs/job_x/results", "GET"),
])
def test_405_carries_the_allowed_methods(client, method, path, allow):
    r = client.request(method, path)
    error_of(r, 405, "method_not_allowed")
    assert r.headers["allow"] == allow


# --- 9. Only http(s), mailto, tel and relative links give a purpose ------------------------------


@pytest.mark.parametrize("href", ["javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)",
                                  "java\tscript:alert(1)", "javascript\x00:alert(1)", "data:text/html,Hello",
                                  "vbscript:msgbox(1)", "file:///etc/passwd"])
def test_script_links_never_become_alt_text(href):
    result = merge(_draft(), PageContext(role="functional", link_href=href))
    assert "alert" not in result.alt.lower() and "script" not in result.alt.lower()
    assert "hello" not in result.alt.lower() and "passwd" not in result.alt.lower()
    assert "functional_purpose_unknown" in result.warnings


def test_script_links_through_the_api(client):
    r = client.post("/v1/alt-text", json={"image_base64": b64(png()), "role": "functional",
                                          "link_href": "javascript:alert(1)"})
    assert r.status_code == 200 and "alert" not in r.json()["alt"].lower()
    ok = client.post("/v1/alt-text", json={"image_base64": b64(png()), "role": "functional",
                                           "link_href": "https://example.org/about-us"})
    assert ok.json()["alt"] == "About us"


def _draft():
    from models.draft import Draft, Evidence, ModelRef

    return Draft(text="A small arrow icon.", confidence=0.9, evidence=Evidence(kind="illustration"),
                 model=ModelRef(id="t", revision="1", backend="test"), latency_ms=1.0)


# --- 8. Exposure: ops endpoints need a key where keys are required; Host names are checked -------


@pytest.mark.parametrize("path", ["/metrics", "/docs", "/redoc", "/openapi.json"])
def test_ops_endpoints_need_a_key_where_keys_are_required(tmp_path, path):
    app = create_app(settings(tmp_path, require_api_key=True), ColourDrafter())
    _, secret = app.state.services.keys.create("ops")
    with TestClient(app) as c:
        wait_ready(c)
        r = c.get(path)
        assert error_of(r, 401, "unauthorized") and r.headers["www-authenticate"] == "Bearer"
        assert c.get(path, headers={"Authorization": "Bearer alt_wrong"}).status_code == 401
        assert c.get(path, headers={"Authorization": f"Bearer {secret}"}).status_code == 200
        assert c.get("/health").status_code == 200 and c.get("/ready").status_code == 200


def test_ops_protection_can_be_switched_off(tmp_path):
    with TestClient(create_app(settings(tmp_path, require_api_key=True, protect_ops=False), ColourDrafter())) as c:
        wait_ready(c)
        assert c.get("/metrics").status_code == 200 and c.get("/openapi.json").status_code == 200


def test_loopback_without_keys_keeps_ops_open(client):
    assert client.get("/metrics").status_code == 200


def _default_hosts(tmp_path, **overrides):
    from service.settings import Settings

    return Settings(_env_file=None, data_dir=tmp_path, **overrides)


@pytest.mark.parametrize("host, status", [
    ("127.0.0.1:8000", 200), ("localhost", 200), ("LOCALHOST:1234", 200), ("[::1]:8000", 200),
    ("attacker.example:8000", 400), ("127.0.0.1.nip.io", 400), ("localhost.attacker.example", 400), ("", 400),
])
def test_a_loopback_service_answers_loopback_names_only(tmp_path, host, status):
    # DNS rebinding: the attacker's page reaches 127.0.0.1 but its requests still say Host: attacker.example.
    with TestClient(create_app(_default_hosts(tmp_path), ColourDrafter()), base_url="http://127.0.0.1") as c:
        wait_ready(c)
        r = c.post("/v1/alt-text", json={"image_base64": b64(png())}, headers={"Host": host})
        assert r.status_code == status, r.text
        if status == 400:
            error_of(r, 400, "host_not_allowed")
            assert error_of(c.get("/metrics", headers={"Host": host}), 400, "host_not_allowed")


def test_allowed_hosts_setting(tmp_path):
    from service.settings import Settings

    conf = Settings(_env_file=None, data_dir=tmp_path, allowed_hosts="alt.example.org,*.internal.example")
    assert conf.host_names == ["alt.example.org", "*.internal.example"]
    assert _default_hosts(tmp_path, host="0.0.0.0").host_names == ["*"]  # beyond loopback keys guard it
    with TestClient(create_app(conf, ColourDrafter())) as c:
        assert c.get("/health", headers={"Host": "alt.example.org"}).status_code == 200
        assert c.get("/health", headers={"Host": "a.internal.example:443"}).status_code == 200
        assert c.get("/health", headers={"Host": "localhost"}).status_code == 400


# --- 6. A queue smaller than the batch limit is refused at start-up ------------------------------


def test_a_queue_smaller_than_a_batch_is_refused_at_startup(tmp_path):
    from pydantic import ValidationError

    from service.settings import Settings

    with pytest.raises(ValidationError, match="ALTTEXT_QUEUE_SIZE .4. must be at least ALTTEXT_MAX_BATCH_ITEMS .32."):
        Settings(_env_file=None, data_dir=tmp_path, queue_size=4)
    assert Settings(_env_file=None, data_dir=tmp_path, queue_size=4, max_batch_items=4).queue_size == 4


def test_serve_says_which_setting_is_wrong_and_does_not_start(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from service.cli import app as cli
    from service.settings import get_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ALTTEXT_QUEUE_SIZE", "4")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["serve", "--port", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "ALTTEXT_QUEUE_SIZE (4) must be at least ALTTEXT_MAX_BATCH_ITEMS (32)" in result.output


# --- 5. Jobs and batches spend the per-key image budget by item ---------------------------------


def test_jobs_and_batches_spend_the_key_budget_by_image(tmp_path):
    app = create_app(settings(tmp_path, require_api_key=True), ColourDrafter())
    _, two = app.state.services.keys.create("two a minute", rate_limit=2)
    _, ten = app.state.services.keys.create("ten a minute", rate_limit=10)
    auth2, auth10 = {"Authorization": f"Bearer {two}"}, {"Authorization": f"Bearer {ten}"}
    forty = {"items": [{"image_base64": b64(png())}] * 40}
    with TestClient(app) as c:
        wait_ready(c)
        # more images than the key may describe in a minute: never fits, so 422 (not a retry loop)
        for route, body in (("/v1/jobs", forty), ("/v1/alt-text:batch", {"items": forty["items"][:20]})):
            r = c.post(route, json=body, headers=auth2)
            assert "2 images a minute" in error_of(r, 422, "invalid_request")["message"]
        # within the budget: accepted and charged per image, then 429 with Retry-After
        six = {"items": [{"image_base64": b64(png())}] * 6}
        first = c.post("/v1/jobs", json=six, headers={**auth10, "Idempotency-Key": "k1"})
        assert first.status_code == 202
        again = c.post("/v1/jobs", json=six, headers={**auth10, "Idempotency-Key": "k1"})  # replay: free
        assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
        second = c.post("/v1/jobs", json=six, headers=auth10)
        assert error_of(second, 429, "rate_limited") and int(second.headers["retry-after"]) >= 1
        # 10 - 6 (job) - 1 (replay, one call) - 1 (refused call) leaves 2: one batch of two, then none
        assert c.post("/v1/alt-text:batch", json={"items": six["items"][:2]}, headers=auth10).status_code == 200
        assert c.post("/v1/alt-text:batch", json={"items": six["items"][:2]}, headers=auth10).status_code == 429


# --- 4. JSON bodies: a smaller limit, and a budget of bytes in flight across requests -----------


def test_json_bodies_have_their_own_smaller_limit(tmp_path):
    conf = settings(tmp_path, max_body_bytes=64 * 1024, max_json_body_bytes=16 * 1024, max_image_bytes=48 * 1024)
    with TestClient(create_app(conf, ColourDrafter())) as c:
        wait_ready(c)
        body = {"image_base64": b64(png()), "context": "x" * 20_000}
        error_of(c.post("/v1/alt-text", json=body), 413, "payload_too_large")
        jsonl = ('{"image_base64": "%s", "context": "%s"}\n' % (b64(png()), "x" * 20_000)).encode()
        error_of(c.post("/v1/jobs", content=jsonl, headers={"Content-Type": "application/jsonl"}), 413,
                 "payload_too_large")
        # chunked (no Content-Length): counted while reading
        r = c.post("/v1/alt-text:batch", content=iter([b'{"items": [', b" " * 20_000, b"]}"]),
                   headers={"Content-Type": "application/json"})
        error_of(r, 413, "payload_too_large")
        # a multipart upload of the same size is fine: files spool to disk
        big = png("blue", size=(400, 300))
        assert len(big) < 48 * 1024
        ok = c.post("/v1/alt-text", files={"image": ("a.png", big, "image/png")}, data={"context": "x" * 2000})
        assert ok.status_code == 200, ok.text


def test_json_bytes_in_flight_are_bounded_across_requests(tmp_path):
    import threading

    conf = settings(tmp_path, max_json_body_bytes=64 * 1024, json_bytes_in_flight=48 * 1024, cache=False)
    slow = ColourDrafter(delay_s=0.6)
    body = {"image_base64": b64(_noise_png(100, 75))}  # ~30 KB each: two do not fit
    with TestClient(create_app(conf, slow)) as c:
        wait_ready(c)
        first: list = []
        t = threading.Thread(target=lambda: first.append(c.post("/v1/alt-text", json=body)))
        t.start()
        wait_for(lambda: slow.batches)  # the first request is being described, its body still held
        r = c.post("/v1/alt-text", json=body)
        error_of(r, 503, "overloaded")
        assert r.headers["retry-after"] == "1"
        small = c.post("/v1/alt-text", json={"image_base64": b64(png())})  # small bodies still fit
        assert small.status_code == 200
        t.join()
        assert first[0].status_code == 200
        assert c.post("/v1/alt-text", json=body).status_code == 200  # released: admitted again


def _noise_png(w: int, h: int) -> bytes:
    import io
    import os

    from PIL import Image

    buf = io.BytesIO()
    Image.frombytes("RGB", (w, h), os.urandom(w * h * 3)).save(buf, "PNG")
    return buf.getvalue()
