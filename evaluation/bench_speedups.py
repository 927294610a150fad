"""CPU speed-ups for a transformers model, for speed and output agreement with the unmodified one.

    .venv/bin/python -m evaluation.bench_speedups                     # BLIP-base, random weights
    .venv/bin/python -m evaluation.bench_speedups --tiny --rounds 1 --images 4

Variants, each through the real TransformersDrafter in a fresh process:

- ``float32``: the unmodified model (the reference for agreement);
- ``bfloat16``: ``ALTTEXT_DTYPE=bfloat16`` (what ``auto`` picks on a CPU with AMX-BF16 or
  AVX512-BF16 units, see ``models.transformers_backend.pick_dtype``);
- ``int8_dynamic``: ``torch.ao.quantization.quantize_dynamic`` on every ``nn.Linear`` (int8
  weights, activations quantized per call; measured only, not a setting).

Model: BLIP-base with random weights, "sighted" (``bench_service.build_model``): the vision
encoder is drawn at std 0.02 instead of ``BlipConfig()``'s 1e-10, whose output is about 1e-6
for every image, so every image got the same caption and "drafts identical" said nothing.
Sighted, the embeddings, the logits and the greedy text all depend on the image. Images:
``--images`` distinct pictures, the shipped photos, then mirrored crops of them, then drawn
shapes (``pictures``).

Speed: images/s drafting the images in batches of ``--batch``, interleaved over ``--rounds``
rounds (the order rotates), each with its free-running greedy texts (text agreement with the
float32 texts of the same round: exact drafts and words position by position).

Agreement (deterministic, so measured once per variant, each in a fresh process), per image:

- vision: cosine similarity to float32 of the pooled embedding (BLIP's post-norm [CLS]) and of
  each patch embedding (mean and min over the 576 patches);
- teacher-forced decoding: the float32 greedy tokens fed to every variant; top-1 agreement
  over the generated positions, and the relative logit error ``||l - l32|| / ||l32||`` per
  position (max and mean; the [SEP] and eos logits pushed to -1e4 are left out).

These carry over to trained weights better than text agreement on random weights, whose
logits are nearly flat (a median top-1/top-2 gap of about 0.08), so small numeric differences
flip choices far more often than in a trained model: the text agreement here is a
pessimistic bound. Writes ``--out`` (default evaluation/results/bench/speedups.json).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from evaluation.bench_service import EOS, ROOT, SEP, add_model_options, build_model, machine, measured_apart

VARIANTS = ("float32", "bfloat16", "int8_dynamic")


def pictures(n: int) -> list:
    """``n`` distinct RGB pictures: the shipped photos, then mirrored centre crops of them, then
    seeded drawings of coloured shapes (the same in every process)."""
    import random

    from PIL import Image, ImageDraw, ImageOps

    files = sorted((ROOT / "tests" / "fixtures" / "coco").glob("*.jpg"))
    photos = [Image.open(f).convert("RGB") for f in files]
    out = list(photos[:n])
    for photo in photos[: max(0, min(len(photos), (n - len(out) + 1) // 2))]:
        w, h = photo.size
        out.append(ImageOps.mirror(photo.crop((w // 6, h // 6, w - w // 6, h - h // 6))))
    rng = random.Random(15)
    while len(out) < n:
        image = Image.new("RGB", (384, 384), tuple(rng.randrange(256) for _ in range(3)))
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x, y = rng.randrange(300), rng.randrange(300)
            box = (x, y, x + rng.randrange(20, 160), y + rng.randrange(20, 160))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=tuple(rng.randrange(256) for _ in range(3)))
        out.append(image)
    return out[:n]


def drafter_for(model_dir: str, variant: str, batch: int, tokens: int):
    import torch

    from models.transformers_backend import TransformersDrafter

    dtype = "bfloat16" if variant == "bfloat16" else "float32"
    drafter = TransformersDrafter(model_dir, device="cpu", dtype=dtype, batch_size=batch,
                                  generation={"max_new_tokens": tokens, "no_repeat_ngram_size": 0})
    if variant == "int8_dynamic":
        drafter._model = torch.ao.quantization.quantize_dynamic(drafter._model, {torch.nn.Linear}, dtype=torch.qint8)
    return drafter


def measure(model_dir: str, variant: str, images: int, batch: int, tokens: int) -> dict:
    """Speed and free-running texts of one variant (run in a process of its own)."""
    drafter = drafter_for(model_dir, variant, batch, tokens)
    shown = pictures(images)
    drafter.draft(shown[:batch])  # warm
    start = time.perf_counter()
    texts = [d.text for d in drafter.draft(shown)]
    elapsed = time.perf_counter() - start
    return {"images_per_s": images / elapsed, "texts": texts}


def signals(model_dir: str, variant: str, images: int, batch: int, tokens: int, work: Path) -> dict:
    """Vision embeddings and teacher-forced logits of one variant, saved to ``work/variant.pt``.
    float32 generates the reference tokens; the others are fed them (so float32 runs first)."""
    import torch

    drafter = drafter_for(model_dir, variant, batch, tokens)
    model, shown = drafter._model, pictures(images)
    reference = None if variant == "float32" else torch.load(work / "float32.pt")["tokens"]
    pooled, patches, logits, generated = [], [], [], []
    with torch.inference_mode():
        for start in range(0, images, batch):
            pixels = drafter._encode(shown[start:start + batch], None)["pixel_values"].to(dtype=drafter._dtype)
            vision = model.vision_model(pixel_values=pixels)
            pooled.append(vision.pooler_output.float())
            patches.append(vision.last_hidden_state[:, 1:].float())
            if reference is None:
                seq = model.generate(pixel_values=pixels, max_new_tokens=tokens, do_sample=False, num_beams=1)
            else:
                seq = reference[start:start + batch]
            generated.append(seq)
            out = model(pixel_values=pixels, input_ids=seq[:, :-1])
            logits.append(out.logits[:, -tokens:].float())  # the positions that predict the new tokens
    saved = {"pooled": torch.cat(pooled), "patches": torch.cat(patches), "logits": torch.cat(logits),
             "tokens": torch.cat(generated)}
    torch.save(saved, work / f"{variant}.pt")
    return {"saved": str(work / f"{variant}.pt")}


def compare(work: Path, variant: str) -> list[dict]:
    """Per image: vision cosines and teacher-forced agreement of ``variant`` against float32."""
    import torch
    from torch.nn.functional import cosine_similarity

    ref, other = torch.load(work / "float32.pt"), torch.load(work / f"{variant}.pt")
    keep = torch.ones(ref["logits"].shape[-1], dtype=torch.bool)
    keep[[SEP, EOS]] = False  # pushed to -1e4 so no image ends early: not the model's own logits
    rows = []
    for i in range(ref["pooled"].shape[0]):
        patch_cos = cosine_similarity(ref["patches"][i], other["patches"][i], dim=-1)
        l32, lv = ref["logits"][i][:, keep], other["logits"][i][:, keep]
        rel = (lv - l32).norm(dim=-1) / l32.norm(dim=-1)
        rows.append({
            "pooled_cosine": cosine_similarity(ref["pooled"][i], other["pooled"][i], dim=0).item(),
            "patch_cosine_mean": patch_cos.mean().item(), "patch_cosine_min": patch_cos.min().item(),
            "top1_agreement": (lv.argmax(-1) == l32.argmax(-1)).float().mean().item(),
            "logit_rel_error_max": rel.max().item(), "logit_rel_error_mean": rel.mean().item(),
        })
    return rows


def reference_self_check(work: Path) -> float:
    """Share of positions where float32's teacher-forced top-1 is the token it generated (1.0
    unless the cached and the one-pass forward disagree: a check of the method)."""
    import torch

    ref = torch.load(work / "float32.pt")
    logits = ref["logits"].clone()
    logits[..., [SEP, EOS]] = -float("inf")
    new_tokens = ref["tokens"][:, -logits.shape[1]:]
    return (logits.argmax(-1) == new_tokens).float().mean().item()


def text_agreement(reference: list[str], other: list[str]) -> tuple[float, float]:
    exact = sum(a == b for a, b in zip(reference, other)) / len(reference)
    words = [(a.split(), b.split()) for a, b in zip(reference, other)]
    same = sum(sum(x == y for x, y in zip(a, b)) for a, b in words)
    total = sum(max(len(a), len(b)) for a, b in words) or 1
    return exact, same / total


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--images", type=int, default=16)
    p.add_argument("--batch", type=int, default=8)
    add_model_options(p)
    p.add_argument("--out", type=Path, default=ROOT / "evaluation" / "results" / "bench" / "speedups.json")
    p.add_argument("--variant", help=argparse.SUPPRESS)
    p.add_argument("--signals", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    model_dir = args.model_dir or ROOT / "runs" / "bench" / ("blip-tiny-sighted" if args.tiny else "blip-base-sighted")
    common = ("--model-dir", str(model_dir), "--images", str(args.images), "--batch", str(args.batch),
              "--tokens", str(args.tokens))
    if args.variant:
        if args.signals:
            print(json.dumps(signals(str(model_dir), args.variant, args.images, args.batch, args.tokens, args.signals)))
        else:
            print(json.dumps(measure(str(model_dir), args.variant, args.images, args.batch, args.tokens)))
        return None
    build_model(model_dir, tiny=args.tiny, sighted=True)
    info = machine()

    # Agreement: deterministic, once per variant (float32 first: it writes the reference tokens).
    per_image: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="alttext-speedups-") as work:
        for variant in VARIANTS:
            measured_apart("evaluation.bench_speedups", "--variant", variant, "--signals", work, *common)
        for variant in VARIANTS[1:]:
            per_image[variant] = compare(Path(work), variant)
        self_check = reference_self_check(Path(work))
    print("agreement: " + ", ".join(f"{v} top-1 {statistics.mean(r['top1_agreement'] for r in rows):.3f}"
                                    for v, rows in per_image.items()), file=sys.stderr, flush=True)

    rounds = []
    for i in range(args.rounds):
        row = {}
        order = VARIANTS[i % len(VARIANTS):] + VARIANTS[:i % len(VARIANTS)]
        for variant in order:
            row[variant] = measured_apart("evaluation.bench_speedups", "--variant", variant, *common)
        for variant in VARIANTS:
            row[variant]["speed_vs_float32"] = row[variant]["images_per_s"] / row["float32"]["images_per_s"]
            exact, words = text_agreement(row["float32"]["texts"], row[variant]["texts"])
            row[variant] |= {"exact_agreement": exact, "word_agreement": words}
        rounds.append(row)
        print(f"round {i + 1}: " + ", ".join(f"{v} {row[v]['speed_vs_float32']:.2f}x exact {row[v]['exact_agreement']:.2f}"
                                            for v in VARIANTS), file=sys.stderr, flush=True)
    info["load_avg_at_end"] = os.getloadavg()

    def spread(values: list[float]) -> dict:
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    summary = {}
    for v in VARIANTS:
        summary[v] = {k: spread([r[v][k] for r in rounds])
                      for k in ("images_per_s", "speed_vs_float32", "exact_agreement", "word_agreement")}
        summary[v]["distinct_texts"] = statistics.median(len(set(r[v]["texts"])) for r in rounds)
        if v in per_image:
            rows = per_image[v]
            summary[v] |= {
                "pooled_cosine": spread([r["pooled_cosine"] for r in rows]),
                "patch_cosine_mean": spread([r["patch_cosine_mean"] for r in rows]),
                "patch_cosine_min": min(r["patch_cosine_min"] for r in rows),
                "top1_agreement": spread([r["top1_agreement"] for r in rows]),
                "top1_agreement_all": statistics.mean(r["top1_agreement"] for r in rows),
                "logit_rel_error_max": max(r["logit_rel_error_max"] for r in rows),
                "logit_rel_error_mean": statistics.mean(r["logit_rel_error_mean"] for r in rows),
            }
    result = {"command": "python -m evaluation.bench_speedups " + " ".join(argv if argv is not None else sys.argv[1:]),
              "model": ("BLIP tiny" if args.tiny else "BLIP-base") + " (random weights, sighted: vision encoder at std 0.02)",
              "tokens": args.tokens, "batch": args.batch, "images": args.images, "machine": info,
              "summary": summary, "reference_self_check": self_check, "agreement_per_image": per_image,
              "rounds": rounds}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(summary, indent=1))
    return result


if __name__ == "__main__":
    main()
