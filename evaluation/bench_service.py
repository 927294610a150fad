"""Service throughput and latency against what a user would write instead, side by side.

    .venv/bin/python -m evaluation.bench_service                      # full: 3 rounds, 1/4/16/64 clients
    .venv/bin/python -m evaluation.bench_service --rounds 2 --clients 1,16 --duration-s 20   # a few minutes

Model: BLIP-base with random weights built from its config (``BlipForConditionalGeneration(
BlipConfig())``, nothing downloaded), saved once under runs/bench/. Its [SEP] and eos logits are
pushed down so every image gets exactly ``--tokens`` new tokens (greedy): compute is real and
the same per image for every system. Systems, each alone on the machine, interleaved in
``--rounds`` rounds (the order rotates per round):

- ``naive`` (baseline A): a plain FastAPI sync endpoint calling ``generate`` per request
  (evaluation/bench_naive_app.py), under uvicorn on 127.0.0.1;
- ``service``: ``alttext serve`` on the same model directory, result cache off, in its default
  dtype (``--service-dtype auto``: what users get; bfloat16 on a CPU with bf16 units, see
  ``models.transformers_backend.pick_dtype``). ``--service-dtype auto,float32`` adds
  ``service@float32``, the service in the naive app's float32: the scheduling-only ratio;
- ``bare`` (baseline B): the bare model's ``generate`` on pre-decoded tensors at each batch
  size, thread count and dtype tried (float32 and each service dtype), no HTTP; its best
  images/s counts;
- ``offline``: ``alttext serve`` on the embedded default drafter at each ``--offline-clients``.

HTTP loads are closed loops of N clients on 127.0.0.1 (aiohttp, one process) sending distinct
JPEGs (shipped test photos with a unique trailing tag, so no cache can answer), each load
bounded by ``--requests`` started and ``--duration-s`` seconds; requests in flight at the bound
are waited for and counted. The load generator runs on the same cores, which costs every
system alike. Ratios are per round, reported as the median with min and max. The naive app
stays in float32 (what tutorials write); every system's dtype is recorded. Writes
``latest.json`` and ``latest.md`` to ``--out`` (default evaluation/results/bench).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from evaluation.bench_paired import BARE_SLICE_SPARE_S, READY_S, BareTurns, generate_for, in_turns, use_allocator
from evaluation.bench_photos import photo, photos
from evaluation.bench_server import free_port, rss_kb, running

ROOT = Path(__file__).resolve().parents[1]
ALTTEXT = str(Path(sys.executable).with_name("alttext"))
SEP, EOS = 102, 2  # BLIP's text config: generate() stops on [SEP]; eos names an unused token

DRAIN_S = 180.0  # the most a load waits for requests in flight at its end (bounds every load)
START_S = 300.0  # the most a server gets to say it is ready
BARE_S = 900.0  # the most one round of the bare model may take, per allocator
PAIRED_DRAIN_S = 60.0  # a paired service slice's drain: 16 requests in flight take about 8 s here
TARGETS = {"throughput_vs_naive_16": 1.3, "p95_vs_naive_16": 1.0, "service_vs_bare_model": 0.9,
           "offline_images_per_s": 20.0}


# --- the model -------------------------------------------------------------------------------

def build_model(path: Path, *, tiny: bool = False, sighted: bool = False) -> Path:
    """Save a BLIP captioner with random weights (BLIP-base, or a tiny one for tests) and a
    BERT-style tokenizer to ``path``, once. Nothing is downloaded.

    ``sighted``: draw the vision encoder's weights at the text decoder's spread (std 0.02).
    ``BlipConfig()`` initialises the vision encoder at std 1e-10, so its output is about 1e-6
    whatever the image and every image gets the same caption; the compute is the same either
    way, but only a sighted model's embeddings and text depend on the image (bench_speedups)."""
    marker = path / "bench-model.json"
    wanted = {"tiny": tiny} | ({"sighted": True} if sighted else {})
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        return path
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessorPil, BlipProcessor

    if tiny:
        small = dict(hidden_size=32, intermediate_size=64, num_attention_heads=2, num_hidden_layers=2)
        vision = dict(small, image_size=64, patch_size=16)
        config = BlipConfig(text_config=dict(small, vocab_size=30524),
                            vision_config=vision | ({"initializer_range": 0.02} if sighted else {}), projection_dim=32)
    else:
        config = BlipConfig(vision_config={"initializer_range": 0.02} if sighted else None)
    torch.manual_seed(0)
    model = BlipForConditionalGeneration(config).eval()
    with torch.no_grad():  # never end early: every image costs exactly the forced token count
        model.text_decoder.cls.predictions.decoder.bias[[SEP, EOS]] = -1e4
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    vocab = {f"w{i}": i for i in range(config.text_config.vocab_size)}
    for i, word in {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 30522: "[DEC]"}.items():
        del vocab[f"w{i}"]
        vocab[word] = i
    tokenizer = BertTokenizer(vocab=vocab, bos_token="[DEC]")
    size = config.vision_config.image_size
    BlipProcessor(image_processor=BlipImageProcessorPil(size={"height": size, "width": size}),
                  tokenizer=tokenizer).save_pretrained(path)
    marker.write_text(json.dumps(wanted))
    return path


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """The model options every BLIP benchmark takes (bench_service, bench_threads, bench_speedups)."""
    parser.add_argument("--tokens", type=int, default=10, help="new tokens generated per image")
    parser.add_argument("--tiny", action="store_true", help="a tiny BLIP instead of BLIP-base (tests)")
    parser.add_argument("--model-dir", type=Path, default=None)


def model_dir_of(args: argparse.Namespace) -> Path:
    """--model-dir, else the random-weight BLIP saved under runs/bench/ (built on first use)."""
    return args.model_dir or ROOT / "runs" / "bench" / ("blip-tiny-random" if args.tiny else "blip-base-random")


def measured_apart(module: str, *args: str, timeout_s: float = 1800) -> object:
    """Run ``python -m module args`` for one measurement in a process of its own (thread pools,
    allocator and caches start clean) and return the JSON it prints on its last line. A failed run
    raises with the end of its stderr, which says why."""
    out = subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout_s)
    if out.returncode:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def require_device(device: str) -> None:
    """Stop with a clear message, before any model or server starts, when ``device`` cannot run here."""
    if device == "cpu":
        return
    import torch

    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise SystemExit(f"--device {device}: CUDA is not available here (torch {torch.__version__}, CUDA build "
                             f"{torch.version.cuda or 'none'}). Run on a machine with an NVIDIA GPU and a CUDA build "
                             "of torch, or use --device cpu.")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise SystemExit(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) here.")
        return
    raise SystemExit(f"--device {device}: not supported by the benchmark; use cpu or cuda[:N].")


# --- baseline B: the bare model --------------------------------------------------------------

def bare(model_dir: str, tokens: int, batch_sizes: list[int], threads: list[int], seconds: float,
         device: str, dtypes: list[str] = ("float32",), allocator: str = "default") -> list[dict]:
    """images/s of generate() on pre-decoded tensors, per (dtype, batch size, threads), in this
    process with ``allocator`` (bench_paired.use_allocator)."""
    import io

    use_allocator(allocator)

    import torch
    from PIL import Image
    from transformers import BlipForConditionalGeneration, BlipProcessor

    processor = BlipProcessor.from_pretrained(model_dir)
    pictures = [Image.open(io.BytesIO(b)).convert("RGB") for b in photos(max(batch_sizes))]
    rows = []
    for dtype in dtypes:
        model = BlipForConditionalGeneration.from_pretrained(model_dir, dtype=getattr(torch, dtype)).to(device).eval()
        rows += [r | {"allocator": allocator} for r in
                 _bare_rows(model, processor, pictures, tokens, batch_sizes, threads, seconds, device, dtype)]
        del model
    return rows


def _bare_rows(model, processor, pictures, tokens, batch_sizes, threads, seconds, device, dtype) -> list[dict]:
    import torch

    rows = []
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for batch in batch_sizes:
            pixels = processor(images=pictures[:batch], return_tensors="pt")["pixel_values"].to(device, model.dtype)
            with torch.inference_mode():
                model.generate(pixel_values=pixels, max_new_tokens=tokens)  # warm
                timed = generate_for(model, pixels, tokens, seconds, device)
            rows.append({"dtype": dtype, "threads": n_threads, "batch": batch, "images_per_s": timed["images_per_s"],
                         "new_tokens": timed["new_tokens"]})
    return rows


def run_bare(args, model_dir: Path) -> dict:
    """Baseline B: every configuration, a fresh process per allocator (the policy is process-wide)."""
    rows = []
    for allocator in bare_allocators(args):
        rows += measured_apart("evaluation.bench_service", "--bare-only", "--model-dir", str(model_dir),
                               "--tokens", str(args.tokens), "--bare-batch-sizes", args.bare_batch_sizes,
                               "--bare-threads", args.bare_threads, "--bare-seconds", str(args.bare_seconds),
                               "--device", args.device, "--bare-dtypes", ",".join(bare_dtypes(args)),
                               "--bare-allocators", allocator, timeout_s=BARE_S)
    best = max(rows, key=lambda r: r["images_per_s"])
    by_dtype = {d: max((r for r in rows if r["dtype"] == d), key=lambda r: r["images_per_s"]) for d in {r["dtype"] for r in rows}}
    return {"configs": rows, "best": best, "best_by_dtype": by_dtype}


def service_dtypes(args) -> list[str]:
    """The dtypes the service runs in, as asked (auto, float32, ...): the first is the headline."""
    return [d.strip() for d in args.service_dtype.split(",") if d.strip()] or ["auto"]


def resolved_dtype(dtype: str, device: str) -> str:
    """What the service's "auto" (or a named dtype) is on ``device`` here, as pick_dtype decides."""
    from models.transformers_backend import pick_dtype

    return str(pick_dtype(dtype, device)).removeprefix("torch.")


def bare_allocators(args) -> list[str]:
    return [a.strip() for a in args.bare_allocators.split(",") if a.strip()]


def bare_dtypes(args) -> list[str]:
    """float32 (the naive app's) and each dtype the service runs in: baseline B is the best of them."""
    dtypes = ["float32"]
    for d in service_dtypes(args):
        if (r := resolved_dtype(d, args.device)) not in dtypes:
            dtypes.append(r)
    return dtypes


def service_kind(dtype: str, index: int) -> str:
    """The headline service is "service"; each further dtype asked for is "service@DTYPE"."""
    return "service" if index == 0 else f"service@{dtype}"


# --- servers and load ------------------------------------------------------------------------

@contextmanager
def server(kind: str, model_dir: Path, tokens: int, work: Path, device: str, *, trace_memory: Path | None = None,
           dtype: str = "auto"):
    """(base URL, upload path, pid) of a started server of ``kind``: naive, service or offline.
    ``trace_memory``: run `alttext serve` under tracemalloc (evaluation/bench_traced.py), which
    writes its growth report there. ``dtype``: the service's ALTTEXT_DTYPE (the naive app is
    always float32)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if kind == "naive":
        env |= {"BENCH_MODEL_DIR": str(model_dir), "BENCH_TOKENS": str(tokens), "BENCH_DEVICE": device}
        cmd = [sys.executable, "-m", "uvicorn", "evaluation.bench_naive_app:app", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning"]
        route = "/caption"
    else:
        data = Path(tempfile.mkdtemp(prefix=f"bench-{kind}-", dir=work))
        env |= {"ALTTEXT_DATA_DIR": str(data), "ALTTEXT_CACHE": "false", "ALTTEXT_LOG_FORMAT": "text",
                "ALTTEXT_REQUEST_TIMEOUT_S": "3600", "ALTTEXT_QUEUE_SIZE": "1024"}
        if kind == "service":
            env |= {"ALTTEXT_MODEL": str(model_dir), "ALTTEXT_GENERATION_MAX_NEW_TOKENS": str(tokens),
                    "ALTTEXT_GENERATION_NO_REPEAT_NGRAM_SIZE": "0", "ALTTEXT_DEVICE": device, "ALTTEXT_DTYPE": dtype}
        else:
            env["ALTTEXT_MODEL"] = "offline"
        cmd = [ALTTEXT, "serve", "--port", str(port)]
        if trace_memory is not None:
            cmd = [sys.executable, "-m", "evaluation.bench_traced", str(trace_memory), "serve", "--port", str(port)]
        route = "/v1/alt-text"
    with running(cmd, ready_url=f"http://127.0.0.1:{port}/ready", log_path=work / f"{kind}-{port}.log", env=env,
                 cwd=ROOT, what=f"{kind} server", timeout_s=START_S) as proc:
        yield f"http://127.0.0.1:{port}{route}", proc.pid


def _pct(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))]


def load(url: str, pid: int, clients: int, requests: int, duration_s: float, *, drain_s: float = DRAIN_S,
         on_answer=None, without_text: bool = False) -> dict:
    """A closed loop of ``clients`` clients: each sends the next image once its answer is back,
    until ``requests`` were started or ``duration_s`` passed; what is in flight then is awaited
    for at most ``drain_s`` more seconds, and what is still unanswered is counted as
    "unfinished". ``on_answer(status)`` is called after each answer (the soak counts them).
    ``without_text``: send only the shipped photos without text.

    The clients are aiohttp's (one keep-alive connection each): the load generator shares the
    cores with the server, and aiohttp's C parser costs about 0.3 ms of CPU per upload where
    httpx cost 1-4 ms (the same client for every system measured)."""
    import aiohttp
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    peak = {"rss_kb": rss_kb(pid)}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.2):
            peak["rss_kb"] = max(peak["rss_kb"], rss_kb(pid))

    async def run() -> float:
        next_index = 0
        connector = aiohttp.TCPConnector(limit=clients)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
            start = time.perf_counter()

            async def one_client() -> None:
                nonlocal next_index
                while next_index < requests and time.perf_counter() - start < duration_s:
                    form = aiohttp.FormData()
                    form.add_field("image", photo(next_index, without_text=without_text), filename="photo.jpg",
                                   content_type="image/jpeg")
                    next_index += 1
                    sent = time.perf_counter()
                    try:
                        async with session.post(url, data=form) as answer:
                            await answer.read()
                            key = str(answer.status)
                    except aiohttp.ClientError as exc:
                        key = type(exc).__name__
                    statuses[key] = statuses.get(key, 0) + 1
                    if key == "200":
                        latencies.append(time.perf_counter() - sent)
                    if on_answer is not None:
                        on_answer(key)

            try:
                await asyncio.wait_for(asyncio.gather(*(one_client() for _ in range(clients))), duration_s + drain_s)
            except asyncio.TimeoutError:
                statuses["unfinished"] = next_index - sum(statuses.values())
            return time.perf_counter() - start

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    cpu_start, faults_start = cpu_s(pid), minor_faults(pid)
    try:
        elapsed = asyncio.run(run())
    finally:
        stop.set()
        sampler.join()
    cpu, faults = cpu_s(pid) - cpu_start, minor_faults(pid) - faults_start
    ordered = sorted(latencies)
    return {"clients": clients, "ok": len(latencies), "statuses": statuses, "seconds": elapsed,
            "images_per_s": len(latencies) / elapsed if elapsed else 0.0,
            "p50_s": _pct(ordered, 0.50), "p95_s": _pct(ordered, 0.95), "p99_s": _pct(ordered, 0.99),
            "peak_rss_mb": peak["rss_kb"] / 1024,
            # the server's own CPU (all its threads) per answered image: HTTP, decoding, the
            # model, the merge; less disturbed by other load on the machine than images/s
            "server_cpu_ms_per_image": cpu * 1000 / len(latencies) if latencies and cpu >= 0 else None,
            # memory the server's allocator handed back and had to fault in again (models/allocator.py)
            "server_minor_faults_per_image": faults / len(latencies) if latencies and faults >= 0 else None}


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (-inf where /proc cannot say)."""
    fields = _proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else float("-inf")


def minor_faults(pid: int) -> float:
    """Minor page faults of process ``pid`` so far (-inf where /proc cannot say)."""
    fields = _proc_stat(pid)
    return int(fields[7]) if fields else float("-inf")


def _proc_stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state first), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return fields if len(fields) > 12 else None
    except OSError:
        return None


def run_http(kind: str, args, model_dir: Path, work: Path, client_counts: list[int],
             dtype: str = "auto") -> tuple[dict, str | None]:
    """The loads at each client count, and the dtype the system ran in."""
    import httpx

    with server(kind, model_dir, args.tokens, work, args.device, dtype=dtype) as (url, pid):
        load(url, pid, 1, 1, 60.0)  # one warm-up request, not counted (the naive app warms here)
        plain = kind == "offline"  # the embedded default's target is for photos without text
        loads = {str(n): load(url, pid, n, max(args.requests, n), args.duration_s, without_text=plain)
                 for n in client_counts}
        if kind == "naive":
            used = "float32"  # from_pretrained's default, as tutorials write it
        else:  # what the service says it runs in (/ready), not what was asked
            used = httpx.get(url.rsplit("/v1/", 1)[0] + "/ready", timeout=30).json()["model"].get("dtype")
        return loads, used


# --- the plan --------------------------------------------------------------------------------

# images/s measured on the 2-core development machine, BLIP-base at 10 new tokens (results/bench/
# latest.md), and seconds to start and warm each system; the plan scales them by cores and tokens.
# Only an estimate: a busy machine is slower, and the ceiling printed beside it is the hard bound.
PLAN_RATES = {"naive": 1.1, "service": 1.3, "offline": 4.5, "bare": 1.2}
PLAN_START_S = {"naive": 15.0, "service": 20.0, "offline": 15.0, "bare": 15.0}


def plan(args, client_counts: list[int], offline_counts: list[int]) -> dict:
    """Loads, estimated seconds and the hard ceiling of each system's part of one round, and of the run."""
    cores = min(os.cpu_count() or 2, 8)
    blip = (cores / 2) / (0.5 + args.tokens / 20) * (20 if args.tiny else 1)  # per-image cost grows with tokens
    parts: dict[str, dict] = {}
    services = [(service_kind(d, i), client_counts) for i, d in enumerate(service_dtypes(args))]
    for kind, counts in (("naive", client_counts), *services, ("offline", offline_counts)):
        if not counts:
            continue
        rate = PLAN_RATES[kind.partition("@")[0]] * (cores / 2 if kind == "offline" else blip)
        estimate, ceiling = PLAN_START_S[kind.partition("@")[0]] + 1 / rate, START_S + 60.0 + DRAIN_S  # start + warm-up request
        for clients in counts:
            estimate += min(max(args.requests, clients) / rate, args.duration_s + min(clients / rate, DRAIN_S))
            ceiling += args.duration_s + DRAIN_S
        parts[kind] = {"loads": len(counts), "estimate_s": estimate, "ceiling_s": ceiling}
    bare_s = PLAN_START_S["bare"]
    threads, batches = [int(x) for x in args.bare_threads.split(",")], [int(x) for x in args.bare_batch_sizes.split(",")]
    dtypes = len(bare_dtypes(args))  # bfloat16 is faster where it is picked: an upper estimate
    threads = threads * dtypes * len(bare_allocators(args))
    for t in threads:
        for b in batches:
            call = b / (PLAN_RATES["bare"] * blip * min(t, cores) / cores)
            bare_s += call + max(2 * call, args.bare_seconds + call)  # a warm call, then at least two timed ones
    if client_counts:
        parts["bare"] = {"loads": len(threads) * len(batches), "estimate_s": bare_s,
                         "ceiling_s": BARE_S * len(bare_allocators(args))}
    estimate = args.rounds * sum(p["estimate_s"] for p in parts.values())
    ceiling = args.rounds * sum(p["ceiling_s"] for p in parts.values())
    paired = None
    if client_counts and args.paired_slices:  # once, after the rounds: a server and the bare model, in turns
        pairs = args.paired_slices
        paired = {"loads": pairs, "estimate_s": PLAN_START_S["service"] + PLAN_START_S["bare"] + pairs * (2 * args.paired_seconds + 10),
                  "ceiling_s": START_S + READY_S + pairs * (2 * args.paired_seconds + PAIRED_DRAIN_S + BARE_SLICE_SPARE_S)}
        estimate, ceiling = estimate + paired["estimate_s"], ceiling + paired["ceiling_s"]
    return {"rounds": args.rounds, "per_round": parts, "paired": paired, "estimate_s": estimate, "ceiling_s": ceiling,
            "http_loads": args.rounds * sum(p["loads"] for k, p in parts.items() if k != "bare") + (paired or {}).get("loads", 0)}


def plan_text(p: dict) -> str:
    lines = [f"plan: {p['rounds']} rounds, {p['http_loads']} HTTP loads in all; "
             f"estimate {p['estimate_s'] / 60:.0f} min on an idle machine, hard ceiling {p['ceiling_s'] / 3600:.1f} h"]
    for kind, part in p["per_round"].items():
        what = "configurations" if kind == "bare" else "loads"
        lines.append(f"  per round {kind}: {part['loads']} {what}, ~{part['estimate_s'] / 60:.1f} min "
                     f"(ceiling {part['ceiling_s'] / 60:.0f} min)")
    if p.get("paired"):
        lines.append(f"  then service and bare model in turns: {p['paired']['loads']} pairs, ~{p['paired']['estimate_s'] / 60:.1f} min "
                     f"(ceiling {p['paired']['ceiling_s'] / 60:.0f} min)")
    lines.append(f"  ceiling: each server gets {START_S:.0f} s to start, each load stops starting requests at "
                 f"--duration-s and waits at most {DRAIN_S:.0f} s for those in flight, the bare model {BARE_S:.0f} s a round per allocator")
    return "\n".join(lines)


# --- the run ---------------------------------------------------------------------------------

def machine() -> dict:
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "cuda": torch.cuda.is_available(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "platform": platform.platform(), "load_avg_at_start": os.getloadavg()}


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "rounds": values}


def reference_clients(client_counts: list[int]) -> int:
    """The client count the ratios are taken at: 16, else the most asked for."""
    return 16 if 16 in client_counts else max(client_counts, default=0)


def run_paired(args, model_dir: Path, work: Path, per_round: list[dict], client_counts: list[int]) -> dict:
    """The service (its headline dtype) at the reference client count and the bare model's best
    configuration of the rounds, in turns (evaluation/bench_paired.py)."""
    bests = Counter((r["bare"]["best"]["dtype"], r["bare"]["best"]["batch"], r["bare"]["best"]["threads"],
                     r["bare"]["best"].get("allocator", "default")) for r in per_round)
    (dtype, batch, threads, allocator), _ = bests.most_common(1)[0]
    clients = reference_clients(client_counts)
    print(f"paired: service at {clients} clients and the bare model ({dtype}, batch {batch}, {threads} threads, "
          f"{allocator} allocator) "
          f"in turns, {args.paired_slices} pairs of {args.paired_seconds:.0f} s slices", file=sys.stderr, flush=True)
    with server("service", model_dir, args.tokens, work, args.device, dtype=service_dtypes(args)[0]) as (url, pid), \
            BareTurns(model_dir, tokens=args.tokens, dtype=dtype, batch=batch, threads=threads, device=args.device,
                      allocator=allocator) as bare_model:
        load(url, pid, 1, 1, 60.0)  # warm-up, not counted
        return in_turns(lambda seconds: load(url, pid, clients, 10**6, seconds, drain_s=PAIRED_DRAIN_S), bare_model,
                        slices=args.paired_slices, slice_s=args.paired_seconds) | {"clients": clients}


def summarise(rounds: list[dict], client_counts: list[int], paired: dict | None = None) -> dict:
    """Median ratios over rounds with their spread. With ``paired``, service_vs_bare_model is the
    median over the paired slices (service and bare model side by side) and the ratio of the
    rounds' windows is kept as service_vs_bare_model_rounds."""
    ratios: dict[str, list[float]] = {"throughput_vs_naive_16": [], "p95_vs_naive_16": [],
                                      "service_vs_bare_model": [], "offline_images_per_s": []}
    ref = str(reference_clients(client_counts))
    for r in rounds:
        if "offline" in r:
            ratios["offline_images_per_s"].append(max(v["images_per_s"] for v in r["offline"].values()))
        if "service" not in r:
            continue
        ours, naive = r["service"][ref], r["naive"][ref]
        if naive["images_per_s"]:
            ratios["throughput_vs_naive_16"].append(ours["images_per_s"] / naive["images_per_s"])
        if naive["p95_s"] and ours["p95_s"]:
            ratios["p95_vs_naive_16"].append(ours["p95_s"] / naive["p95_s"])
        ratios["service_vs_bare_model"].append(ours["images_per_s"] / r["bare"]["best"]["images_per_s"])
        # Each further service dtype (service@float32: scheduling only, the naive app's precision).
        for kind in (k for k in r if k.startswith("service@")):
            other = r[kind][ref]
            name = "service_" + kind.partition("@")[2]
            if naive["images_per_s"]:
                ratios.setdefault(f"{name}_vs_naive_16", []).append(other["images_per_s"] / naive["images_per_s"])
            if naive["p95_s"] and other["p95_s"]:
                ratios.setdefault(f"{name}_p95_vs_naive_16", []).append(other["p95_s"] / naive["p95_s"])
            ratios.setdefault(f"{name}_vs_bare_model", []).append(other["images_per_s"] / r["bare"]["best"]["images_per_s"])
    summary = {k: spread(v) for k, v in ratios.items() if v} | {"reference_clients": int(ref)}
    if paired:
        summary["service_vs_bare_model_rounds"] = summary.pop("service_vs_bare_model")
        summary["service_vs_bare_model"] = paired["ratio"]
    return summary


def markdown(result: dict) -> str:
    m, s = result["machine"], result["summary"]
    lines = [f"# Service benchmark ({result['finished']})", "",
             f"`{result['command']}`", "",
             f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}, CUDA {m['cuda']}; load average at start "
             f"{m['load_avg_at_start'][0]:.2f}, at end {m['load_avg_at_end'][0]:.2f}. "
             f"Model: {result['model']}, {result['tokens']} new tokens per image. {result['rounds']} rounds.", ""]
    if result.get("busy_note"):
        lines += [f"**{result['busy_note']}**", ""]
    lines += ["| ratio (median over rounds) | median | min | max | target | reached |", "| --- | --- | --- | --- | --- | --- |"]
    for key, target in TARGETS.items():
        if key in s:
            v = s[key]
            ok = v["median"] <= target if key.startswith("p95") else v["median"] >= target
            sign = "<=" if key.startswith("p95") else ">="
            lines.append(f"| {key} | {v['median']:.2f} | {v['min']:.2f} | {v['max']:.2f} | {sign} {target} | "
                         f"{'yes' if ok else 'no'} |")
    for key in sorted(k for k in s if k.startswith("service_") and k != "service_vs_bare_model"):
        v = s[key]
        lines.append(f"| {key} | {v['median']:.2f} | {v['min']:.2f} | {v['max']:.2f} | - | - |")
    lines += ["", "| system | dtype | clients | images/s median [min-max] | p50 s | p95 s | p99 s | peak RSS MB |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    extra = sorted({k for r in result["per_round"] for k in r if k.startswith("service@")})
    for kind in ("naive", "service", *extra, "offline"):
        dtype = next((r["dtypes"][kind] for r in result["per_round"] if kind in r.get("dtypes", {})), None) or "-"
        counts = sorted({c for r in result["per_round"] if kind in r for c in r[kind]}, key=int)
        for c in counts:
            rows = [r[kind][c] for r in result["per_round"] if kind in r and c in r[kind]]
            ips = [x["images_per_s"] for x in rows]

            def med(key: str) -> str:
                vals = [x[key] for x in rows if x[key] is not None]
                return f"{statistics.median(vals):.2f}" if vals else "-"

            lines.append(f"| {kind} | {dtype} | {c} | {statistics.median(ips):.2f} [{min(ips):.2f}-{max(ips):.2f}] | "
                         f"{med('p50_s')} | {med('p95_s')} | {med('p99_s')} | {med('peak_rss_mb')} |")
    if not all("bare" in r for r in result["per_round"]):  # the embedded default alone
        return "\n".join(lines) + "\n"
    bests = [r["bare"]["best"] for r in result["per_round"]]
    lines.append(f"| bare model (best) | {bests[0].get('dtype', 'float32')} | - | "
                 f"{statistics.median(b['images_per_s'] for b in bests):.2f} "
                 f"[{min(b['images_per_s'] for b in bests):.2f}-{max(b['images_per_s'] for b in bests):.2f}] | "
                 f"batch {bests[0]['batch']}, {bests[0]['threads']} threads (round 1) | | | |")
    lines += ["", "Bare model, every configuration tried (images/s per round):", ""]
    configs: dict[tuple, list[float]] = {}
    for r in result["per_round"]:
        for c in r["bare"]["configs"]:
            configs.setdefault((c.get("dtype", "float32"), c["threads"], c["batch"], c.get("allocator", "default")),
                               []).append(c["images_per_s"])
    for (dtype, threads, batch, allocator), vals in sorted(configs.items()):
        lines.append(f"- {dtype}, {threads} threads, batch {batch}, {allocator} allocator: "
                     + ", ".join(f"{v:.2f}" for v in vals))
    if paired := result.get("paired"):
        c = paired["bare_config"]
        lines += ["", f"Service at {paired['clients']} clients and the bare model ({c['dtype']}, batch {c['batch']}, "
                  f"{c['threads']} threads, {c['allocator']} allocator) in turns, {paired['slice_s']:.0f} s slices; "
                  "service_vs_bare_model is the median of these ratios (CPU and minor page faults per image of "
                  "each process):", "",
                  "| pair | order | service images/s | CPU ms | faults | bare images/s | CPU ms | faults | ratio |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]

        def num(value) -> str:
            return "-" if value is None else f"{value:.0f}"

        for i, pair in enumerate(paired["pairs"], 1):
            ours, bare_model = pair["service"], pair["bare"]
            lines.append(f"| {i} | {', '.join(pair['order'])} | {ours['images_per_s']:.2f} | "
                         f"{num(ours.get('server_cpu_ms_per_image'))} | {num(ours.get('server_minor_faults_per_image'))} | "
                         f"{bare_model['images_per_s']:.2f} | {num(bare_model['cpu_ms_per_image'])} | "
                         f"{num(bare_model.get('minor_faults_per_image'))} | {pair['ratio']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict | None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--clients", default="1,4,16,64",
                   help="client counts for the BLIP systems; '' measures the embedded default alone "
                        "(written to offline_service.json/.md)")
    p.add_argument("--requests", type=int, default=128, help="most requests started per load")
    p.add_argument("--duration-s", type=float, default=60.0, help="no new requests after this, per load")
    add_model_options(p)
    p.add_argument("--bare-batch-sizes", default="1,8")
    p.add_argument("--bare-threads", default="1,2")
    p.add_argument("--bare-seconds", type=float, default=10.0)
    p.add_argument("--offline-clients", default="4,16", help="client counts for the embedded default; '' skips it")
    p.add_argument("--device", default="cpu")
    p.add_argument("--service-dtype", default="auto",
                   help="the service's ALTTEXT_DTYPE; a list (auto,float32) adds a service system per further dtype")
    p.add_argument("--paired-slices", type=int, default=6,
                   help="after the rounds, this many pairs of slices of the service and the bare model's best "
                        "configuration in turns (evaluation/bench_paired.py); 0 skips")
    p.add_argument("--paired-seconds", type=float, default=20.0, help="length of each paired slice")
    p.add_argument("--bare-allocators", default="default,keep_freed",
                   help="allocators baseline B runs under: default (the C library's) and keep_freed (the service's "
                        "ALTTEXT_KEEP_FREED_MEMORY, models/allocator.py); its best counts")
    p.add_argument("--bare-dtypes", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", type=Path, default=ROOT / "evaluation" / "results" / "bench")
    p.add_argument("--busy-note", default="", help="printed in the table, e.g. that the machine was busy")
    p.add_argument("--plan", action="store_true", help="print the plan (loads, estimated time, ceiling) and stop")
    p.add_argument("--bare-only", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    ints = lambda text: [int(x) for x in text.split(",") if x.strip()]  # noqa: E731
    if args.plan:
        the_plan = plan(args, ints(args.clients), ints(args.offline_clients))
        print(plan_text(the_plan))
        return {"plan": the_plan}
    require_device(args.device)
    model_dir = model_dir_of(args)
    if args.bare_only:
        dtypes = args.bare_dtypes.split(",") if args.bare_dtypes else bare_dtypes(args)
        [allocator] = bare_allocators(args)
        print(json.dumps(bare(str(model_dir), args.tokens, ints(args.bare_batch_sizes), ints(args.bare_threads),
                              args.bare_seconds, args.device, dtypes, allocator)))
        return None

    client_counts = ints(args.clients)
    offline_counts = ints(args.offline_clients)
    the_plan = plan(args, client_counts, offline_counts)
    print(plan_text(the_plan), file=sys.stderr, flush=True)
    if client_counts:  # --clients '' measures the embedded default alone (no BLIP, no bare model)
        build_model(model_dir, tiny=args.tiny)
    info = machine()
    work = Path(tempfile.mkdtemp(prefix="alttext-bench-"))
    service_kinds = {service_kind(d, i): d for i, d in enumerate(service_dtypes(args))} if client_counts else {}
    systems = (["naive", *service_kinds, "bare"] if client_counts else []) + (["offline"] if offline_counts else [])
    per_round = []
    for i in range(args.rounds):
        order = systems[i % len(systems):] + systems[:i % len(systems)]
        row: dict = {"order": order, "dtypes": {}}
        for kind in order:
            print(f"round {i + 1}/{args.rounds}: {kind}", file=sys.stderr, flush=True)
            if kind == "bare":
                row["bare"] = run_bare(args, model_dir)
                row["dtypes"]["bare"] = row["bare"]["best"]["dtype"]
            elif kind in service_kinds:
                row[kind], row["dtypes"][kind] = run_http("service", args, model_dir, work, client_counts,
                                                          dtype=service_kinds[kind])
            else:
                row[kind], row["dtypes"][kind] = run_http(kind, args, model_dir, work,
                                                          offline_counts if kind == "offline" else client_counts)
        per_round.append(row)
    paired = run_paired(args, model_dir, work, per_round, client_counts) if client_counts and args.paired_slices else None
    info["load_avg_at_end"] = os.getloadavg()
    summary = summarise(per_round, client_counts, paired)
    result = {
        "finished": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": "python -m evaluation.bench_service " + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": ("none: the embedded default alone" if not client_counts else
                  "BLIP tiny (random weights)" if args.tiny else "BLIP-base (random weights, BlipConfig())"),
        "tokens": args.tokens, "rounds": args.rounds, "machine": info, "busy_note": args.busy_note,
        "summary": summary, "per_round": per_round, "paired": paired, "plan": the_plan,
        "dtypes": {"naive": "float32", **{k: resolved_dtype(d, args.device) for k, d in service_kinds.items()},
                   "bare": bare_dtypes(args)} if client_counts else {},
        **{k: summary[k]["median"] for k in TARGETS if k in summary},
        "targets": TARGETS,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    name = "latest" if client_counts else "offline_service"  # an offline-only run keeps latest.json
    (args.out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{name}.md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
