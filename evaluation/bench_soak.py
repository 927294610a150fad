"""Soak: does the service's memory stay flat under minutes of sustained load?

    .venv/bin/python -m evaluation.bench_soak                          # offline default, 16 clients, 5 min
    .venv/bin/python -m evaluation.bench_soak --model blip --seconds 300 # BLIP-base (random weights)
    .venv/bin/python -m evaluation.bench_soak --trace-memory            # + where Python memory grew

Starts ``alttext serve`` (the same way, settings and closed-loop load generator as
evaluation/bench_service.py: distinct JPEGs, result cache off), sends one warm-up request, then
keeps ``--clients`` clients busy for ``--seconds``, sampling the resident memory (VmRSS, and its
anonymous part RssAnon) of the server's process tree every ``--every-s`` seconds. Reports RSS at
the start of load, at ``--warm-s`` (warm: model, arenas and pools have grown to their working
size), at the end, and the slope of a least-squares line through the samples from ``--warm-s``
to the end, in MB per minute, with its standard error. The memory is "flat" when that slope is
at most FLAT_FLOOR_MB_PER_MIN or FLAT_SHARE_PER_MIN of the warm RSS per minute, whichever is
larger (see ``flat_threshold``).
Writes ``soak.json`` (``soak_blip.json`` for ``--model blip``; samples and summary) to ``--out`` (default evaluation/results/bench).

``--trace-memory`` runs the server with tracemalloc (evaluation/bench_traced.py): tracing starts
when warm, and at the end the JSON gets the Python allocation sites made since then that are
still alive, largest first. Tracing slows the server; use it to find a leak, not for the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from evaluation import bench_photos, bench_service
from evaluation.bench_server import tree_rss_kb

# Flat means: over the window after warm-up, RSS grows by at most the larger of these per minute.
# 0.5 % of the warm RSS per minute is 2 % over the 4-minute window, within what glibc arenas and
# torch's caching allocators move by on their own; the 2 MB floor keeps small servers (the debug
# or tiny models, ~100-300 MB) from being judged on allocator noise. A leak of every uploaded
# JPEG (35-270 KB here) at a few images per second is 10+ MB/min and is caught; the JSON puts the
# slope such a leak would give beside the threshold.
FLAT_FLOOR_MB_PER_MIN = 2.0
FLAT_SHARE_PER_MIN = 0.005


def flat_threshold(warm_rss_mb: float) -> float:
    """The largest slope (MB/min) still called flat for a server whose warm RSS is ``warm_rss_mb``."""
    return max(FLAT_FLOOR_MB_PER_MIN, FLAT_SHARE_PER_MIN * warm_rss_mb)


def summarise(samples: list[dict], warm_s: float, *, upload_kb: float | None = None) -> dict:
    """RSS at the start, when warm and at the end; the slope after warm-up and its verdict.
    ``samples``: dicts with ``t_s`` (seconds since load began), ``rss_mb`` and ``answered``."""
    if len(samples) < 2:
        raise ValueError("a soak needs at least two RSS samples")
    start, end = samples[0], samples[-1]
    warm = min(samples, key=lambda s: abs(s["t_s"] - warm_s))
    tail = [s for s in samples if s["t_s"] >= warm["t_s"]]
    slope, stderr = fit(tail, "rss_mb")
    anon_slope, _ = fit([s for s in tail if "anon_mb" in s], "anon_mb")
    # a leak grows at the same pace to the end; allocators warming up slow down: the last half tells
    late_slope, _ = fit([s for s in tail if s["t_s"] >= (warm["t_s"] + end["t_s"]) / 2], "rss_mb")
    threshold = flat_threshold(warm["rss_mb"])
    minutes = (end["t_s"] - warm["t_s"]) / 60
    answered_per_min = (end["answered"] - warm["answered"]) / minutes if minutes > 0 else 0.0
    out = {
        "rss_start_mb": start["rss_mb"], "rss_warm_mb": warm["rss_mb"], "warm_at_s": warm["t_s"],
        "rss_end_mb": end["rss_mb"], "rss_peak_mb": max(s["rss_mb"] for s in samples),
        "growth_after_warm_mb": end["rss_mb"] - warm["rss_mb"],
        "slope_after_warm_mb_per_min": slope, "slope_stderr_mb_per_min": stderr,
        "anon_slope_after_warm_mb_per_min": anon_slope, "slope_last_half_mb_per_min": late_slope, "fit_samples": len(tail), "fit_minutes": minutes,
        "flat_threshold_mb_per_min": threshold, "flat": slope is not None and slope <= threshold,
        "answered_per_min_after_warm": answered_per_min,
    }
    if upload_kb is not None:  # what keeping every upload alive would add per minute, and whether it would show
        out["slope_if_every_upload_leaked_mb_per_min"] = answered_per_min * upload_kb / 1024
        out["would_catch_an_upload_leak"] = out["slope_if_every_upload_leaked_mb_per_min"] > threshold
    return out


def fit(samples: list[dict], key: str) -> tuple[float | None, float | None]:
    """Least-squares slope of ``key`` against time in MB/min, and its standard error (how much
    of the slope the spread of the samples alone could make); None without 3 samples."""
    if len(samples) < 3 or samples[-1]["t_s"] <= samples[0]["t_s"]:
        return None, None
    x, y = [s["t_s"] / 60 for s in samples], [s[key] for s in samples]
    line = statistics.linear_regression(x, y)
    residual = sum((b - (line.intercept + line.slope * a)) ** 2 for a, b in zip(x, y)) / (len(x) - 2)
    spread = sum((a - statistics.fmean(x)) ** 2 for a in x)
    return line.slope, (residual / spread) ** 0.5


def soak(url: str, pid: int, *, clients: int, seconds: float, every_s: float) -> tuple[list[dict], dict]:
    """Closed-loop load of ``clients`` for ``seconds`` while sampling the process tree's RSS."""
    answered = [0]
    samples: list[dict] = []
    stop = threading.Event()
    t0 = time.perf_counter()

    def take() -> None:
        # RSS, and its anonymous part (heap, arenas: where a leak shows) apart from file pages
        # (libraries and weights paged in as code paths are first used)
        samples.append({"t_s": round(time.perf_counter() - t0, 2), "rss_mb": round(tree_rss_kb(pid) / 1024, 1),
                        "anon_mb": round(tree_rss_kb(pid, "RssAnon") / 1024, 1), "answered": answered[0]})

    def sampler() -> None:
        while not stop.wait(every_s):
            take()

    def counted(_status: str) -> None:
        answered[0] += 1

    take()
    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    try:
        result = bench_service.load(url, pid, clients, 10**9, seconds, on_answer=counted)
    finally:
        stop.set()
        thread.join()
    take()
    return samples, result


def mean_upload_kb() -> float:
    return statistics.mean(len(bench_photos.photo(i)) for i in range(len(list(bench_photos.PHOTOS.glob("*.jpg"))))) / 1024


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", choices=("offline", "blip"), default="offline",
                   help="offline: the embedded default drafter; blip: the benchmark's random-weight BLIP")
    p.add_argument("--seconds", type=float, default=300.0, help="how long the load lasts")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--every-s", type=float, default=2.0, help="seconds between RSS samples")
    p.add_argument("--warm-s", type=float, default=60.0, help="the slope is fitted from here to the end")
    p.add_argument("--trace-memory", action="store_true", help="run the server under tracemalloc (slow)")
    p.add_argument("--device", default="cpu", help="blip only: cpu or cuda")
    bench_service.add_model_options(p)
    p.add_argument("--out", type=Path, default=bench_service.ROOT / "evaluation" / "results" / "bench")
    args = p.parse_args(argv)
    if args.warm_s >= args.seconds:
        p.error("--warm-s must be shorter than --seconds")
    bench_service.require_device(args.device)
    model_dir = bench_service.model_dir_of(args)
    if args.model == "blip":
        bench_service.build_model(model_dir, tiny=args.tiny)
    kind = "service" if args.model == "blip" else "offline"
    work = Path(tempfile.mkdtemp(prefix="alttext-soak-"))
    trace_file = work / "tracemalloc.json" if args.trace_memory else None
    load_avg_start = os.getloadavg()
    print(f"soak: {args.model}, {args.clients} clients, {args.seconds:.0f} s, RSS every {args.every_s:g} s; "
          f"load average now {load_avg_start[0]:.2f}", file=sys.stderr, flush=True)
    with bench_service.server(kind, model_dir, args.tokens, work, args.device, trace_memory=trace_file) as (url, pid):
        bench_service.load(url, pid, 1, 1, 60.0)  # one warm-up request, not counted
        if trace_file:
            threading.Timer(args.warm_s, lambda: os.kill(pid, bench_traced_signal())).start()
        samples, result = soak(url, pid, clients=args.clients, seconds=args.seconds, every_s=args.every_s)
        if trace_file:
            os.kill(pid, bench_traced_signal())
            deadline = time.monotonic() + 300
            while not trace_file.exists() and time.monotonic() < deadline:
                time.sleep(0.5)
    summary = summarise(samples, args.warm_s, upload_kb=mean_upload_kb())
    out = {
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m evaluation.bench_soak " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": {"offline": "embedded default (offline)", "blip": f"BLIP {'tiny' if args.tiny else 'base'} "
                  f"(random weights), {args.tokens} new tokens"}[args.model],
        "clients": args.clients, "seconds": args.seconds, "every_s": args.every_s, "warm_s": args.warm_s,
        "device": args.device, "load_avg_at_start": load_avg_start, "load_avg_at_end": os.getloadavg(),
        "cores": os.cpu_count(), "summary": summary, "load": result, "samples": samples,
        "flat_rule": f"slope after warm-up <= max({FLAT_FLOOR_MB_PER_MIN} MB/min, "
                     f"{FLAT_SHARE_PER_MIN:.1%} of warm RSS per min)",
    }
    if trace_file:
        out["trace_memory"] = json.loads(trace_file.read_text()) if trace_file.exists() else None
    args.out.mkdir(parents=True, exist_ok=True)
    name = "soak.json" if args.model == "offline" else f"soak_{args.model}.json"  # one file per model, side by side
    (args.out / name).write_text(json.dumps(out, indent=2) + "\n")
    print(line(out))
    return out


def bench_traced_signal() -> int:
    from evaluation.bench_traced import SNAPSHOT_SIGNAL

    return SNAPSHOT_SIGNAL


def line(out: dict) -> str:
    """One Markdown table row: what the README's soak table shows."""
    s = out["summary"]
    slope = "-" if s["slope_after_warm_mb_per_min"] is None else f"{s['slope_after_warm_mb_per_min']:+.2f}"
    return (f"| {out['model']} | {out['clients']} | {out['seconds']:.0f} s | {out['load']['images_per_s']:.2f} | "
            f"{s['rss_start_mb']:.0f} | {s['rss_warm_mb']:.0f} | {s['rss_end_mb']:.0f} | {slope} | "
            f"<= {s['flat_threshold_mb_per_min']:.1f} | {'yes' if s['flat'] else 'NO'} | "
            f"{out['load_avg_at_start'][0]:.1f} |")


if __name__ == "__main__":
    main()
