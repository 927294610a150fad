"""The embedded default's benchmark end to end on two photos: both configurations run in their
own processes and are reported. No timing is asserted (the benchmark prints ratios)."""
from __future__ import annotations

import json

import pytest

from evaluation import bench_offline

pytestmark = pytest.mark.slow


def test_the_offline_benchmark_runs_both_paths_and_writes_its_table(tmp_path):
    out = tmp_path / "offline.json"
    bench_offline.main(["--rounds", "1", "--images", "2", "--batch", "2", "--no-agreement", "--out", str(out)])
    result = json.loads(out.read_text())
    [run] = result["timing"]["runs"]
    for config in ("before", "after"):
        assert run[config]["images"] == 2 and run[config]["images_per_s"] > 0
        assert {"classifier", "detector", "ocr", "faces", "describe"} <= set(run[config]["component_cpu_ms"])
    assert {"ocr_gate", "faces_in_yuface_library"} <= set(run["after"]["component_cpu_ms"])
    assert result["timing"]["ratio_after_before"] == [run["ratio"]]
    assert "| after |" in out.with_suffix(".md").read_text()


def test_the_timing_photos_have_no_text():
    names = {p.stem for p in bench_offline.photos_without_text()}
    assert names and not names & {"000000122745", "000000226111"}
