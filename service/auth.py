"""API keys (stored as SHA-256 hashes, shown once) and a per-key token-bucket rate limit."""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Engine, insert, select, update

from service.db import api_keys

KEY_PREFIX = "alt_"


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    rate_limit: int | None
    created_at: float
    revoked_at: float | None = None


def _hash(secret: str) -> str:
    # Keys are 256-bit random tokens, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, db: Engine) -> None:
        self.db = db

    def create(self, name: str, rate_limit: int | None = None) -> tuple[ApiKey, str]:
        """A new key and its secret. The secret is returned once and never stored."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key = ApiKey(id="key_" + secrets.token_hex(6), name=name, rate_limit=rate_limit, created_at=time.time())
        with self.db.begin() as conn:
            conn.execute(insert(api_keys).values(id=key.id, name=name, hash=_hash(secret), rate_limit=rate_limit,
                                                 created_at=key.created_at))
        return key, secret

    def verify(self, secret: str) -> ApiKey | None:
        if not secret.startswith(KEY_PREFIX):
            return None
        with self.db.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.hash == _hash(secret))).mappings().first()
        if row is None or row["revoked_at"] is not None:
            return None
        return _key(row)

    def list(self) -> list[ApiKey]:
        with self.db.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).mappings().all()
        return [_key(r) for r in rows]

    def revoke(self, key_id: str) -> bool:
        with self.db.begin() as conn:
            res = conn.execute(update(api_keys).where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                               .values(revoked_at=time.time()))
        return res.rowcount == 1


def _key(row) -> ApiKey:
    return ApiKey(id=row["id"], name=row["name"], rate_limit=row["rate_limit"], created_at=row["created_at"],
                  revoked_at=row["revoked_at"])


class RateLimiter:
    """Token bucket per key: ``per_minute`` tokens, refilled continuously, burst of one minute's worth.

    In memory, so each instance behind a load balancer enforces its own budget.
    """

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last refill)
        self._lock = threading.Lock()

    def take(self, key: str, per_minute: int, cost: int = 1) -> float:
        """0.0 when allowed, else seconds until ``cost`` tokens will be there."""
        if per_minute <= 0:
            return 0.0
        rate = per_minute / 60.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            if cost > per_minute:  # can never be satisfied (callers refuse such requests first)
                return 60.0
            if tokens >= cost:
                self._buckets[key] = (tokens - cost, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (cost - tokens) / rate

    def refund(self, key: str, per_minute: int, cost: int) -> None:
        """Give back ``cost`` tokens taken for work that was not done (an idempotent replay)."""
        if per_minute <= 0 or cost <= 0:
            return
        with self._lock:
            if key in self._buckets:
                tokens, last = self._buckets[key]
                self._buckets[key] = (min(float(per_minute), tokens + cost), last)
