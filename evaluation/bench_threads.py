"""Does warming the model on one thread and running it on another slow batch-1 calls?

    .venv/bin/python -m evaluation.bench_threads                 # BLIP-base, random weights
    .venv/bin/python -m evaluation.bench_threads --tiny --rounds 1 --calls 2

torch gives every thread that enters a parallel region its own OpenMP thread team. Before
issue 15 the service loaded and warmed the model in asyncio's default executor and ran it on
its own model thread, so two teams lived in the process. Each mode runs in a fresh process
(teams live as long as the process), through the real TransformersDrafter:

- ``two_threads``: load and warm-up draft on thread A (kept alive, as asyncio's executor
  keeps its threads), then ``--calls`` batch-1 drafts on thread B (what the service did);
- ``one_thread``: load, warm-up and the drafts all on one thread (what it does now).

Modes alternate over ``--rounds``; the median seconds per call of each mode and their ratio
per round are written to ``--out`` (default evaluation/results/bench/threads.json).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from evaluation.bench_photos import photos
from evaluation.bench_service import ROOT, add_model_options, build_model, machine, measured_apart, model_dir_of


def measure(model_dir: str, mode: str, calls: int, tokens: int) -> list[float]:
    import io

    from PIL import Image

    from models.transformers_backend import TransformersDrafter

    warm_thread = ThreadPoolExecutor(max_workers=1)
    model_thread = warm_thread if mode == "one_thread" else ThreadPoolExecutor(max_workers=1)
    picture = Image.open(io.BytesIO(photos(1)[0])).convert("RGB")

    def load_and_warm() -> TransformersDrafter:
        drafter = TransformersDrafter(model_dir, device="cpu", generation={"max_new_tokens": tokens})
        drafter.draft([Image.new("RGB", (64, 64), "white")])
        return drafter

    drafter = warm_thread.submit(load_and_warm).result()

    def timed() -> float:
        start = time.perf_counter()
        drafter.draft([picture])
        return time.perf_counter() - start

    return [model_thread.submit(timed).result() for _ in range(calls)]


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--calls", type=int, default=8, help="batch-1 drafts timed per mode and round")
    add_model_options(p)
    p.add_argument("--out", type=Path, default=ROOT / "evaluation" / "results" / "bench" / "threads.json")
    p.add_argument("--mode", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    model_dir = model_dir_of(args)
    if args.mode:
        print(json.dumps(measure(str(model_dir), args.mode, args.calls, args.tokens)))
        return None
    build_model(model_dir, tiny=args.tiny)
    info = machine()
    rounds = []
    for i in range(args.rounds):
        row = {}
        for mode in (("two_threads", "one_thread") if i % 2 == 0 else ("one_thread", "two_threads")):
            row[mode] = statistics.median(measured_apart("evaluation.bench_threads", "--mode", mode, "--model-dir",
                                                         str(model_dir), "--calls", str(args.calls), "--tokens", str(args.tokens)))
        row["two_over_one"] = row["two_threads"] / row["one_thread"]
        rounds.append(row)
        print(f"round {i + 1}: {row}", file=sys.stderr, flush=True)
    info["load_avg_at_end"] = os.getloadavg()
    ratios = [r["two_over_one"] for r in rounds]
    result = {"command": "python -m evaluation.bench_threads " + " ".join(argv if argv is not None else sys.argv[1:]),
              "model": "BLIP tiny (random)" if args.tiny else "BLIP-base (random weights)", "tokens": args.tokens,
              "machine": info, "rounds": rounds,
              "two_over_one": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["two_over_one"]))
    return result


if __name__ == "__main__":
    main()
