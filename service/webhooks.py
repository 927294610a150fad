"""Job-completion webhooks, signed per Standard Webhooks (webhook-id, webhook-timestamp,
webhook-signature = v1,HMAC-SHA256 over "id.timestamp.body").

Deliveries are an outbox in the jobs table: the next attempt time is stored, so retries
survive a restart and several instances never deliver the same attempt twice. The
webhook-id stays the same across retries, so receivers can drop duplicates.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import datetime, timezone

from standardwebhooks.webhooks import Webhook

from service.fetch import Fetcher, FetchError
from service.jobs import poll_forever
from service.observability import Metrics

log = logging.getLogger("service.webhooks")


def valid_secret(secret: str) -> bool:
    try:
        Webhook(secret)
    except Exception:
        return False
    return True


def signed_request(secret: str, msg_id: str, payload: dict, now: float | None = None) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload, separators=(",", ":"))
    stamp = datetime.fromtimestamp(now if now is not None else time.time(), tz=timezone.utc)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, stamp, body),
        "user-agent": "alttext-webhooks/1",
    }
    return body.encode(), headers


class WebhookSender:
    """Delivers due webhooks from the job store; one attempt per due row. Redirects are not
    followed (as most webhook senders do): a 3xx is a failed attempt, retried with backoff."""

    def __init__(self, store, fetcher: Fetcher, delays: list[float], metrics: Metrics, poll_s: float = 1.0) -> None:
        self.store, self.fetcher, self.delays, self.metrics, self.poll_s = store, fetcher, delays, metrics, poll_s
        self.wake = asyncio.Event()

    async def run(self) -> None:
        await poll_forever(self._deliver_due, self.wake, self.poll_s, "webhook loop")

    async def _deliver_due(self) -> bool:
        for job in await asyncio.to_thread(self.store.claim_webhooks, time.time(), 2 * self.fetcher.timeout_s):
            await self.deliver(job)
        return False  # wait for the next due time (or a wake-up) before claiming again

    async def deliver(self, job: dict) -> bool:
        payload = {"type": "job.completed", "timestamp": datetime.now(timezone.utc).isoformat(),
                   "data": job["summary"]}
        body, headers = signed_request(job["secret"], f"msg_{job['id']}", payload)
        attempt = job["attempts"] + 1
        try:
            status = await self.fetcher.post(job["url"], body, headers)
            ok, why = 200 <= status < 300, f"http_{status}"
        except FetchError as exc:
            ok, why = False, exc.reason
        except Exception as exc:  # whatever the receiver did, the attempt counts and is retried later
            log.warning("webhook attempt failed unexpectedly", exc_info=True)
            ok, why = False, type(exc).__name__
        if ok:
            next_at = None
        elif attempt > len(self.delays):
            next_at = None
        else:
            next_at = time.time() + self.delays[attempt - 1]
        state = "delivered" if ok else ("pending" if next_at else "failed")
        await asyncio.to_thread(self.store.webhook_attempted, job["id"], attempt, state, next_at)
        self.metrics.webhooks.labels("delivered" if ok else ("retry" if next_at else "gave_up")).inc()
        log.info("webhook attempt", extra={"job_id": job["id"], "attempt": attempt, "state": state, "why": why})
        return ok
