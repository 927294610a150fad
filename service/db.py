"""One schema for keys, jobs and the cache, on SQLite (WAL) by default or PostgreSQL.

SQLAlchemy Core keeps the SQL portable; every statement here runs on both. Calls are
synchronous: the API runs them in worker threads.
"""
from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    make_url,
)

metadata = MetaData()

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),           # public id, e.g. key_3f9a..., safe to log
    Column("name", String(200), nullable=False),
    Column("hash", String(64), nullable=False, unique=True),  # sha256 of the secret; the secret is never stored
    Column("rate_limit", Integer),                          # per minute; NULL = the server default
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(32), nullable=False),           # api key id, or "anonymous"
    Column("status", String(16), nullable=False),          # queued, running, succeeded, cancelled
    Column("total", Integer, nullable=False),
    Column("succeeded", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("finished_at", Float),
    Column("idempotency_key", String(255)),
    Column("request_hash", String(64)),
    Column("webhook_url", Text),
    Column("webhook_secret", Text),                        # needed to sign, so not hashable
    Column("webhook_state", String(16)),                   # pending, delivered, failed
    Column("webhook_attempts", Integer, nullable=False, default=0),
    Column("webhook_next_at", Float),
    Column("lease_owner", String(32)),
    Column("lease_expires", Float),
    UniqueConstraint("owner", "idempotency_key", name="uq_jobs_owner_idempotency"),
)
Index("ix_jobs_status", jobs.c.status)

job_items = Table(
    "job_items",
    metadata,
    Column("job_id", String(32), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("ref", String(255)),                            # the caller's own id for the image
    Column("input", Text, nullable=False),                 # JSON: source + page context
    Column("state", String(16), nullable=False),           # pending, done, error, cancelled
    Column("result", Text),                                # JSON AltResult
    Column("error", Text),                                 # JSON {"code","message"}
    # One row per input item: a resumed job overwrites nothing and duplicates nothing.
    PrimaryKeyConstraint("job_id", "idx"),
)

cache_entries = Table(
    "cache",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("result", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)


def connect(url: str, busy_timeout_s: float = 30.0) -> Engine:
    """A SQLAlchemy engine for ``url`` with the schema in place. SQLite gets WAL and a busy timeout.

    Callers name it ``db`` (never ``engine``: that word is kept for service.engine.AltTextEngine)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        db = create_engine(url, connect_args={"check_same_thread": False, "timeout": busy_timeout_s})

        @event.listens_for(db, "connect")
        def _pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across app crashes
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cur.close()
    else:
        db = create_engine(url, pool_pre_ping=True)
    metadata.create_all(db)
    return db
