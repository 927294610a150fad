"""CLIPScore / RefCLIPScore wiring with a tiny random CLIP built in code (no download)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from evaluation.clipscore import (
    PREFIX,
    SKIPPED_NO_MODEL,
    ClipScorer,
    W,
    configured_path,
)
from tests.support.tiny_clip import build_tiny_clip


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    return ClipScorer(build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny-clip"), batch_size=2)


@pytest.fixture(scope="module")
def images():
    return [Image.new("RGB", (48, 32), colour) for colour in ("red", "navy", "olive")] + [
        Image.radial_gradient("L").convert("RGB")]


def test_embeddings_are_unit_vectors_and_batching_does_not_change_them(scorer, images):
    emb = scorer.image_embeddings(images)
    assert emb.shape == (4, 8)
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    one_by_one = np.concatenate([scorer.image_embeddings([im]) for im in images])
    assert np.allclose(emb, one_by_one, atol=1e-5)
    text = scorer.text_embeddings(["a red square", "a red square", "two dogs"])
    assert np.allclose(text[0], text[1]) and not np.allclose(text[0], text[2])


def test_clip_score_is_the_clipped_scaled_cosine(scorer, images):
    emb = scorer.image_embeddings(images)
    candidates = ["a red square", "a blue field", "", "rings of grey"]
    scores = scorer.clip_scores(emb, candidates)
    text = scorer.text_embeddings([PREFIX + c for c in candidates])
    expected = W * np.maximum(np.sum(text * emb, axis=1), 0)
    expected[2] = 0.0  # empty alt scores 0
    assert np.allclose(scores, expected, atol=1e-6)
    assert ((scores >= 0) & (scores <= W)).all()


def test_ref_clip_score_is_the_harmonic_mean_with_reference_similarity(scorer, images):
    emb = scorer.image_embeddings(images)
    candidates = ["a red square", "a blue field", "", "rings of grey"]
    refs = [["a red square", "red"], ["something else"], ["an empty alt"], []]
    clip_s = np.array([1.0, 0.5, 0.0, 0.7])  # given, so the harmonic mean is checked on its own
    out = scorer.ref_clip_scores(clip_s, candidates, refs)
    assert out[0] == pytest.approx(2 * 1.0 * 1.0 / 2.0, abs=1e-5)  # a reference equals the candidate: cos 1
    cand, ref = scorer.text_embeddings(["a blue field", "something else"])
    sim = max(float(cand @ ref), 0.0)
    assert out[1] == pytest.approx(0.0 if sim == 0 else 2 * 0.5 * sim / (0.5 + sim), abs=1e-5)
    assert out[2] == 0.0 and np.isnan(out[3])
    assert scorer.clip_scores(emb, candidates).shape == (4,)


def test_without_a_configured_model_clip_metrics_say_why(monkeypatch):
    monkeypatch.delenv("ALTTEXT_CLIP_MODEL", raising=False)
    assert configured_path() is None
    assert "ALTTEXT_CLIP_MODEL" in SKIPPED_NO_MODEL
    with pytest.raises(FileNotFoundError):
        ClipScorer("/nonexistent/clip")
