"""CPU speed-ups for a transformers model, for speed and output agreement with the unmodified one.

    .venv/bin/python -m evaluation.bench_speedups                     # BLIP-base, random weights
    .venv/bin/python -m evaluation.bench_speedups --tiny --rounds 1 --images 2

Variants, each through the real TransformersDrafter in a fresh process, interleaved over
``--rounds`` rounds:

- ``float32``: the default on CPU (the reference for agreement);
- ``bfloat16``: ``ALTTEXT_DTYPE=bfloat16``, a setting the service already has (fast where the
  CPU has AMX or AVX512-BF16 units);
- ``int8_dynamic``: ``torch.ao.quantization.quantize_dynamic`` on every ``nn.Linear`` (int8
  weights, activations quantized per call; measured only, not a setting).

Speed is images/s drafting ``--images`` distinct photos in batches of ``--batch``; agreement is
the share of drafts whose text equals the float32 draft, and the share of equal words
position by position. With random weights the logits are nearly flat, so small numeric
differences flip the choice far more often than with a trained model: the agreement here is
a pessimistic bound. Writes ``--out`` (default evaluation/results/bench/speedups.json).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from evaluation.bench_service import ROOT, add_model_options, build_model, machine, measured_apart, model_dir_of

VARIANTS = ("float32", "bfloat16", "int8_dynamic")


def measure(model_dir: str, variant: str, images: int, batch: int, tokens: int) -> dict:
    import torch
    from PIL import Image

    from models.transformers_backend import TransformersDrafter

    dtype = "bfloat16" if variant == "bfloat16" else "float32"
    drafter = TransformersDrafter(model_dir, device="cpu", dtype=dtype, batch_size=batch,
                                  generation={"max_new_tokens": tokens, "no_repeat_ngram_size": 0})
    if variant == "int8_dynamic":
        drafter._model = torch.ao.quantization.quantize_dynamic(drafter._model, {torch.nn.Linear}, dtype=torch.qint8)
    # The same photos in every process (no unique tags): agreement compares like with like.
    files = sorted((ROOT / "tests" / "fixtures" / "coco").glob("*.jpg"))
    pictures = [Image.open(files[i % len(files)]).convert("RGB") for i in range(images)]
    drafter.draft(pictures[:batch])  # warm
    start = time.perf_counter()
    texts = [d.text for d in drafter.draft(pictures)]
    elapsed = time.perf_counter() - start
    return {"images_per_s": images / elapsed, "texts": texts}


def agreement(reference: list[str], other: list[str]) -> tuple[float, float]:
    exact = sum(a == b for a, b in zip(reference, other)) / len(reference)
    words = [(a.split(), b.split()) for a, b in zip(reference, other)]
    same = sum(sum(x == y for x, y in zip(a, b)) for a, b in words)
    total = sum(max(len(a), len(b)) for a, b in words) or 1
    return exact, same / total


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--batch", type=int, default=8)
    add_model_options(p)
    p.add_argument("--out", type=Path, default=ROOT / "evaluation" / "results" / "bench" / "speedups.json")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    model_dir = model_dir_of(args)
    if args.variant:
        print(json.dumps(measure(str(model_dir), args.variant, args.images, args.batch, args.tokens)))
        return None
    build_model(model_dir, tiny=args.tiny)
    info = machine()
    rounds = []
    for i in range(args.rounds):
        row = {}
        order = VARIANTS[i % len(VARIANTS):] + VARIANTS[:i % len(VARIANTS)]
        for variant in order:
            row[variant] = measured_apart("evaluation.bench_speedups", "--variant", variant, "--model-dir", str(model_dir),
                                          "--images", str(args.images), "--batch", str(args.batch), "--tokens", str(args.tokens))
        for variant in VARIANTS:
            row[variant]["speed_vs_float32"] = row[variant]["images_per_s"] / row["float32"]["images_per_s"]
            exact, words = agreement(row["float32"]["texts"], row[variant]["texts"])
            row[variant] |= {"exact_agreement": exact, "word_agreement": words}
        rounds.append(row)
        print(f"round {i + 1}: " + ", ".join(f"{v} {row[v]['speed_vs_float32']:.2f}x exact {row[v]['exact_agreement']:.2f}"
                                            for v in VARIANTS), file=sys.stderr, flush=True)
    info["load_avg_at_end"] = os.getloadavg()
    summary = {v: {k: statistics.median(r[v][k] for r in rounds)
                   for k in ("images_per_s", "speed_vs_float32", "exact_agreement", "word_agreement")}
               for v in VARIANTS}
    result = {"command": "python -m evaluation.bench_speedups " + " ".join(argv if argv is not None else sys.argv[1:]),
              "model": "BLIP tiny (random)" if args.tiny else "BLIP-base (random weights)", "tokens": args.tokens,
              "batch": args.batch, "machine": info, "summary": summary, "rounds": rounds}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=1))
    return result


if __name__ == "__main__":
    main()
