"""The service against the bare model in turns: short slices of each, side by side in one run.

Timed in windows minutes apart, the service and the bare model are compared across the host's
drift (about 35% within minutes on the AMD EPYC development machine; results/bench/README.md).
Here both stay loaded and take turns: a slice of the service under N closed-loop clients, then a
slice of the bare model's ``generate`` in its best configuration, and so on, in ABBA order
(service first in even pairs, the bare model first in odd ones) so a steady drift cancels. Each
slice runs alone on the machine: the other process sits idle (a server with no requests, a
worker blocked on reading its stdin). Each pair gives one ratio; the median and spread count.

bench_service runs this after its rounds (``--paired-slices``); the worker is
``python -m evaluation.bench_paired --worker ...`` and is started by ``BareTurns``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAUSE_S = 1.0  # between slices: an OpenMP team that just finished stops spinning before the next starts
READY_S = 300.0  # the most the worker gets to load and warm the model
BARE_SLICE_SPARE_S = 120.0  # a bare slice may overrun its length by this (its last call, two calls at least)


class BareTurns:
    """A worker process holding the bare model, loaded and warm, that runs ``generate`` for a
    slice when asked (``run``) and is idle otherwise."""

    def __init__(self, model_dir: Path, *, tokens: int, dtype: str, batch: int, threads: int, device: str,
                 allocator: str = "default"):
        self.config = {"dtype": dtype, "batch": batch, "threads": threads, "allocator": allocator}
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "evaluation.bench_paired", "--worker", "--model-dir", str(model_dir),
             "--tokens", str(tokens), "--dtype", dtype, "--batch", str(batch), "--threads", str(threads),
             "--device", device, "--allocator", allocator],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self._answer(READY_S)  # "ready" once the model is loaded and one warm call is done

    def run(self, seconds: float) -> dict:
        """images/s and CPU ms per image of ``generate`` calls for at least ``seconds`` (and two calls)."""
        self._proc.stdin.write(f"{seconds}\n")
        return self._answer(seconds + BARE_SLICE_SPARE_S)

    def _answer(self, timeout_s: float) -> dict:
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(self._proc.stdout, selectors.EVENT_READ)
            line = self._proc.stdout.readline() if sel.select(timeout_s) else ""
        if not line:
            self.close()
            raise RuntimeError(f"bare-model worker gave no answer in {timeout_s:.0f} s:\n{self._proc.stderr.read()[-3000:]}")
        return json.loads(line)

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> BareTurns:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def in_turns(service_slice, bare: BareTurns, *, slices: int, slice_s: float) -> dict:
    """``slices`` pairs of a service slice (``service_slice(seconds)``, a load's dict) and a bare
    slice, in ABBA order; per pair the service's images/s over the bare model's."""
    pairs = []
    for i in range(slices):
        order = ("service", "bare") if i % 2 == 0 else ("bare", "service")
        pair: dict = {"order": list(order)}
        for kind in order:
            pair[kind] = service_slice(slice_s) if kind == "service" else bare.run(slice_s)
            time.sleep(PAUSE_S)
        pair["ratio"] = pair["service"]["images_per_s"] / pair["bare"]["images_per_s"]
        pairs.append(pair)
    ratios = [p["ratio"] for p in pairs]
    return {"bare_config": bare.config, "slice_s": slice_s, "pairs": pairs,
            "ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios), "pairs": ratios}}


def use_allocator(allocator: str) -> None:
    """Run this process under ``allocator``: "default" (the C library's) or "keep_freed" (the
    service's default, models.allocator). Process-wide, so each allocator needs its own process."""
    if allocator == "keep_freed":
        from models.allocator import keep_freed_memory

        keep_freed_memory()


def generate_for(model, pixels, tokens: int, seconds: float, device: str) -> dict:
    """``generate`` on ``pixels`` again and again for at least ``seconds`` (and two calls), timed:
    images, seconds, images/s, CPU ms and minor page faults per image of this process, and the
    new tokens per image. The caller warms the model and holds torch.inference_mode."""
    import resource

    import torch

    calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
    faults_start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    while calls < 2 or time.perf_counter() - start < seconds:
        out = model.generate(pixel_values=pixels, max_new_tokens=tokens)
        calls += 1
    if device.startswith("cuda"):
        torch.cuda.synchronize()  # count only finished work
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_start
    images = calls * len(pixels)
    return {"images": images, "seconds": elapsed, "images_per_s": images / elapsed,
            "cpu_ms_per_image": cpu * 1000 / images, "minor_faults_per_image": faults / images,
            "new_tokens": int(out.shape[1]) - 1}


def worker(model_dir: str, tokens: int, dtype: str, batch: int, threads: int, device: str,
           allocator: str = "default") -> None:
    """Load the model, warm it, say "ready", then for each line on stdin (seconds) run generate
    on a pre-decoded batch that long and print images/s, CPU ms and minor page faults per image
    as one JSON line. ``allocator``: as in ``use_allocator``."""
    import io

    import torch
    from PIL import Image
    from transformers import BlipForConditionalGeneration, BlipProcessor

    from evaluation.bench_photos import photos

    use_allocator(allocator)
    torch.set_num_threads(threads)
    processor = BlipProcessor.from_pretrained(model_dir)
    model = BlipForConditionalGeneration.from_pretrained(model_dir, dtype=getattr(torch, dtype)).to(device).eval()
    pictures = [Image.open(io.BytesIO(b)).convert("RGB") for b in photos(batch)]
    pixels = processor(images=pictures, return_tensors="pt")["pixel_values"].to(device, model.dtype)
    with torch.inference_mode():
        model.generate(pixel_values=pixels, max_new_tokens=tokens)
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            print(json.dumps(generate_for(model, pixels, tokens, float(line), device)), flush=True)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="The bare-model worker of the paired benchmark (started by BareTurns).")
    p.add_argument("--worker", action="store_true", required=True)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--tokens", type=int, required=True)
    p.add_argument("--dtype", required=True)
    p.add_argument("--batch", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--allocator", choices=("default", "keep_freed"), default="default")
    args = p.parse_args(argv)
    worker(args.model_dir, args.tokens, args.dtype, args.batch, args.threads, args.device, args.allocator)


if __name__ == "__main__":
    main()
