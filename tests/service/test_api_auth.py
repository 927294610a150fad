"""API keys: hashed at rest, required beyond loopback, per-key rate limits, `alttext keys`."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from service.app import create_app
from service.cli import app as cli
from tests.support.api import b64, png, settings, wait_ready
from tests.support.drafters import ColourDrafter


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


def upload(c, headers=None):
    return c.post("/v1/alt-text", files={"image": ("a.png", png("red"), "image/png")}, headers=headers or {})


@pytest.mark.parametrize("overrides", [{"host": "0.0.0.0"}, {"host": "192.0.2.10"}, {"require_api_key": True}])
def test_keys_are_required_beyond_loopback(tmp_path, overrides):
    app = create_app(settings(tmp_path, **overrides), ColourDrafter())
    _, secret = app.state.services.keys.create("cms")
    with TestClient(app) as c:
        wait_ready(c)
        r = upload(c)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"] == "Bearer"
        assert upload(c, {"Authorization": "Basic dXNlcjpwdw=="}).status_code == 401
        assert upload(c, bearer(secret + "x")).status_code == 401
        assert upload(c, bearer(secret)).status_code == 200
        # operations endpoints stay open for load balancers and Prometheus
        assert c.get("/health").status_code == 200 and c.get("/ready").status_code == 200


def test_loopback_needs_no_key_but_a_wrong_one_is_refused(tmp_path):
    app = create_app(settings(tmp_path), ColourDrafter())
    with TestClient(app) as c:
        wait_ready(c)
        assert upload(c).status_code == 200
        assert upload(c, bearer("alt_not-a-real-key")).status_code == 401


def test_revoked_keys_stop_working(tmp_path):
    app = create_app(settings(tmp_path, require_api_key=True), ColourDrafter())
    keys = app.state.services.keys
    key, secret = keys.create("old plugin")
    with TestClient(app) as c:
        wait_ready(c)
        assert upload(c, bearer(secret)).status_code == 200
        assert keys.revoke(key.id) is True
        assert upload(c, bearer(secret)).status_code == 401
    assert keys.revoke(key.id) is False


def test_keys_are_stored_hashed(tmp_path):
    app = create_app(settings(tmp_path), ColourDrafter())
    _, secret = app.state.services.keys.create("wp")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("alttext.db*"))
    assert secret.encode() not in raw and secret[4:].encode() not in raw


def test_per_key_rate_limit(tmp_path):
    app = create_app(settings(tmp_path, require_api_key=True, rate_limit_per_minute=3), ColourDrafter())
    keys = app.state.services.keys
    _, busy = keys.create("busy")
    _, calm = keys.create("calm")
    _, own = keys.create("own limit", rate_limit=1)
    with TestClient(app) as c:
        wait_ready(c)
        assert [upload(c, bearer(busy)).status_code for _ in range(3)] == [200, 200, 200]
        limited = upload(c, bearer(busy))
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert upload(c, bearer(calm)).status_code == 200  # budgets are per key
        assert upload(c, bearer(own)).status_code == 200
        assert upload(c, bearer(own)).status_code == 429
        # a batch costs one unit per image
        items = {"items": [{"image_base64": b64(png("blue"))}] * 3}
        assert c.post("/v1/alt-text:batch", json=items, headers=bearer(calm)).status_code == 429


def test_jobs_are_private_to_their_key(tmp_path):
    app = create_app(settings(tmp_path, require_api_key=True), ColourDrafter())
    _, mine = app.state.services.keys.create("mine")
    _, theirs = app.state.services.keys.create("theirs")
    with TestClient(app) as c:
        wait_ready(c)
        job = c.post("/v1/jobs", json={"items": [{"image_base64": b64(png())}]}, headers=bearer(mine))
        assert job.status_code == 202
        url = job.headers["location"]
        assert c.get(url, headers=bearer(mine)).status_code == 200
        for method in ("get", "delete"):
            r = getattr(c, method)(url, headers=bearer(theirs))
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert c.get(url + "/results", headers=bearer(theirs)).status_code == 404


def test_keys_cli_create_list_revoke(tmp_path, monkeypatch):
    from service.settings import get_settings

    monkeypatch.setenv("ALTTEXT_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        created = runner.invoke(cli, ["keys", "create", "wordpress-blog", "--rate-limit", "120"])
        assert created.exit_code == 0, created.output
        secret = created.stdout.strip().splitlines()[-1]
        assert secret.startswith("alt_") and len(secret) > 40
        listed = runner.invoke(cli, ["keys", "list"])
        assert "wordpress-blog" in listed.stdout and "rate=120" in listed.stdout and secret not in listed.stdout
        key_id = listed.stdout.split()[0]
        app = create_app(settings(tmp_path, require_api_key=True), ColourDrafter())
        with TestClient(app) as c:
            wait_ready(c)
            assert upload(c, bearer(secret)).status_code == 200
            assert runner.invoke(cli, ["keys", "revoke", key_id]).exit_code == 0
            assert upload(c, bearer(secret)).status_code == 401
        assert "revoked" in runner.invoke(cli, ["keys", "list"]).stdout
        assert runner.invoke(cli, ["keys", "revoke", key_id]).exit_code == 1
    finally:
        get_settings.cache_clear()
