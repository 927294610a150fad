from __future__ import annotations

import numpy as np
import pytest

from evaluation import stats


def test_resample_plan_is_seeded_and_each_row_draws_n_images():
    a = stats.resample_counts(50, 100, seed=3)
    b = stats.resample_counts(50, 100, seed=3)
    assert a.shape == (100, 50) and (a.sum(axis=1) == 50).all()
    assert (a == b).all() and not (a == stats.resample_counts(50, 100, seed=4)).all()


def test_mean_interval_brackets_the_mean():
    rng = np.random.default_rng(0)
    x = rng.normal(0.5, 0.1, size=200)
    resampled = stats.weighted_mean(x, stats.resample_counts(200, 1000, 0))
    lo, hi = stats.interval(resampled)
    assert lo < x.mean() < hi and hi - lo < 0.05


def test_nan_entries_are_not_applicable():
    x = np.array([1.0, np.nan, 3.0])
    counts = np.array([[1, 1, 1], [0, 3, 0], [3, 0, 0]])
    out = stats.weighted_mean(x, counts)
    assert out[0] == 2.0 and np.isnan(out[1]) and out[2] == 1.0
    assert list(stats.weighted_max(x, counts)[[0, 2]]) == [3.0, 1.0]


def test_paired_test_separates_a_better_system_and_not_a_copy():
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 1, size=100)
    better = base + 0.1
    counts = stats.resample_counts(100, 500, 0)
    res_a, res_b = stats.weighted_mean(better, counts), stats.weighted_mean(base, counts)
    result = stats.paired(better.mean(), base.mean(), res_a, res_b)
    assert result["diff"] == pytest.approx(0.1) and result["p_value"] == 0.0
    assert result["interval"][0] == pytest.approx(0.1) and result["interval"][1] == pytest.approx(0.1)
    same = stats.paired(base.mean(), base.mean(), res_b, res_b)
    assert same["p_value"] == 1.0
    noisy = base + rng.normal(0, 0.3, size=100)
    res_n = stats.weighted_mean(noisy, counts)
    result = stats.paired(noisy.mean(), base.mean(), res_n, res_b)
    assert 0.0 <= result["p_value"] <= 1.0 and result["interval"][0] < result["diff"] < result["interval"][1]


def test_auroc_and_reliability():
    from evaluation.stats import auroc, reliability

    assert auroc([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert auroc([0.5, 0.6], [True, True]) is None  # no negatives: undefined
    table = reliability([0.1, 0.15, 0.9, 0.95], [False, True, True, True], bins=5)
    assert [(b["n"], b["accuracy"]) for b in table] == [(2, 0.5), (2, 1.0)]
