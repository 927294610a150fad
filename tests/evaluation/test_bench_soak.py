"""The soak (evaluation/bench_soak.py) end to end on the embedded default, briefly: RSS is sampled
over the whole load and the summary gives a slope and a verdict; the verdict itself is checked on
known series. Also: --device cuda stops with a clear message where CUDA is absent."""
from __future__ import annotations

import json
import os
import sys
import time

import pytest
import torch

from evaluation import bench_service, bench_soak


def test_a_short_soak_samples_rss_over_the_whole_load_and_gives_a_verdict(tmp_path):
    out = bench_soak.main(["--seconds", "6", "--clients", "2", "--every-s", "0.5", "--warm-s", "2",
                           "--out", str(tmp_path)])
    assert json.loads((tmp_path / "soak.json").read_text())["summary"] == out["summary"]
    samples, summary, load = out["samples"], out["summary"], out["load"]
    # Samples from the start of load to its end, none far apart, and the answers counted along the way.
    assert samples[0]["t_s"] == 0 and samples[-1]["t_s"] >= 6
    assert max(b["t_s"] - a["t_s"] for a, b in zip(samples, samples[1:])) < 3
    assert [s["answered"] for s in samples] == sorted(s["answered"] for s in samples)
    assert samples[-1]["answered"] == load["ok"] > 0 and load["statuses"] == {"200": load["ok"]}
    assert all(s["rss_mb"] > 50 for s in samples)  # the server's real process tree, model loaded
    assert isinstance(summary["slope_after_warm_mb_per_min"], float) and isinstance(summary["flat"], bool)
    assert isinstance(summary["anon_slope_after_warm_mb_per_min"], float)
    assert all(0 < s["anon_mb"] <= s["rss_mb"] for s in samples)
    assert summary["flat_threshold_mb_per_min"] >= bench_soak.FLAT_FLOOR_MB_PER_MIN
    assert summary["rss_start_mb"] == samples[0]["rss_mb"] and summary["rss_end_mb"] == samples[-1]["rss_mb"]
    assert 1.5 <= summary["warm_at_s"] <= 2.5
    row = bench_soak.line(out)
    assert row.startswith("| embedded default (offline) | 2 | 6 s |") and ("| yes |" in row or "| NO |" in row)


def test_the_verdict_calls_a_steady_server_flat_and_a_leaking_one_not():
    def series(mb_per_min: float, noise: float) -> list[dict]:
        return [{"t_s": t, "rss_mb": 1000 + mb_per_min * t / 60 + (noise if t % 10 else -noise), "answered": t * 4}
                for t in range(0, 301, 5)]

    steady = bench_soak.summarise(series(0.0, 4.0), 60)
    assert steady["flat"] and abs(steady["slope_after_warm_mb_per_min"]) < 1
    assert 0 < steady["slope_stderr_mb_per_min"] < 1
    assert steady["flat_threshold_mb_per_min"] == pytest.approx(5.0, abs=0.05)  # 0.5 % of ~1000 MB a minute
    leaking = bench_soak.summarise(series(12.0, 4.0), 60, upload_kb=128)
    assert not leaking["flat"] and leaking["slope_after_warm_mb_per_min"] == pytest.approx(12.0, abs=0.5)
    assert leaking["slope_last_half_mb_per_min"] == pytest.approx(12.0, abs=1.5)  # a leak keeps its pace
    assert leaking["growth_after_warm_mb"] == pytest.approx(48.0, abs=9)
    assert leaking["slope_if_every_upload_leaked_mb_per_min"] == pytest.approx(240 * 128 / 1024)
    assert leaking["would_catch_an_upload_leak"]  # 30 MB/min against a 5 MB/min threshold
    with pytest.raises(ValueError):
        bench_soak.summarise(series(0.0, 0.0)[:1], 60)


def test_cuda_absent_stops_both_benchmarks_before_anything_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    model = tmp_path / "model"
    with pytest.raises(SystemExit, match="--device cuda: CUDA is not available here"):
        bench_service.main(["--device", "cuda", "--tiny", "--model-dir", str(model), "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="--device cuda:1: CUDA is not available here"):
        bench_soak.main(["--model", "blip", "--device", "cuda:1", "--tiny", "--model-dir", str(model),
                         "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="not supported by the benchmark"):
        bench_service.main(["--device", "tpu", "--tiny", "--model-dir", str(model), "--out", str(tmp_path)])
    assert not model.exists() and not (tmp_path / "latest.json").exists() and not (tmp_path / "soak.json").exists()


def test_the_default_run_prints_a_bounded_plan_up_front(capsys):
    result = bench_service.main(["--plan"])
    text = capsys.readouterr().out
    plan = result["plan"]
    # 3 rounds of naive and service at 1, 4, 16, 64 clients and the embedded default at 4 and 16;
    # the bare model at 2 batch sizes x 2 thread counts in float32, and again in the service's
    # dtype where auto picks another (bfloat16 on a CPU with bf16 units), under two allocators;
    # then 6 pairs of the service and the bare model in turns.
    dtypes = 1 if bench_service.resolved_dtype("auto", "cpu") == "float32" else 2
    assert plan["http_loads"] == 3 * (4 + 4 + 2) + 6 and plan["per_round"]["bare"]["loads"] == 4 * dtypes * 2
    assert plan["paired"]["loads"] == 6 and 0 < plan["paired"]["estimate_s"] < plan["paired"]["ceiling_s"]
    assert 0 < plan["estimate_s"] < plan["ceiling_s"] < 6 * 3600
    assert text.startswith("plan: 3 rounds, 36 HTTP loads") and "in turns: 6 pairs" in text and "estimate" in text and "ceiling" in text


def test_a_model_that_fails_to_load_stops_the_start_at_once(tmp_path):
    # `alttext serve` stays up to report the failure on /ready: the start must not wait out its bound.
    from evaluation.bench_server import free_port, running

    port = free_port()
    cmd = [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    env = {**os.environ, "ALTTEXT_MODEL": str(tmp_path / "no-such-model"), "ALTTEXT_DATA_DIR": str(tmp_path / "data")}
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="model failed to load"):
        with running(cmd, ready_url=f"http://127.0.0.1:{port}/ready", log_path=tmp_path / "serve.log",
                     env=env, timeout_s=120):
            pass
    assert time.monotonic() - started < 60
