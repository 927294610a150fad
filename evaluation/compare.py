"""Before/after: two runs of `alttext eval` on the same images, re-scored together with paired tests.

    python -m evaluation.compare BEFORE_DIR AFTER_DIR [--systems draft-only,merged] [--out table.md]

Each system's alt texts from both runs' ``samples.jsonl`` are scored in one pass against the
same references (the same tokenizer, METEOR jar, CIDEr document frequencies and bootstrap plan
as `alttext eval`), so "after − before" is a paired bootstrap difference with its interval and
one-sided p, exactly as the runner compares systems. The fragment share is added per run.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from evaluation import metrics as M
from evaluation import policy, stats

COLUMNS = ["BLEU-4", "METEOR", "ROUGE-L", "CIDEr"]


def _samples(folder: Path) -> dict[str, dict]:
    rows = [json.loads(line) for line in (folder / "samples.jsonl").read_text(encoding="utf-8").splitlines() if line]
    return {r["id"]: r for r in rows if "systems" in r}


def compare(before: Path, after: Path, systems: list[str], resamples: int = 1000, seed: int = 0) -> str:
    old, new = _samples(before), _samples(after)
    ids = [i for i in new if i in old]
    if not ids:
        raise ValueError("the two runs share no image")
    systems = [s for s in systems if s in next(iter(old.values()))["systems"] and s in new[ids[0]]["systems"]]
    references = [new[i]["references"] for i in ids]
    hyps = {}
    for s in systems:
        hyps[f"before {s}"] = [old[i]["systems"][s]["alt"] for i in ids]
        hyps[f"after {s}"] = [new[i]["systems"][s]["alt"] for i in ids]
    counts = stats.resample_counts(len(ids), resamples, seed)
    meteor = M.MeteorJar() if M.java_available() else None
    scored, _ = M.reference_metrics(hyps, references, counts, meteor)
    out = [f"Before: `{before}`; after: `{after}`; {len(ids)} images in both, bootstrap {resamples} resamples "
           f"(seed {seed}), 95% intervals.", "",
           "| system | metric | before | after | after − before [95% interval], one-sided p |", "|---|---|---|---|---|"]
    for s in systems:
        for name in COLUMNS:
            b, a = scored[f"before {s}"][name], scored[f"after {s}"][name]
            if b.skipped or a.skipped:
                continue
            test = stats.paired(a.value, b.value, a.resampled, b.resampled)
            ib, ia = stats.interval(b.resampled), stats.interval(a.resampled)
            iv = f" [{test['interval'][0]:+.3f}, {test['interval'][1]:+.3f}]" if test["interval"] else ""
            out.append(f"| {s} | {name} | {b.value:.3f} [{ib[0]:.3f}, {ib[1]:.3f}] | {a.value:.3f} "
                       f"[{ia[0]:.3f}, {ia[1]:.3f}] | {test['diff']:+.3f}{iv} p={test['p_value']:.3f} |")
        frag_b = np.mean([policy.fragment(h) for h in hyps[f"before {s}"]])
        frag_a = np.mean([policy.fragment(h) for h in hyps[f"after {s}"]])
        out.append(f"| {s} | fragments | {frag_b:.1%} | {frag_a:.1%} | |")
    return "\n".join(out) + "\n"


def main(
    before: Path, after: Path,
    systems: Annotated[str, typer.Option(help="Comma-separated systems to compare.")] = "draft-only,merged",
    out: Annotated[Path | None, typer.Option(help="Also write the table here.")] = None,
) -> None:
    table = compare(before, after, [s.strip() for s in systems.split(",") if s.strip()])
    typer.echo(table)
    if out:
        out.write_text(table, encoding="utf-8")


if __name__ == "__main__":
    typer.run(main)
