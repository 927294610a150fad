"""Storage on both backends: SQLite (WAL, the default) and PostgreSQL (a throwaway server,
skipped with the reason where PostgreSQL is not installed)."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from service.app import create_app
from service.auth import KeyStore
from service.cache import ResultCache
from service.db import connect
from service.jobs import IdempotencyConflict, JobStore
from service.result import AltResult
from tests.support import postgres
from tests.support.api import settings, wait_for, wait_ready
from tests.support.drafters import ColourDrafter
from tests.support.api import all_results, expected_alt, finished, items


@pytest.fixture(scope="module")
def pg_url():
    reason = postgres.unavailable()
    if reason:
        pytest.skip(reason)
    with postgres.postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'alttext.db'}"
    url = request.getfixturevalue("pg_url")
    db = connect(url)
    with db.begin() as conn:  # each test starts empty
        conn.execute(text("TRUNCATE api_keys, jobs, job_items, cache"))
    db.dispose()
    return url


def test_sqlite_uses_wal(tmp_path):
    db = connect(f"sqlite:///{tmp_path / 'x.db'}")
    with db.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"


def test_item_results_are_written_once(db_url):
    store = JobStore(connect(db_url))
    job, created = store.create("key_a", [{"image_base64": "AAAA"}] * 3)
    assert created and job["status"] == "queued"
    assert store.claim("w1", 30) == job["id"]
    assert store.claim("w2", 30) is None  # leased to w1
    assert store.record(job["id"], [(0, {"alt": "first"}, None), (1, None, {"code": "invalid_image"})]) == (1, 1)
    # a second worker replaying the same items (its lease ran out mid-chunk) changes nothing
    assert store.record(job["id"], [(0, {"alt": "second"}, None), (2, {"alt": "two"}, None)]) == (1, 0)
    assert store.finish_if_done(job["id"]) is True
    summary = store.get(job["id"], "key_a")
    assert (summary["status"], summary["succeeded"], summary["failed"]) == ("completed", 2, 1)
    rows = store.items(job["id"], -1, 10)
    assert [r["result"] for r in rows] == [{"alt": "first"}, None, {"alt": "two"}]
    assert store.get(job["id"], "key_b") is None


def test_expired_leases_are_taken_over(db_url):
    store = JobStore(connect(db_url))
    job, _ = store.create("o", [{"image_base64": "AAAA"}])
    assert store.claim("dead-worker", -1) == job["id"]  # a lease that has already run out
    assert store.claim("w2", 30) == job["id"]
    assert store.renew(job["id"], "dead-worker", 30) is False
    assert store.renew(job["id"], "w2", 30) is True


def test_idempotency_keys_are_per_owner(db_url):
    store = JobStore(connect(db_url))
    first, created = store.create("o1", [{"a": 1}], idempotency_key="k", request_hash="h1")
    again, created_again = store.create("o1", [{"a": 1}], idempotency_key="k", request_hash="h1")
    assert created and not created_again and again["id"] == first["id"]
    with pytest.raises(IdempotencyConflict):
        store.create("o1", [{"a": 2}], idempotency_key="k", request_hash="h2")
    other, created_other = store.create("o2", [{"a": 1}], idempotency_key="k", request_hash="h1")
    assert created_other and other["id"] != first["id"]


def test_keys_and_cache(db_url):
    db = connect(db_url)
    keys = KeyStore(db)
    key, secret = keys.create("wp", rate_limit=5)
    assert keys.verify(secret).id == key.id and keys.verify(secret + "x") is None
    assert keys.revoke(key.id) and keys.verify(secret) is None
    cache = ResultCache(db, max_entries=2)
    result = AltResult(alt="A cat.", confidence=0.5, needs_review=False, source="draft", ai_generated=True)
    for k in ("k1", "k2", "k3"):
        cache.put(k, result)
    cache.put("k3", result)  # a duplicate put is harmless
    assert cache.get("k3") == result
    cache.prune()
    assert cache.get("k1") is None and cache.get("k3") == result


def test_two_instances_share_the_work_of_one_job(db_url, tmp_path):
    """Two app instances on one database (as behind a load balancer) split a job between
    them; every item is drafted exactly once."""
    n = 24
    first, second = ColourDrafter(delay_s=0.02), ColourDrafter(delay_s=0.02)
    conf = dict(database_url=db_url, batch_size=2, cache=False)
    with TestClient(create_app(settings(tmp_path / "a", **conf), first)) as a, \
            TestClient(create_app(settings(tmp_path / "b", **conf), second)) as b:
        wait_ready(a)
        wait_ready(b)
        url = a.post("/v1/jobs", json={"items": items(n)}).headers["location"]
        b.app.state.services.wake_jobs.set()
        job = finished(b, url)
        assert (job["status"], job["succeeded"]) == ("completed", n)
        results = all_results(a, url, limit=50)
    assert [x["result"]["alt"] for x in results] == [expected_alt(i) for i in range(n)]
    assert sum(first.batches) + sum(second.batches) == n


def test_app_end_to_end_on_the_database_url(pg_url, tmp_path):
    with TestClient(create_app(settings(tmp_path, database_url=pg_url), ColourDrafter())) as c:
        wait_ready(c)
        url = c.post("/v1/jobs", json={"items": items(3)}).headers["location"]
        assert wait_for(lambda: c.get(url).json()["status"] == "completed")
        assert not (tmp_path / "alttext.db").exists()  # nothing went to the SQLite default
