"""Backfill throughput and peak memory: N items made of the shipped test photos under new names,
half of them byte-for-byte duplicates of the other half (so half are drafted, half reused).

    .venv/bin/python -m evaluation.bench_backfill --items 2000 --engine local --engine ray
    .venv/bin/python -m evaluation.bench_backfill --items 20000 --engine local --model debug

Each run is a fresh `alttext backfill` process. Peak memory is the process's own peak RSS
(from wait4) and the sampled peak of its whole process tree (Ray's raylet and workers
included). Ratios are against the first configuration in the same invocation, so a busy
machine shifts all numbers together.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "coco"


def make_corpus(folder: Path, n: int) -> dict:
    """``n`` JPEGs: even ones are distinct files (a shipped photo plus a unique trailing tag, which
    decoders ignore), odd ones copy the even one before them under a new name."""
    photos = sorted(FIXTURES.glob("*.jpg"))
    folder.mkdir(parents=True, exist_ok=True)
    previous = b""
    for i in range(n):
        if i % 2 == 0:
            previous = photos[(i // 2) % len(photos)].read_bytes() + f"alttext-bench-{i}".encode()
        (folder / f"{i // 1000:03d}" / f"img-{i:06d}.jpg").parent.mkdir(exist_ok=True)
        (folder / f"{i // 1000:03d}" / f"img-{i:06d}.jpg").write_bytes(previous)
    return {"items": n, "distinct_contents": (n + 1) // 2, "source_photos": len(photos)}


def _tree_rss_kb(root_pid: int) -> int:
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as fh:
                fields = dict(line.split(":", 1) for line in fh if ":" in line)
            parents[int(entry)] = int(fields["PPid"])
            rss[int(entry)] = int(fields.get("VmRSS", "0 kB").split()[0])
        except (OSError, KeyError, ValueError):
            continue
    total, stack, seen = 0, [root_pid], set()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += rss.get(pid, 0)
        stack += children.get(pid, [])
    return total


def run_once(corpus: Path, out: Path, engine: str, model: str, extra: list[str]) -> dict:
    for path in out.parent.glob(out.name + "*"):
        path.unlink()
    cmd = [str(Path(sys.executable).with_name("alttext")), "backfill", str(corpus), "--out", str(out),
           "--progress", "off", "--engine", engine, *extra]
    env = {**os.environ, "ALTTEXT_MODEL": model}
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak_tree = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak_tree[0] = max(peak_tree[0], _tree_rss_kb(proc.pid))
            stop.wait(0.25)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    stop.set()
    sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{stderr[-3000:]}")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    drafted = next((int(w) for line in stderr.splitlines() if "drafted by the model" in line
                    for w in [line.split(";")[-1].split()[0]]), None)
    return {"engine": engine, "model": model, "items": len(rows), "seconds": round(seconds, 1),
            "images_per_s": round(len(rows) / seconds, 1), "drafted": drafted,
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "peak_tree_rss_mb": round(peak_tree[0] / 1024, 1),
            "decisions": {d: sum(r["decision"] == d for r in rows) for d in sorted({r["decision"] for r in rows})},
            "command": f"ALTTEXT_MODEL={model} " + " ".join(["alttext", *cmd[1:]])}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, action="append", help="corpus sizes (repeatable)")
    parser.add_argument("--engine", action="append", choices=["local", "ray"], help="engines (repeatable)")
    parser.add_argument("--model", default="debug", help="ALTTEXT_MODEL for the runs (default debug)")
    parser.add_argument("--work", type=Path, default=Path("runs/bench-backfill"))
    parser.add_argument("--out", type=Path, default=ROOT / "evaluation" / "results" / "backfill" / "bench.json")
    args = parser.parse_args(argv)
    sizes, engines = args.items or [2000], args.engine or ["local"]
    results = []
    for n in sizes:
        corpus = args.work / f"corpus-{n}"
        shutil.rmtree(corpus, ignore_errors=True)
        info = make_corpus(corpus, n)
        for engine in engines:
            row = run_once(corpus, args.work / f"out-{n}-{engine}.jsonl", engine, args.model,
                           ["--ray-concurrency", "2"] if engine == "ray" else [])
            row.update(info)
            results.append(row)
            print(json.dumps(row), flush=True)
    base = results[0]
    for row in results:
        row["throughput_vs_first"] = round(row["images_per_s"] / base["images_per_s"], 2)
        row["peak_rss_vs_first"] = round(row["peak_rss_mb"] / base["peak_rss_mb"], 2)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    existing = json.loads(args.out.read_text()) if args.out.exists() else []
    args.out.write_text(json.dumps(existing + [{"machine": f"{os.cpu_count()} CPUs, shared with other jobs",
                                                "runs": results}], indent=1) + "\n")


if __name__ == "__main__":
    main()
