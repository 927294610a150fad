"""Long load, memory and soak checks against a real `alttext serve` on 127.0.0.1 (debug model).
Bounded in count and time; prints figures as ratios against a baseline measured in the same run.

    scripts/attack.sh            # or: ALTTEXT_ATTACK=1 .venv/bin/python -m pytest -s tests/attack
"""
from __future__ import annotations

import base64
import os
import time

from tests.support.api import b64, png
from tests.support.loadkit import burst, rss_mb, serve

SOAK_S = float(os.environ.get("ALTTEXT_SOAK_S", "60"))


def test_json_bodies_do_not_multiply_memory(tmp_path):
    # ~24 MB JSON each (within the 32 MiB JSON limit): one alone is the baseline, then eight at once.
    blob = base64.b64encode(os.urandom(18 * 2**20)).decode()
    body = {"image_base64": b64(png()), "context": "x", "caption": "y"}
    big = {"url": "/v1/alt-text:batch", "json": {"items": [body, {"image_base64": blob}]}}
    with serve(tmp_path, max_image_bytes=20 * 2**20, rate_limit_per_minute=0) as (base, pid):
        idle = rss_mb(pid)
        one = burst(base, lambda i: big, total=1, concurrency=1, deadline_s=120)
        after_one = rss_mb(pid)
        eight = burst(base, lambda i: big, total=8, concurrency=8, deadline_s=300)
        after_eight = rss_mb(pid)
        print(f"\nJSON memory: idle {idle:.0f} MB, after one 24 MB body {after_one:.0f} MB "
              f"(+{after_one - idle:.0f}), after eight at once {after_eight:.0f} MB (+{after_eight - idle:.0f}); "
              f"statuses {sorted(one.statuses + eight.statuses)}, refused at the door before upload {eight.errors}; "
              f"growth ratio eight/one = {(after_eight - idle) / max(1.0, after_one - idle):.2f}")
        assert set(one.statuses + eight.statuses) <= {200, 503}
        # bound: the JSON budget (96 MiB) times ~3 for parsing, plus the baseline's own growth
        assert after_eight - idle < 3 * 96 + (after_one - idle) + 100


def test_soak_overload_stays_bounded_and_recovers(tmp_path):
    images = [b64(png((i * 7 % 256, i * 13 % 256, 90), size=(32 + i % 32, 24))) for i in range(64)]
    with serve(tmp_path, queue_size=32, batch_size=8, cache="false", rate_limit_per_minute=0) as (base, pid):
        calm = burst(base, lambda i: {"url": "/v1/alt-text", "json": {"image_base64": images[i % 64]}},
                     total=20, concurrency=1, deadline_s=120)
        base_p99, start_rss, peak = calm.p99(), rss_mb(pid), 0.0
        rounds, statuses, p99s = 0, [], []
        end = time.monotonic() + SOAK_S
        while time.monotonic() < end:
            r = burst(base, lambda i: {"url": "/v1/alt-text", "json": {"image_base64": images[i % 64]}},
                      total=400, concurrency=96, deadline_s=120)
            assert r.errors == 0 and r.retry_after_missing == 0
            statuses += r.statuses
            p99s.append(r.p99())
            peak = max(peak, rss_mb(pid))
            rounds += 1
        after = burst(base, lambda i: {"url": "/v1/alt-text", "json": {"image_base64": images[i % 64]}},
                      total=20, concurrency=1, deadline_s=120)
        print(f"\nsoak {SOAK_S:.0f} s, {rounds} rounds, {len(statuses)} requests: "
              f"{statuses.count(200)} x 200, {statuses.count(503)} x 503, other {len(statuses) - statuses.count(200) - statuses.count(503)}; "
              f"accepted p99 {max(p99s):.2f} s vs calm {base_p99:.3f} s (ratio {max(p99s) / max(base_p99, 1e-3):.0f}x); "
              f"RSS start {start_rss:.0f} MB, peak {peak:.0f} MB (ratio {peak / start_rss:.2f}); "
              f"after: {after.statuses.count(200)}/20 answered, p99 {after.p99():.3f} s")
        assert set(statuses) <= {200, 503}
        assert after.statuses == [200] * 20
        assert peak / start_rss < 2.0
