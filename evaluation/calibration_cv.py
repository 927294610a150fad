"""Held-out check of the offline drafter's confidence calibration (k-fold cross-validation).

The per-thing logistic in ``models.offline.compose`` (bias, detector score, log box area ->
chance that people describing the photo name the thing) was fitted on COCO dev, so the AUROC an
``alttext eval`` run reports on COCO dev is in-sample. Here the images of a committed run are
split into k folds; for each fold the three numbers are refitted on the things detected in the
other folds (target: a reference names the thing, synonyms per ``evaluation.mentions``), and the
held-out fold's drafts are re-scored with them. The drafts' texts are held as drafted (which
things a draft names is kept); only the confidence is recomputed, as compose does: the product of
the named things' chances, capped at MAX_CONFIDENCE (and at OUT_OF_DOMAIN_CONFIDENCE for maps,
drawings and the like). Drafts come from the evaluation draft cache.

    python -m evaluation.calibration_cv evaluation/results/coco-dev [--folds 5] [--seed 0]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path

import numpy as np

from evaluation import stats
from evaluation.mentions import mentions


def fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3, steps: int = 50) -> np.ndarray:
    """Weights (bias first) of a logistic regression by Newton's method, with a small ridge
    penalty so that a fold without one class still gives finite numbers."""
    x1 = np.column_stack([np.ones(len(x)), x])
    w = np.zeros(x1.shape[1])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(x1 @ w)))
        grad = x1.T @ (p - y) + ridge * w
        hess = (x1 * (p * (1 - p))[:, None]).T @ x1 + ridge * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return w


def _area(draft, name: str) -> float:
    areas = [(d.box[2] - d.box[0]) * (d.box[3] - d.box[1]) for d in draft.evidence.detections if d.name == name]
    return max(areas, default=0.05)


def _features(draft, label) -> list[float]:
    return [label.score, math.log(_area(draft, label.name) + 1e-3)]


def _confidence(draft, named: list[str], w: np.ndarray) -> float:
    from models.draft import OUT_OF_DOMAIN
    from models.offline.compose import MAX_CONFIDENCE, OUT_OF_DOMAIN_CONFIDENCE

    from models.draft import Label

    objects = list(draft.evidence.objects)
    if draft.evidence.faces and not any(o.name == "person" for o in objects):
        objects.insert(0, Label(name="person", score=0.6, count=draft.evidence.faces))  # as compose does
    conf = 1.0
    for label in objects:
        if label.name in named:
            conf *= 1.0 / (1.0 + math.exp(-(w[0] + w[1:] @ np.array(_features(draft, label)))))
    if draft.evidence.kind in OUT_OF_DOMAIN:
        conf = min(conf, OUT_OF_DOMAIN_CONFIDENCE)
    return min(MAX_CONFIDENCE, conf)


def load(run_dir: Path) -> list[tuple[dict, object]]:
    """(sample row, cached draft) for every image of a committed run whose draft is cached."""
    from evaluation.cache import DraftCache, model_fingerprint
    from models.draft import ModelRef

    results = json.loads((run_dir / "results.json").read_text())
    info = results["versions"]["models"]["offline"]
    fingerprint = model_fingerprint(ModelRef(id=info["id"], revision=info["revision"], backend=info["backend"]))
    rows = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines() if line]
    keys = [hashlib.sha256(f"{r['sha256']}\n{fingerprint}".encode()).hexdigest() for r in rows]
    cache = DraftCache.open()
    try:
        found = cache.get_many(keys)
    finally:
        cache.close()
    return [(r, found[k]) for r, k in zip(rows, keys) if k in found]


def cross_validate(pairs, folds: int = 5, seed: int = 0) -> dict:
    from evaluation.runner import _named_classes
    from models.offline.compose import _CALIBRATION

    items = []
    for row, draft in pairs:
        if not row["references"]:
            continue
        things = [(_features(draft, o), float(mentions(o.name, row["references"]))) for o in draft.evidence.objects]
        named = _named_classes(draft)
        right = all(mentions(n, row["references"]) for n in named) if named else None
        items.append((draft, things, named, right))
    order = np.random.default_rng(seed).permutation(len(items))
    fold_of = np.empty(len(items), dtype=int)
    fold_of[order] = np.arange(len(items)) % folds

    def fit(idx) -> np.ndarray:
        x = [f for i in idx for f, _ in items[i][1]]
        y = [t for i in idx for _, t in items[i][1]]
        return fit_logistic(np.array(x), np.array(y))

    scored = [i for i, it in enumerate(items) if it[2]]  # drafts that name a detected thing
    right = [items[i][3] for i in scored]
    committed = np.array(_CALIBRATION)
    all_fit = fit(range(len(items)))
    held = {}
    fold_weights = []
    for k in range(folds):
        w = fit([i for i in range(len(items)) if fold_of[i] != k])
        fold_weights.append([round(float(v), 3) for v in w])
        for i in scored:
            if fold_of[i] == k:
                held[i] = _confidence(items[i][0], items[i][2], w)
    conf_held = [held[i] for i in scored]
    conf_committed = [_confidence(items[i][0], items[i][2], committed) for i in scored]
    conf_refit = [_confidence(items[i][0], items[i][2], all_fit) for i in scored]
    stored = [items[i][0].confidence for i in scored]
    return {
        "images": len(items), "drafts_scored": len(scored), "positives": int(sum(right)), "folds": folds,
        "seed": seed,
        "target": "every thing the draft names is named by a reference",
        "auroc_stored_confidence": stats.auroc(stored, right),
        "auroc_in_sample_committed_coefficients": stats.auroc(conf_committed, right),
        "auroc_in_sample_refit_all": stats.auroc(conf_refit, right),
        "auroc_held_out": stats.auroc(conf_held, right),
        "reconstruction_matches_stored": int(sum(abs(a - b) < 0.002 for a, b in zip(conf_committed, stored))),
        "committed_coefficients": [float(v) for v in committed],
        "refit_all_coefficients": [round(float(v), 3) for v in all_fit],
        "fold_coefficients": fold_weights,
        "reliability_held_out": stats.reliability(conf_held, right),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a committed COCO eval run folder (results.json, samples.jsonl)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    result = cross_validate(load(args.run), args.folds, args.seed)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
