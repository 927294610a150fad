"""The service benchmark end to end on a tiny BLIP: every system starts, takes load and is
reported; the JSON has the keys the issue asks for. No timing is asserted (see the benchmark)."""
from __future__ import annotations

import json

from evaluation import bench_service


def test_the_benchmark_runs_every_system_and_writes_its_ratios(tmp_path):
    out = tmp_path / "bench"
    bench_service.main(["--tiny", "--model-dir", str(tmp_path / "model"), "--out", str(out), "--rounds", "1",
                        "--clients", "1,2", "--requests", "3", "--duration-s", "5", "--tokens", "4",
                        "--bare-batch-sizes", "1,2", "--bare-threads", "1", "--bare-seconds", "0.2",
                        "--offline-clients", "1", "--service-dtype", "auto,float32",
                        "--paired-slices", "2", "--paired-seconds", "0.5"])
    result = json.loads((out / "latest.json").read_text())
    for key in ("throughput_vs_naive_16", "p95_vs_naive_16", "service_vs_bare_model", "offline_images_per_s"):
        assert result[key] > 0, key
        assert result["summary"][key]["min"] <= result[key] <= result["summary"][key]["max"]
    assert {"cpu", "cores", "torch", "load_avg_at_start", "load_avg_at_end"} <= set(result["machine"])
    [round_] = result["per_round"]
    for kind in ("naive", "service"):
        for clients in ("1", "2"):
            load = round_[kind][clients]
            assert load["statuses"] == {"200": load["ok"]} and load["ok"] >= 3, (kind, load)
            assert load["p50_s"] <= load["p95_s"] <= load["p99_s"] and load["peak_rss_mb"] > 0
    # Every image got exactly the forced number of new tokens, so compute is the same per image.
    assert {c["new_tokens"] for c in round_["bare"]["configs"]} == {4}
    # ... under the C library's allocator and the service's (ALTTEXT_KEEP_FREED_MEMORY), each in its own process
    assert sorted((c["allocator"], c["dtype"], c["threads"], c["batch"]) for c in round_["bare"]["configs"]) == sorted(
        (a, d, 1, b) for a in ("default", "keep_freed") for d in {"float32", bench_service.resolved_dtype("auto", "cpu")}
        for b in (1, 2))
    # Every system's dtype is recorded: the naive app float32, the service what auto picks here
    # (as /ready reports it), service@float32 float32; baseline B sweeps float32 and the service's.
    auto = bench_service.resolved_dtype("auto", "cpu")
    assert round_["dtypes"] | {"bare": None} == {"naive": "float32", "service": auto, "service@float32": "float32",
                                                 "offline": None, "bare": None}
    assert {c["dtype"] for c in round_["bare"]["configs"]} == {"float32", auto} == set(result["dtypes"]["bare"])
    assert round_["bare"]["best"]["images_per_s"] == max(c["images_per_s"] for c in round_["bare"]["configs"])
    assert round_["service@float32"]["2"]["ok"] >= 3
    assert result["summary"]["service_float32_vs_naive_16"]["median"] > 0
    assert round_["offline"]["1"]["ok"] >= 3
    # The service and the bare model's best configuration took turns (ABBA), and the headline
    # ratio against the bare model is the median of those pairs; the rounds' ratio is kept beside.
    paired = result["paired"]
    best = round_["bare"]["best"]
    assert paired["bare_config"] == {k: best[k] for k in ("dtype", "batch", "threads", "allocator")}
    assert paired["clients"] == 2
    assert [p["order"] for p in paired["pairs"]] == [["service", "bare"], ["bare", "service"]]
    for pair in paired["pairs"]:
        assert pair["service"]["ok"] >= 1 and pair["service"]["statuses"] == {"200": pair["service"]["ok"]}
        assert pair["bare"]["new_tokens"] == 4 and pair["bare"]["images"] >= 2 * best["batch"]
        assert pair["bare"]["minor_faults_per_image"] >= 0 and pair["service"]["server_minor_faults_per_image"] >= 0
        assert pair["ratio"] == pair["service"]["images_per_s"] / pair["bare"]["images_per_s"]
    assert result["service_vs_bare_model"] == paired["ratio"]["median"] == result["summary"]["service_vs_bare_model"]["median"]
    assert result["summary"]["service_vs_bare_model_rounds"]["median"] > 0
    table = (out / "latest.md").read_text()
    assert "in turns" in table and "| 2 | bare, service |" in table
    assert f"| service | {auto} | 2 |" in table and "| service@float32 | float32 | 2 |" in table
    assert "throughput_vs_naive_16" in table and "service_float32_vs_naive_16" in table


def test_clients_empty_measures_the_embedded_default_alone(tmp_path, monkeypatch):
    """``--clients ''``: no BLIP model is built and no naive, service or bare-model run starts;
    the offline loads are summarised and tabled on their own."""
    started = []
    load = {"images_per_s": 9.0, "p50_s": 0.5, "p95_s": 1.0, "p99_s": 1.2, "peak_rss_mb": 900.0, "ok": 10}
    monkeypatch.setattr(bench_service, "build_model", lambda *a, **k: started.append("build"))
    monkeypatch.setattr(bench_service, "run_bare", lambda *a, **k: started.append("bare"))
    monkeypatch.setattr(bench_service, "run_http", lambda kind, args, model_dir, work, counts:
                        started.append(kind) or ({str(n): dict(load, images_per_s=load["images_per_s"] + n)
                                                  for n in counts}, None))
    out = tmp_path / "bench"
    result = bench_service.main(["--clients", "", "--offline-clients", "4,16", "--rounds", "2", "--out", str(out)])
    assert started == ["offline", "offline"]
    assert result["offline_images_per_s"] == 25.0
    assert "throughput_vs_naive_16" not in result["summary"]
    assert "| offline | - | 16 | 25.00" in (out / "offline_service.md").read_text()  # no dtype: not a torch model
    assert not (out / "latest.json").exists()  # the full run's results stay
