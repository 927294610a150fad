"""Metric wiring: pycocoevalcap scores through our tokenizer, bootstrap and METEOR re-aggregation."""
from __future__ import annotations

import numpy as np
import pytest

from evaluation import metrics as M
from evaluation import stats
from tests.support.images import coco_references

needs_java = pytest.mark.skipif(not M.java_available(), reason="PTB tokenizer and METEOR need Java")

# One sentence per image: 8 COCO images plus two written here, all distinct.
SENTENCES = [refs[0] for _, refs in sorted(coco_references().items())] + [
    "A red double-decker bus drives past a stone church on a rainy day.",
    "Three children fly a yellow kite on a windy beach at sunset.",
]


@pytest.fixture(scope="module")
def scored():
    refs = [[s] for s in SENTENCES]
    shuffled = SENTENCES[3:] + SENTENCES[:3]
    counts = stats.resample_counts(len(SENTENCES), 200, seed=1)
    out, notes = M.reference_metrics({"identical": SENTENCES, "shuffled": shuffled, "empty": [""] * len(SENTENCES)},
                                     refs, counts)
    return out, notes


@needs_java
def test_identical_prediction_and_reference_score_at_the_maximum(scored):
    out, notes = scored
    assert notes["tokenizer"].startswith("PTB")
    identical = out["identical"]
    for name in M.BLEU + ["METEOR", "ROUGE-L"]:
        assert identical[name].value == pytest.approx(1.0, abs=1e-6), name
        assert np.allclose(identical[name].per_sample, 1.0, atol=1e-6), name
    assert identical["CIDEr"].value == pytest.approx(10.0, abs=1e-6)  # CIDEr-D's maximum (x10 scale)


@needs_java
def test_shuffled_pairing_scores_far_below_the_true_pairing(scored):
    out, _ = scored
    true, shuffled = out["identical"], out["shuffled"]
    assert shuffled["BLEU-4"].value < 0.1
    for name in ("BLEU-1", "METEOR", "ROUGE-L"):
        assert shuffled[name].value < 0.5 * true[name].value, name
    assert shuffled["CIDEr"].value < 0.05 * true["CIDEr"].value
    # The true pairing's whole interval sits above the shuffled one's.
    for name in M.REFERENCE_METRICS:
        assert stats.interval(true[name].resampled)[0] > stats.interval(shuffled[name].resampled)[1], name


@needs_java
def test_empty_outputs_score_zero(scored):
    out, _ = scored
    for name in M.REFERENCE_METRICS:
        assert out["empty"][name].value == pytest.approx(0.0, abs=1e-3), name


@needs_java
def test_corpus_metrics_are_recomputed_exactly_on_resamples(scored):
    out, _ = scored
    # BLEU and METEOR bootstrap re-aggregate sufficient statistics; METEOR's Python
    # aggregation matched the jar's own corpus score, or the method would be "mean".
    assert out["shuffled"]["METEOR"].method == "corpus"
    assert out["shuffled"]["BLEU-4"].method == "corpus"
    assert out["shuffled"]["CIDEr"].method == "mean"
    # The identity plan (every image once) reproduces the corpus value.
    ones = np.ones((1, len(SENTENCES)), dtype=np.int32)
    tokenized = M.ptb_tokenize(SENTENCES[3:] + SENTENCES[:3])
    bleu = M.bleu_metrics(tokenized, [[r] for r in M.ptb_tokenize(SENTENCES)], ones)
    assert bleu["BLEU-2"].resampled[0] == pytest.approx(out["shuffled"]["BLEU-2"].value)


def test_meteor_statistics_re_aggregate_like_the_jar():
    # Two images, stats as the jar prints them; the second is a perfect match (its chunk is not summed).
    stats_lines = np.array([
        [7, 5, 1, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 2, 2, 3],
        [3, 3, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 3, 3],
    ], dtype=float)
    per_image = M.meteor_from_stats(stats_lines)
    assert per_image[0] == pytest.approx(0.1832886332, abs=1e-9)  # the jar's answer for this line
    assert per_image[1] == pytest.approx(1.0 * (1 - 0))  # identical: no fragmentation penalty
    assert M.meteor_aggregable(stats_lines)[1, 20] == 0


@needs_java
def test_tokenizer_keeps_lines_aligned_with_odd_separators():
    texts = ["A dog,\nrunning!", "", "line\u2028separator", "carriage\rreturn", "next\x85line", ""]
    tokens = M.ptb_tokenize(texts)
    assert tokens == ["a dog running", "", "line separator", "carriage return", "next line", ""]


def test_python_tokenizer_stands_in_without_java():
    assert M.simple_tokenize(["A dog's ball, thrown!", "", "Two\u2028cats."]) == ["a dog's ball thrown", "", "two cats"]


def test_policy_metrics_aggregate_shares_and_skip_what_does_not_apply():
    from evaluation import policy

    rows = [policy.values(alt, cap, max_chars=20, needs_review=None)
            for alt, cap in [("Image of a dog", None), ("", None), ("A very long description of a cat", None)]]
    out = M.policy_metrics(rows, stats.resample_counts(3, 50, 0))
    assert out["banned_opener"].value == pytest.approx(1 / 3)
    assert out["empty_alt"].value == pytest.approx(1 / 3)
    assert out["within_budget"].value == pytest.approx(2 / 3)
    assert out["length_max"].value == 32
    assert out["caption_duplicate"].skipped and out["needs_review"].skipped
