"""The CPU speed-up benchmark end to end on a tiny sighted BLIP: every variant drafts, and the
agreement measures compare like with like. No timing is asserted (see the benchmark)."""
from __future__ import annotations

import json

from evaluation import bench_speedups


def test_the_speedups_benchmark_measures_speed_and_agreement(tmp_path):
    out = tmp_path / "speedups.json"
    bench_speedups.main(["--tiny", "--model-dir", str(tmp_path / "model"), "--out", str(out), "--rounds", "1",
                         "--images", "3", "--batch", "3", "--tokens", "3"])
    result = json.loads(out.read_text())
    assert json.loads((tmp_path / "model" / "bench-model.json").read_text()) == {"tiny": True, "sighted": True}
    # float32 fed its own tokens picks them again: the teacher-forced comparison is sound.
    assert result["reference_self_check"] == 1.0
    for variant in ("bfloat16", "int8_dynamic"):
        rows = result["agreement_per_image"][variant]
        assert len(rows) == 3
        for row in rows:
            assert 0.9 < row["pooled_cosine"] <= 1.0001 and 0.9 < row["patch_cosine_mean"] <= 1.0001
            assert 0.0 <= row["top1_agreement"] <= 1.0
            assert 0.0 < row["logit_rel_error_mean"] <= row["logit_rel_error_max"] < 1.0
        summary = result["summary"][variant]
        assert summary["speed_vs_float32"]["median"] > 0 and 0.0 <= summary["exact_agreement"]["median"] <= 1.0
    [round_] = result["rounds"]
    assert all(len(round_[v]["texts"]) == 3 for v in bench_speedups.VARIANTS)
    assert result["summary"]["float32"]["exact_agreement"]["median"] == 1.0


def test_the_pictures_are_distinct():
    shown = bench_speedups.pictures(16)
    assert len({image.tobytes() for image in shown}) == 16
    assert [image.size for image in bench_speedups.pictures(16)] == [image.size for image in shown]  # same every run
