"""Bounded load against a real server process on 127.0.0.1, for the load and fault suites.

``serve(tmp, **env)`` starts `alttext serve` on the debug model (no weights, instant) and
yields its base URL and pid; ``burst`` fires a fixed number of requests with a fixed
concurrency and a deadline, so a load test always stops by itself; ``rss_mb`` reads a
process's resident memory from /proc."""
from __future__ import annotations

import asyncio
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from evaluation.bench_server import free_port, rss_kb, running

ALTTEXT = str(Path(sys.executable).with_name("alttext"))


def rss_mb(pid: int) -> float:
    kb = rss_kb(pid)
    if not kb:
        raise RuntimeError(f"no VmRSS for pid {pid}: the server is gone")
    return kb / 1024


@contextmanager
def serve(tmp: Path, **env: str):
    """(base URL, pid) of `alttext serve` on the debug model, stopped on exit."""
    port = free_port()
    full = {**os.environ, "ALTTEXT_DATA_DIR": str(tmp), "ALTTEXT_MODEL": "debug", "ALTTEXT_LOG_FORMAT": "text",
            **{f"ALTTEXT_{k.upper()}": str(v) for k, v in env.items()}}
    with running([ALTTEXT, "serve", "--port", str(port)], ready_url=f"http://127.0.0.1:{port}/ready",
                 log_path=tmp / "server.log", env=full, timeout_s=120, stop_timeout_s=20) as proc:
        yield f"http://127.0.0.1:{port}", proc.pid


@dataclass
class Burst:
    statuses: list[int] = field(default_factory=list)
    accepted_s: list[float] = field(default_factory=list)
    retry_after_missing: int = 0
    errors: int = 0  # connection errors and client timeouts

    def p99(self) -> float:
        if not self.accepted_s:
            return 0.0
        ordered = sorted(self.accepted_s)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def burst(base: str, make_request, *, total: int, concurrency: int, deadline_s: float) -> Burst:
    """``total`` requests (``make_request(i)`` -> kwargs for httpx post), ``concurrency`` at a
    time, all stopped at ``deadline_s``."""
    out = Burst()

    async def run() -> None:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
            sem = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                async with sem:
                    start = time.perf_counter()
                    try:
                        r = await client.post(**make_request(i))
                    except httpx.HTTPError:
                        out.errors += 1
                        return
                    out.statuses.append(r.status_code)
                    if r.status_code == 200:
                        out.accepted_s.append(time.perf_counter() - start)
                    elif r.status_code in (429, 503) and "retry-after" not in r.headers:
                        out.retry_after_missing += 1

            await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(total))), deadline_s)

    asyncio.run(run())
    return out
