"""Baseline check for a drafter: does the draft name something the human captions name?

For each image: the draft's content words (stop words, counts and our template words
removed, plurals singularised) are matched against the words of the references. A hit
means at least one of them appears in at least one reference. Also reports latency per
image (one image per call, as a CMS plugin sends them) and the process's peak memory.

    python -m evaluation.noun_overlap --dataset coco --limit 50 --out evaluation/results/offline_coco50.json
"""
from __future__ import annotations

import json
import platform
import re
import resource
import time
from pathlib import Path
from typing import Annotated, Optional

import inflect
import typer

from evaluation.datasets import load_samples

_inflect = inflect.engine()
_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")
_SKIP = set("""
a an the and or of with in on at by to for from some about one two three four five six seven eight nine ten
eleven twelve many crowd text reading photograph photo black-and-white chart logo illustration screenshot view
no objects could be recognised pair pairs
""".split())


def _words(text: str) -> set[str]:
    out = set()
    for word in _WORD.findall(text.lower()):
        for part in [word, *word.split("-")]:
            out.add(_inflect.singular_noun(part) or part)
    return out


def content_nouns(draft: str) -> set[str]:
    # Quoted OCR text is what the image says, not a noun the draft chose.
    draft = re.sub(r"“[^”]*”", " ", draft)
    return {w for w in _words(draft) if w not in _SKIP and len(w) > 2}


def overlaps(draft: str, references: list[str]) -> bool:
    ref_words = set().union(*(_words(r) for r in references)) if references else set()
    return bool(content_nouns(draft) & ref_words)


def main(
    dataset: Annotated[str, typer.Option(help="coco, concadia or a JSON Lines path.")] = "coco",
    limit: Annotated[int, typer.Option(help="How many images.")] = 50,
    model: Annotated[str, typer.Option(help="Drafter: offline or a transformers id/path.")] = "offline",
    out: Annotated[Optional[Path], typer.Option(help="Write the summary and per-image rows here.")] = None,
) -> None:
    from models.imageio import load_image
    from models.registry import load_drafter

    samples = load_samples(dataset, limit=limit)
    load_start = time.perf_counter()
    drafter = load_drafter(model)
    drafter.warm_up()
    load_s = time.perf_counter() - load_start

    rows, latencies = [], []
    for sample in samples:
        image = load_image(sample.image).image
        start = time.perf_counter()
        draft = drafter.draft([image])[0]
        latencies.append((time.perf_counter() - start) * 1000)
        rows.append({"id": sample.id, "draft": draft.text, "confidence": draft.confidence,
                     "nouns": sorted(content_nouns(draft.text)), "hit": overlaps(draft.text, sample.references),
                     "reference": sample.references[0] if sample.references else None})
    hits = sum(r["hit"] for r in rows)
    ordered = sorted(latencies)
    summary = {
        "dataset": dataset, "images": len(rows), "model": drafter.model.model_dump(),
        "noun_overlap_share": round(hits / len(rows), 3),
        "latency_ms_mean": round(sum(latencies) / len(latencies), 1),
        "latency_ms_p50": round(ordered[len(ordered) // 2], 1),
        "latency_ms_p95": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 1),
        "load_and_warm_up_s": round(load_s, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}",
    }
    typer.echo(json.dumps(summary, indent=2))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"summary": summary, "samples": rows}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    typer.run(main)
