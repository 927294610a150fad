"""Faults: a locked or full SQLite database answers a clear 503 and leaves no half-written job;
a webhook receiver that is down is retried, then failed on the job. (kill -9 mid-job and a
model that fails to load are in test_api_jobs.py and test_api.py.)"""
from __future__ import annotations

import sqlite3

from fastapi.testclient import TestClient
from sqlalchemy import event, func, select

from service.app import create_app
from service.db import jobs
from tests.support.api import b64, free_port, png, settings, wait_for, wait_ready
from tests.support.drafters import ColourDrafter

SECRET = "whsec_" + b64(b"a test secret of thirty-two bytes")


def _items(n: int) -> dict:
    return {"items": [{"id": f"i{i}", "image_base64": b64(png(size=(8 + i % 50, 8)))} for i in range(n)]}


def _job_count(app) -> int:
    with app.state.services.jobs.db.connect() as conn:
        return conn.execute(select(func.count()).select_from(jobs)).scalar_one()


def test_a_locked_database_is_a_clear_503_and_recovers(tmp_path):
    app = create_app(settings(tmp_path, db_busy_timeout_s=0.3), ColourDrafter())
    with TestClient(app) as c:
        wait_ready(c)
        holder = sqlite3.connect(tmp_path / "alttext.db", timeout=1, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        try:
            r = c.post("/v1/jobs", json=_items(3))
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "storage_unavailable" and r.headers["retry-after"] == "5"
            assert c.get("/health").status_code == 200
        finally:
            holder.rollback()
            holder.close()
        ok = c.post("/v1/jobs", json=_items(3))
        assert ok.status_code == 202
        done = wait_for(lambda: (j := c.get(ok.headers["location"]).json())["status"] == "completed" and j)
        assert done["succeeded"] == 3 and _job_count(app) == 1  # the refused job left nothing behind


def test_a_full_database_is_a_clear_503_and_nothing_half_written(tmp_path):
    app = create_app(settings(tmp_path), ColourDrafter())
    db = app.state.services.jobs.db

    def tiny(dbapi_conn, _record):
        dbapi_conn.execute("PRAGMA max_page_count=" + str(dbapi_conn.execute("PRAGMA page_count").fetchone()[0] + 2))

    with TestClient(app) as c:
        wait_ready(c)
        event.listen(db, "connect", tiny)
        db.dispose()
        try:
            r = c.post("/v1/jobs", json=_items(200))
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "storage_unavailable" and r.headers["retry-after"]
            assert "full" in r.json()["error"]["message"]
        finally:
            event.remove(db, "connect", tiny)
            db.dispose()
        assert _job_count(app) == 0  # the insert rolled back whole
        ok = c.post("/v1/jobs", json=_items(5))
        assert ok.status_code == 202
        done = wait_for(lambda: (j := c.get(ok.headers["location"]).json())["status"] == "completed" and j)
        assert done["succeeded"] == 5


def test_a_webhook_receiver_that_is_down_is_retried_then_failed(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    with TestClient(create_app(settings(tmp_path, fetch_allow=["127.0.0.1/32"], webhook_secret=SECRET),
                               ColourDrafter())) as c:
        wait_ready(c)
        r = c.post("/v1/jobs", json={**_items(2), "webhook": {"url": dead}})
        job = wait_for(lambda: (j := c.get(r.headers["location"]).json())["webhook"]["state"] == "failed" and j)
        assert job["webhook"]["attempts"] == 3 and job["succeeded"] == 2
        assert len(c.get(r.headers["location"] + "/results").json()["items"]) == 2  # results kept
