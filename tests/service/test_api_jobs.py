"""Jobs: create (JSON and JSON Lines), progress, paged results, cancel, Idempotency-Key,
signed webhooks with retries, and resuming after the worker process (the real `alttext serve`
on the debug backend) is killed."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from standardwebhooks.webhooks import Webhook

from service.app import create_app
from models.debug import DebugDrafter
from tests.support.api import (COLOURS, all_results, b64, expected_alt, finished, items, metric, png, settings,
                               wait_for, wait_ready)
from tests.support.drafters import ColourDrafter, CountingDrafter
from tests.support.loadkit import serve
from tests.support.servers import LocalServer

SECRET = "whsec_" + b64(b"a test secret of thirty-two bytes")


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(settings(tmp_path, batch_size=4), ColourDrafter())) as c:
        wait_ready(c)
        yield c


def test_json_job_runs_to_completion_with_paged_results(client):
    r = client.post("/v1/jobs", json={"items": items(7) + [{"id": "bad", "image_base64": b64(b"oops")}]})
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] in ("queued", "running") and job["total"] == 8
    done = finished(client, r.headers["location"])
    assert (done["status"], done["succeeded"], done["failed"], done["pending"]) == ("completed", 7, 1, 0)
    assert done["finished_at"] >= done["created_at"]
    results = all_results(client, r.headers["location"], limit=3)
    assert [x["index"] for x in results] == list(range(8))
    assert [x["result"]["alt"] for x in results[:7]] == [expected_alt(i) for i in range(7)]
    assert [x["id"] for x in results] == [f"img-{i}" for i in range(7)] + ["bad"]
    assert results[7]["status"] == "error" and results[7]["error"]["code"] == "unsupported_media_type"


def test_json_lines_job(client):
    body = "\n".join(json.dumps(item) for item in items(3)) + "\n\n"
    r = client.post("/v1/jobs", content=body, headers={"content-type": "application/jsonl"})
    assert r.status_code == 202, r.text
    assert finished(client, r.headers["location"])["succeeded"] == 3
    bad = client.post("/v1/jobs", content='{"image_base64": "AAAA"}\n{"nope": 1}\n',
                      headers={"content-type": "application/x-ndjson"})
    assert bad.status_code == 422 and "line 2" in bad.json()["error"]["message"]
    assert client.post("/v1/jobs", content="", headers={"content-type": "application/jsonl"}).status_code == 422
    assert client.post("/v1/jobs", content="x", headers={"content-type": "text/csv"}).status_code == 415


def test_job_item_limit(tmp_path):
    with TestClient(create_app(settings(tmp_path, max_job_items=2), ColourDrafter())) as c:
        r = c.post("/v1/jobs", json={"items": items(3)})
        assert r.status_code == 422 and "at most 2" in r.json()["error"]["message"]


def test_idempotency_key(client):
    body = {"items": items(2)}
    first = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "upload-77"})
    again = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "upload-77"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and first.headers["location"] == again.headers["location"]
    other = client.post("/v1/jobs", json={"items": items(3)}, headers={"Idempotency-Key": "upload-77"})
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_conflict"
    fresh = client.post("/v1/jobs", json=body, headers={"Idempotency-Key": "upload-78"})
    assert fresh.json()["id"] != first.json()["id"]


def test_cancel_keeps_finished_results(tmp_path):
    with TestClient(create_app(settings(tmp_path, batch_size=1), ColourDrafter(delay_s=0.1))) as c:
        wait_ready(c)
        url = c.post("/v1/jobs", json={"items": items(40)}).headers["location"]
        wait_for(lambda: c.get(url).json()["succeeded"] >= 2)
        cancelled = c.delete(url)
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        time.sleep(0.5)
        job = c.get(url).json()
        assert job["status"] == "cancelled" and job["pending"] == 0 and 2 <= job["succeeded"] < 40
        results = all_results(c, url, limit=100)
        done = [x for x in results if x["status"] == "ok"]
        assert len(done) == job["succeeded"]
        assert {x["status"] for x in results} <= {"ok", "cancelled"}
        assert c.delete(url).json()["status"] == "cancelled"  # cancelling twice is harmless


def test_unknown_job_and_bad_paging(client):
    assert client.get("/v1/jobs/job_nope").status_code == 404
    assert client.get("/v1/jobs/job_nope/results").status_code == 404
    url = client.post("/v1/jobs", json={"items": items(1)}).headers["location"]
    assert client.get(f"{url}/results", params={"limit": 0}).status_code == 422
    assert client.get(f"{url}/results", params={"after": -2}).status_code == 422


# --- webhooks ----------------------------------------------------------------------------


def test_webhook_is_signed_and_retried_until_delivered(tmp_path):
    with LocalServer(fail_first=2) as hook, TestClient(create_app(
            settings(tmp_path, fetch_allow=["127.0.0.1/32"], webhook_secret=SECRET), ColourDrafter())) as c:
        wait_ready(c)
        r = c.post("/v1/jobs", json={"items": items(2), "webhook": {"url": hook.url("/hook")}})
        url = r.headers["location"]
        assert r.json()["webhook"] == {"url": hook.url("/hook"), "state": "waiting", "attempts": 0}
        job = wait_for(lambda: (j := c.get(url).json())["webhook"]["state"] == "delivered" and j)
        assert job["webhook"]["attempts"] == 3
        posts = [x for x in hook.seen.requests if x["method"] == "POST"]
        assert len(posts) == 3
        assert len({p["headers"]["webhook-id"] for p in posts}) == 1  # same id on every retry
        last = posts[-1]
        payload = Webhook(SECRET).verify(last["body"], last["headers"])
        assert payload["type"] == "job.completed"
        assert payload["data"]["id"] == job["id"] and payload["data"]["succeeded"] == 2
        with pytest.raises(Exception):
            Webhook("whsec_" + b64(b"somebody else's secret........")).verify(last["body"], last["headers"])
        time.sleep(0.6)
        assert len([x for x in hook.seen.requests if x["method"] == "POST"]) == 3  # nothing after success
        text = c.get("/metrics").text
        assert metric(text, "alttext_webhook_deliveries_total", outcome="retry") == 2
        assert metric(text, "alttext_webhook_deliveries_total", outcome="delivered") == 1


def test_webhook_gives_up_after_the_schedule(tmp_path):
    own_secret = "whsec_" + b64(b"per-job secret, not the server's")
    with LocalServer(fail_first=99) as hook, TestClient(create_app(
            settings(tmp_path, fetch_allow=["127.0.0.1/32"]), ColourDrafter())) as c:
        wait_ready(c)
        r = c.post("/v1/jobs", json={"items": items(1), "webhook": {"url": hook.url("/hook"), "secret": own_secret}})
        job = wait_for(lambda: (j := c.get(r.headers["location"]).json())["webhook"]["state"] == "failed" and j)
        assert job["webhook"]["attempts"] == 3  # first try + the two configured retries
        posts = [x for x in hook.seen.requests if x["method"] == "POST"]
        Webhook(own_secret).verify(posts[0]["body"], posts[0]["headers"])


def test_webhook_targets_obey_the_fetch_rules(tmp_path):
    with TestClient(create_app(settings(tmp_path, webhook_secret=SECRET), ColourDrafter())) as c:
        for target in ("http://127.0.0.1:9/hook", "http://169.254.169.254/", "http://[::1]/"):
            r = c.post("/v1/jobs", json={"items": items(1), "webhook": {"url": target}})
            assert r.status_code == 400 and r.json()["error"]["code"] == "fetch_blocked", target
        r = c.post("/v1/jobs", json={"items": items(1), "webhook": {"url": "ftp://example.org/"}})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    with TestClient(create_app(settings(tmp_path), ColourDrafter())) as c:
        r = c.post("/v1/jobs", json={"items": items(1), "webhook": {"url": "https://cms.example.org/hook"}})
        assert r.status_code == 422 and "ALTTEXT_WEBHOOK_SECRET" in r.json()["error"]["message"]
        r = c.post("/v1/jobs", json={"items": items(1),
                                     "webhook": {"url": "https://cms.example.org/hook", "secret": "not base64!!"}})
        assert r.status_code == 422


# --- crash and resume --------------------------------------------------------------------


def test_a_killed_worker_is_resumed_without_loss_or_duplicates(tmp_path):
    n = 16
    # The real `alttext serve` on the debug backend, slowed to a model's pace, killed mid-job.
    with serve(tmp_path, debug_delay_ms=300, batch_size=2, cache="false", job_lease_s=1.0) as (base, pid):
        url = base + httpx.post(f"{base}/v1/jobs", json={"items": items(n)}).headers["location"]
        job_id = url.rsplit("/", 1)[1]
        # The runner lets go of the lease between chunks: kill while it holds one, or the test
        # would not cover a lease left behind (the race this leaves is a few statements wide).
        wait_for(lambda: httpx.get(url).json()["succeeded"] >= 4 and lease_owner(tmp_path, job_id), timeout_s=30)
        os.kill(pid, signal.SIGKILL)  # no shutdown hooks, lease left behind, a chunk in flight
    with sqlite3.connect(tmp_path / "alttext.db") as db:
        before = dict(db.execute("SELECT idx, result FROM job_items WHERE job_id=? AND state='done'", (job_id,)))
        status, owner = db.execute("SELECT status, lease_owner FROM jobs WHERE id=?", (job_id,)).fetchone()
    assert 4 <= len(before) < n and status == "running" and owner  # died mid-job, holding the lease

    second = CountingDrafter(DebugDrafter())
    app = create_app(settings(tmp_path, batch_size=2, cache=False, job_lease_s=1.0), second)
    with TestClient(app) as c:
        wait_ready(c)
        path = f"/v1/jobs/{job_id}"
        job = finished(c, path)
        assert (job["status"], job["succeeded"], job["failed"], job["pending"]) == ("completed", n, 0, 0)
        results = all_results(c, path, limit=5)
    assert [x["index"] for x in results] == list(range(n))
    assert [x["result"]["alt"] for x in results] == [debug_alt(i) for i in range(n)]
    # Work finished before the crash is kept as it was and not done again; the rest is done once.
    with sqlite3.connect(tmp_path / "alttext.db") as db:
        after = dict(db.execute("SELECT idx, result FROM job_items WHERE job_id=?", (job_id,)))
    assert {i: after[i] for i in before} == before
    assert second.images == n - len(before)


def lease_owner(tmp_path, job_id: str) -> str | None:
    with sqlite3.connect(tmp_path / "alttext.db", timeout=5) as db:
        return db.execute("SELECT lease_owner FROM jobs WHERE id=?", (job_id,)).fetchone()[0]


def debug_alt(i: int) -> str:
    """What the debug backend says about ``items(n)[i]``."""
    return f"A {8 + i} by 8 image, mostly {COLOURS[i % len(COLOURS)]}."


def test_the_app_can_be_started_again(tmp_path):
    """Test clients and fuzzers run one app's lifespan several times, each in a new event loop:
    nothing loop-bound may leak from one run into the next."""
    with LocalServer() as hook:
        app = create_app(settings(tmp_path, fetch_allow=["127.0.0.1/32"], webhook_secret=SECRET), ColourDrafter())
        for round_ in range(3):
            start = time.monotonic()
            with TestClient(app) as c:
                wait_ready(c)
                assert c.post("/v1/alt-text", json={"image_base64": b64(png((round_, 9, 9)))}).status_code == 200
                r = c.post("/v1/jobs", json={"items": items(3), "webhook": {"url": hook.url("/hook")}})
                job = wait_for(lambda: (j := c.get(r.headers["location"]).json())["webhook"]["state"] == "delivered"
                               and j)
                assert job["succeeded"] == 3
            assert time.monotonic() - start < 10
        assert len([x for x in hook.seen.requests if x["method"] == "POST"]) == 3
