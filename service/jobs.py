"""Asynchronous jobs: a durable store (one row per job, one per item) and a runner.

Resume without loss or duplicates: an item's result is written only while the item is
still ``pending`` (a conditional UPDATE), in the same transaction as the job's counters.
A crash loses at most the unwritten chunk, which stays pending and is done again. Jobs
are claimed with a lease that a heartbeat renews; a crashed worker's lease runs out and
another worker (or the restarted one) picks the job up. Claims go to the least recently
touched job, so big jobs take turns with small ones.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence

from sqlalchemy import Engine, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from models.errors import AltTextError, item_error
from service.db import job_items, jobs
from service.engine import AltTextEngine
from service.observability import Metrics

log = logging.getLogger("service.jobs")
ACTIVE = ("queued", "running")


class IdempotencyConflict(AltTextError):
    """The Idempotency-Key was used before for a different request."""

    code = "idempotency_conflict"

    def __init__(self) -> None:
        super().__init__("idempotency_conflict", "Idempotency-Key: already used for a different request.")


class JobStore:
    def __init__(self, db: Engine) -> None:
        self.db = db

    # --- API side ------------------------------------------------------------------------

    def create(self, owner: str, items: Sequence[dict], *, webhook_url: str | None = None,
               webhook_secret: str | None = None, idempotency_key: str | None = None,
               request_hash: str | None = None) -> tuple[dict, bool]:
        """(job, created). With an Idempotency-Key seen before, the earlier job and False."""
        now = time.time()
        job_id = "job_" + secrets.token_hex(12)
        try:
            with self.db.begin() as conn:
                conn.execute(insert(jobs).values(
                    id=job_id, owner=owner, status="queued", total=len(items), succeeded=0, failed=0,
                    created_at=now, updated_at=now, idempotency_key=idempotency_key, request_hash=request_hash,
                    webhook_url=webhook_url, webhook_secret=webhook_secret, webhook_attempts=0))
                conn.execute(insert(job_items), [
                    {"job_id": job_id, "idx": i, "ref": item.get("id"), "input": json.dumps(item), "state": "pending"}
                    for i, item in enumerate(items)
                ])
        except IntegrityError:
            if idempotency_key is None:
                raise
            with self.db.connect() as conn:
                row = conn.execute(select(jobs).where(jobs.c.owner == owner,
                                                      jobs.c.idempotency_key == idempotency_key)).mappings().one()
            if row["request_hash"] != request_hash:
                raise IdempotencyConflict from None
            return self._summary(row), False
        return self.get(job_id, owner), True

    def find_idempotent(self, owner: str, idempotency_key: str) -> bool:
        """Whether ``owner`` already made a job with this Idempotency-Key."""
        with self.db.connect() as conn:
            return conn.execute(select(jobs.c.id).where(jobs.c.owner == owner,
                                                        jobs.c.idempotency_key == idempotency_key)).first() is not None

    def get(self, job_id: str, owner: str) -> dict | None:
        with self.db.connect() as conn:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id, jobs.c.owner == owner)).mappings().first()
        return self._summary(row) if row else None

    def items(self, job_id: str, after: int, limit: int) -> list[dict]:
        with self.db.connect() as conn:
            rows = conn.execute(select(job_items.c.idx, job_items.c.ref, job_items.c.state, job_items.c.result,
                                       job_items.c.error)
                                .where(job_items.c.job_id == job_id, job_items.c.idx > after)
                                .order_by(job_items.c.idx).limit(limit)).mappings().all()
        return [{"index": r["idx"], "id": r["ref"], "status": _STATUS[r["state"]],
                 "result": json.loads(r["result"]) if r["result"] else None,
                 "error": json.loads(r["error"]) if r["error"] else None} for r in rows]

    def cancel(self, job_id: str, owner: str) -> dict | None:
        now = time.time()
        with self.db.begin() as conn:
            res = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.owner == owner,
                                                  jobs.c.status.in_(ACTIVE))
                               .values(status="cancelled", updated_at=now, finished_at=now,
                                       lease_owner=None, lease_expires=None))
            if res.rowcount:
                conn.execute(update(job_items).where(job_items.c.job_id == job_id, job_items.c.state == "pending")
                             .values(state="cancelled"))
        return self.get(job_id, owner)

    # --- worker side ---------------------------------------------------------------------

    def claim(self, worker: str, lease_s: float) -> str | None:
        """Take the least recently touched active job whose lease is free or ours."""
        now = time.time()
        free = or_(jobs.c.lease_expires.is_(None), jobs.c.lease_expires < now, jobs.c.lease_owner == worker)
        with self.db.begin() as conn:
            candidates = conn.execute(select(jobs.c.id).where(jobs.c.status.in_(ACTIVE), free)
                                      .order_by(jobs.c.updated_at).limit(5)).scalars().all()
            for job_id in candidates:
                res = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE), free)
                                   .values(lease_owner=worker, lease_expires=now + lease_s, status="running"))
                if res.rowcount == 1:
                    return job_id
        return None

    def renew(self, job_id: str, worker: str, lease_s: float) -> bool:
        """False when the job was cancelled or taken over: stop working on it."""
        with self.db.begin() as conn:
            res = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.lease_owner == worker,
                                                  jobs.c.status == "running")
                               .values(lease_expires=time.time() + lease_s))
        return res.rowcount == 1

    def release(self, job_id: str, worker: str) -> None:
        with self.db.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.lease_owner == worker)
                         .values(lease_owner=None, lease_expires=None))

    def pending(self, job_id: str, limit: int) -> list[tuple[int, dict]]:
        with self.db.connect() as conn:
            rows = conn.execute(select(job_items.c.idx, job_items.c.input)
                                .where(job_items.c.job_id == job_id, job_items.c.state == "pending")
                                .order_by(job_items.c.idx).limit(limit)).all()
        return [(idx, json.loads(raw)) for idx, raw in rows]

    def record(self, job_id: str, outcomes: Sequence[tuple[int, dict | None, dict | None]]) -> tuple[int, int]:
        """Write (index, result, error) for items still pending; (results, errors) written."""
        written = ok = bad = 0
        with self.db.begin() as conn:
            for idx, result, error in outcomes:
                res = conn.execute(
                    update(job_items).where(job_items.c.job_id == job_id, job_items.c.idx == idx,
                                            job_items.c.state == "pending")
                    .values(state="done" if error is None else "error",
                            result=json.dumps(result) if result is not None else None,
                            error=json.dumps(error) if error is not None else None))
                if res.rowcount:
                    written += 1
                    ok += error is None
                    bad += error is not None
            if written:
                conn.execute(update(jobs).where(jobs.c.id == job_id)
                             .values(succeeded=jobs.c.succeeded + ok, failed=jobs.c.failed + bad,
                                     updated_at=time.time()))
        return ok, bad

    def finish_if_done(self, job_id: str) -> bool:
        now = time.time()
        with self.db.begin() as conn:
            left = conn.execute(select(func.count()).select_from(job_items)
                                .where(job_items.c.job_id == job_id, job_items.c.state == "pending")).scalar()
            if left:
                return False
            hook = case((jobs.c.webhook_url.is_not(None), "pending"), else_=None)
            res = conn.execute(update(jobs).where(jobs.c.id == job_id, jobs.c.status == "running")
                               .values(status="completed", finished_at=now, updated_at=now, lease_owner=None,
                                       lease_expires=None, webhook_state=hook, webhook_next_at=now))
        return res.rowcount == 1

    # --- webhook outbox ------------------------------------------------------------------

    def claim_webhooks(self, now: float, hold_s: float, limit: int = 10) -> list[dict]:
        """Due deliveries, each pushed back by ``hold_s`` so no other worker sends it meanwhile."""
        out = []
        with self.db.begin() as conn:
            rows = conn.execute(select(jobs).where(jobs.c.webhook_state == "pending", jobs.c.webhook_next_at <= now)
                                .order_by(jobs.c.webhook_next_at).limit(limit)).mappings().all()
            for row in rows:
                res = conn.execute(update(jobs).where(jobs.c.id == row["id"], jobs.c.webhook_state == "pending",
                                                      jobs.c.webhook_next_at == row["webhook_next_at"])
                                   .values(webhook_next_at=now + hold_s))
                if res.rowcount:
                    out.append({"id": row["id"], "url": row["webhook_url"], "secret": row["webhook_secret"],
                                "attempts": row["webhook_attempts"], "summary": self._summary(row)})
        return out

    def webhook_attempted(self, job_id: str, attempts: int, state: str, next_at: float | None) -> None:
        with self.db.begin() as conn:
            conn.execute(update(jobs).where(jobs.c.id == job_id)
                         .values(webhook_attempts=attempts, webhook_state=state, webhook_next_at=next_at))

    @staticmethod
    def _summary(row) -> dict:
        done = row["succeeded"] + row["failed"]
        webhook = None
        if row["webhook_url"]:
            webhook = {"url": row["webhook_url"], "state": row["webhook_state"] or "waiting",
                       "attempts": row["webhook_attempts"]}
        return {
            "id": row["id"], "status": row["status"], "total": row["total"], "succeeded": row["succeeded"],
            "failed": row["failed"], "pending": row["total"] - done if row["status"] != "cancelled" else 0,
            "created_at": row["created_at"], "updated_at": row["updated_at"], "finished_at": row["finished_at"],
            "webhook": webhook,
        }


_STATUS = {"pending": "pending", "done": "ok", "error": "error", "cancelled": "cancelled"}


async def poll_forever(step: Callable[[], Awaitable[bool]], wake: asyncio.Event, poll_s: float, what: str) -> None:
    """Run ``step`` for ever: again at once when it did some work (returned True), else after
    ``wake`` is set or ``poll_s`` passes. A failing step is logged and retried; cancelling stops."""
    while True:
        try:
            if await step():
                continue
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying", what)
        try:
            await asyncio.wait_for(wake.wait(), poll_s)
        except TimeoutError:
            pass
        wake.clear()


class JobRunner:
    """Works through jobs one chunk at a time on the shared alt-text engine (background priority)."""

    def __init__(self, store: JobStore, engine: AltTextEngine, metrics: Metrics, *, lease_s: float,
                 chunk: int, on_finished=None, poll_s: float = 1.0) -> None:
        self.store, self.engine, self.metrics = store, engine, metrics
        self.lease_s, self.chunk, self.poll_s = lease_s, chunk, poll_s
        self.worker = "w_" + secrets.token_hex(6)
        self.wake = asyncio.Event()
        self.on_finished = on_finished

    async def run(self) -> None:
        await self.engine.wait_ready()
        await poll_forever(self._next, self.wake, self.poll_s, "job loop")

    async def _next(self) -> bool:
        job_id = await asyncio.to_thread(self.store.claim, self.worker, self.lease_s)
        if job_id:
            await self._step(job_id)
        return bool(job_id)

    async def _step(self, job_id: str) -> None:
        """One chunk of one job, under a heartbeat; then let other jobs have a turn."""
        heartbeat = asyncio.create_task(self._heartbeat(job_id))
        try:
            items = await asyncio.to_thread(self.store.pending, job_id, self.chunk)
            if items:
                outcomes = await self._describe(items)
                if not heartbeat.done():  # lost the lease (cancelled): the results are not ours to write
                    ok, bad = await asyncio.to_thread(self.store.record, job_id, outcomes)
                    self.metrics.job_items.labels("ok").inc(ok)
                    self.metrics.job_items.labels("error").inc(bad)
            if await asyncio.to_thread(self.store.finish_if_done, job_id):
                log.info("job completed", extra={"job_id": job_id})
                if self.on_finished:
                    self.on_finished()
        finally:
            heartbeat.cancel()
            await asyncio.shield(asyncio.to_thread(self.store.release, job_id, self.worker))

    async def _heartbeat(self, job_id: str) -> None:
        while True:
            await asyncio.sleep(self.lease_s / 3)
            if not await asyncio.to_thread(self.store.renew, job_id, self.worker, self.lease_s):
                return

    async def _describe(self, items: list[tuple[int, dict]]) -> list[tuple[int, dict | None, dict | None]]:
        raws = [raw for _, raw in items]
        try:
            results = await self.engine.describe_items(raws, background=True)
        except Exception:
            # One image may break a whole model call: retry each alone, so only that one fails.
            results = [r[0] if isinstance(r, list) else r for r in await asyncio.gather(
                *(self.engine.describe_items([raw], background=True) for raw in raws), return_exceptions=True)]
        return [(idx, None, self._error(r)) if isinstance(r, BaseException) else (idx, r.model_dump(mode="json"), None)
                for (idx, _), r in zip(items, results)]

    def _error(self, exc: BaseException) -> dict:
        """An item's error as the API reports it: {"code", "message"} (as batch items do)."""
        if not isinstance(exc, AltTextError):
            log.error("job item failed unexpectedly", exc_info=exc)
        err = item_error(exc)
        self.metrics.failures.labels(err.code, err.reason).inc()
        return err.item()
