"""Bootstrap over images: confidence intervals and paired tests between systems.

One resampling plan per run: ``counts[b, i]`` is how often image ``i`` is drawn in
resample ``b`` (``n`` draws with replacement, fixed seed). Every metric of every system
is evaluated on the same plan, so a difference between two systems is paired: both
are scored on the same resampled images.

A metric gives, for the plan, one value per resample:
- corpus metrics (BLEU, METEOR) recompute the corpus score from summed per-image
  statistics, weighted by ``counts`` (exact, no re-scoring);
- mean metrics (ROUGE-L, CIDEr with document frequencies fixed on the full set,
  CLIPScore, policy shares, mean length) take the weighted mean of per-image scores;
- max length takes the maximum over the drawn images.
"""
from __future__ import annotations

import numpy as np


def resample_counts(n: int, resamples: int, seed: int) -> np.ndarray:
    """(resamples, n) draw counts; each row sums to n."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((resamples, n), dtype=np.int32)
    if n == 0:
        return counts
    draws = rng.integers(0, n, size=(resamples, n))
    for b in range(resamples):
        counts[b] = np.bincount(draws[b], minlength=n)
    return counts


def weighted_mean(per_sample: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Per-resample mean over applicable images (NaN entries in per_sample are left out)."""
    per_sample = np.asarray(per_sample, dtype=np.float64)
    mask = ~np.isnan(per_sample)
    values = np.where(mask, per_sample, 0.0)
    weights = counts @ mask.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weights > 0, (counts @ values) / np.where(weights > 0, weights, 1), np.nan)


def weighted_max(per_sample: np.ndarray, counts: np.ndarray) -> np.ndarray:
    per_sample = np.asarray(per_sample, dtype=np.float64)
    drawn = np.where((counts > 0) & ~np.isnan(per_sample)[None, :], per_sample[None, :], -np.inf)
    out = drawn.max(axis=1) if drawn.size else np.full(counts.shape[0], np.nan)
    return np.where(np.isinf(out), np.nan, out)


def interval(resampled: np.ndarray, level: float = 0.95) -> list[float] | None:
    """Percentile interval; None when no resample gave a value."""
    resampled = np.asarray(resampled, dtype=np.float64)
    resampled = resampled[~np.isnan(resampled)]
    if resampled.size == 0:
        return None
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(resampled, [tail, 100 - tail])
    return [float(lo), float(hi)]


def paired(
    value_a: float, value_b: float, resampled_a: np.ndarray, resampled_b: np.ndarray, level: float = 0.95
) -> dict:
    """Difference a - b with its interval and a one-sided paired bootstrap p-value: the share of
    resamples in which the difference is zero or has the sign opposite to the observed one
    (Koehn 2004). An observed difference of 0 gives p = 1."""
    diff = float(value_a - value_b)
    deltas = np.asarray(resampled_a, dtype=np.float64) - np.asarray(resampled_b, dtype=np.float64)
    deltas = deltas[~np.isnan(deltas)]
    if deltas.size == 0:
        return {"diff": diff, "interval": None, "p_value": None}
    if diff > 0:
        p = float(np.mean(deltas <= 0))
    elif diff < 0:
        p = float(np.mean(deltas >= 0))
    else:
        p = 1.0
    return {"diff": diff, "interval": interval(deltas, level), "p_value": p}


def auroc(scores, positives) -> float | None:
    """Area under the ROC curve: the chance that a random positive scores above a random
    negative (ties count half). None when either class is empty."""
    scores = np.asarray(scores, dtype=float)
    positives = np.asarray(positives, dtype=bool)
    pos, neg = scores[positives], scores[~positives]
    if len(pos) == 0 or len(neg) == 0:
        return None
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def reliability(scores, positives, bins: int = 5) -> list[dict]:
    """Reliability table: per equal-width confidence bin, how many, mean confidence and the
    share that is actually right. Empty bins are left out."""
    scores = np.asarray(scores, dtype=float)
    positives = np.asarray(positives, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    out = []
    for k in range(bins):
        hi_ok = scores <= edges[k + 1] if k == bins - 1 else scores < edges[k + 1]
        mask = (scores >= edges[k]) & hi_ok
        if mask.any():
            out.append({"low": round(float(edges[k]), 3), "high": round(float(edges[k + 1]), 3),
                        "n": int(mask.sum()), "confidence": round(float(scores[mask].mean()), 4),
                        "accuracy": round(float(positives[mask].mean()), 4)})
    return out
