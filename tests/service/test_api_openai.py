"""The HTTP API with ALTTEXT_MODEL=openai:MODEL in front of a real local server speaking the protocol."""
from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from tests.support.api import metric, png, settings, wait_ready
from tests.support.openai_server import FakeVLMServer

FAST_RETRY = {"retry-after-ms": "10"}


@pytest.fixture
def server():
    with FakeVLMServer() as running:
        running.reply = "Here is the alt text: Ein rotes Quadrat."
        yield running


@pytest.fixture(autouse=True)
def no_env_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the backend's settings read .env too


def app_settings(tmp_path, server, monkeypatch, **overrides):
    # The openai backend keeps its own settings (ALTTEXT_OPENAI_*), as users set them.
    for name, value in {"BASE_URL": server.base_url, "API_KEY": "k", "MAX_RETRIES": "1", "TIMEOUT_S": "5"}.items():
        monkeypatch.setenv(f"ALTTEXT_OPENAI_{name}", value)
    return settings(tmp_path, model="openai:tiny-vlm", **overrides)


def test_remote_model_end_to_end(tmp_path, server, monkeypatch):
    with TestClient(create_app(app_settings(tmp_path, server, monkeypatch))) as c:
        wait_ready(c)
        ready = c.get("/ready").json()
        assert ready["status"] == "ready" and ready["model"]["id"] == "openai:tiny-vlm"
        assert "serves 'tiny-vlm'" in ready["detail"]
        r = c.post("/v1/alt-text", files={"image": ("a.png", png("red"), "image/png")},
                   data={"lang": "de", "caption": "Das Logo"})
        assert r.status_code == 200, r.text
        result = r.json()
        assert result["alt"].endswith("rotes Quadrat.") and "Here is" not in result["alt"]
        assert result["draft"]["lang"] == "de"
        assert "language_mismatch" not in result["warnings"]  # asked for German, wrote German
        prompt = server.bodies[-1]["messages"][0]["content"][1]["text"]
        assert "in German" in prompt and 'Caption: "Das Logo."' in prompt
        text = c.get("/metrics").text
        assert metric(text, "alttext_upstream_request_duration_seconds_count", outcome="ok") >= 1
        assert metric(text, "alttext_upstream_up") == 1


def test_upstream_errors_map_to_codes_and_metrics(tmp_path, server, monkeypatch):
    with TestClient(create_app(app_settings(tmp_path, server, monkeypatch, cache=False))) as c:
        wait_ready(c)
        server.script = [(500, FAST_RETRY, None)] * 2
        r = c.post("/v1/alt-text", files={"image": ("a.png", png("blue"), "image/png")})
        assert r.status_code == 502 and r.json()["error"]["code"] == "upstream_unavailable"
        server.script = [(429, FAST_RETRY | {"retry-after": "3"}, None)] * 2
        r = c.post("/v1/alt-text", files={"image": ("a.png", png("green"), "image/png")})
        assert r.status_code == 503 and r.json()["error"]["code"] == "upstream_rate_limited"
        assert r.headers["retry-after"] == "3"
        text = c.get("/metrics").text
        assert metric(text, "alttext_upstream_errors_total", code="upstream_unavailable") == 1
        assert metric(text, "alttext_upstream_errors_total", code="upstream_rate_limited") == 1


def test_ready_is_503_while_the_server_is_down(tmp_path, monkeypatch):
    with FakeVLMServer() as server:
        base_url = server.base_url
    monkeypatch.setenv("ALTTEXT_OPENAI_BASE_URL", base_url)
    monkeypatch.setenv("ALTTEXT_OPENAI_MAX_RETRIES", "0")
    with TestClient(create_app(settings(tmp_path, model="openai:tiny-vlm"))) as c:
        deadline = time.monotonic() + 10
        while (r := c.get("/ready")).json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert r.status_code == 503 and r.json()["status"] == "unavailable"
        assert base_url in r.json()["detail"] and r.headers["retry-after"]
        assert c.get("/health").status_code == 200


def test_model_that_cannot_load_keeps_ready_503_with_one_line(tmp_path):
    with TestClient(create_app(settings(tmp_path, model=str(tmp_path / "no-such-model")))) as c:
        deadline = time.monotonic() + 20
        while (r := c.get("/ready")).json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert r.status_code == 503 and r.json()["status"] == "failed"
        detail = r.json()["detail"]
        assert detail.startswith("model_unavailable: cannot load model") and "no-such-model" in detail
        assert "\n" not in detail
        assert c.get("/health").status_code == 200
