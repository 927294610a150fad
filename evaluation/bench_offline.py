"""The embedded default drafter (``offline``): where its time goes, and how fast it is against
the unmodified path measured in the same run.

    .venv/bin/python -m evaluation.bench_offline                  # timing rounds + agreement on the dev sets
    .venv/bin/python -m evaluation.bench_offline --rounds 1 --no-agreement   # a quick look

Two configurations of the same ``OfflineDrafter``, each in a fresh process (thread settings
are per process), alternating over ``--rounds``:

- ``before``: ``workers=0, text_gate=False, engine="classic", face_side=None``, the path before issue 15:
  one image after the other, every component with its library's default thread pool, the
  object detector on OpenCV's DNN module, the classifier batched in torch, the full text
  reader and the face counter on every image;
- ``after``: the defaults: one worker thread per usable core (each image's classes, objects
  and faces, and its text as two tasks, every library on one thread), the detector's, the
  classifier's and the face finder's networks on ONNX Runtime, the full text reader only where the gate finds text,
  faces only where no person is detected, on a copy at most 480 px on its long side.

Each process drafts the timing photos (``--photos``, default the shipped COCO fixtures that
contain no text, repeated to ``--images``) in batches of ``--batch`` as the service does, and
times every component alone on one image at a time (CPU milliseconds of the whole process,
its libraries' thread pools included, which the other engineers' load on the machine
disturbs less than wall time, though busy-waiting threads count more under load). The ratio
after/before of images per second is taken per round; the median and spread are reported.

``--agreement`` (on by default where /work/shared/data exists) drafts COCO dev and Concadia
dev with both configurations and counts identical draft texts; differing drafts are listed.
Results go to ``--out`` (default evaluation/results/bench/offline.json) and a Markdown table
beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "coco"
DATA = Path(os.environ.get("ALTTEXT_DATA", "/work/shared/data"))
CONFIGS = {"before": {"workers": 0, "text_gate": False, "engine": "classic", "face_side": None}, "after": {}}
if os.environ.get("BENCH_OFFLINE_CONFIGS"):
    CONFIGS = json.loads(os.environ["BENCH_OFFLINE_CONFIGS"])


def photos_without_text() -> list[Path]:
    from evaluation.bench_photos import PHOTOS_WITH_TEXT

    return [p for p in sorted(FIXTURES.glob("*.jpg")) if p.stem not in PHOTOS_WITH_TEXT]


def dev_images() -> list[tuple[str, Path]]:
    """(set/id, path) of COCO dev and Concadia dev, in file order."""
    out = []
    for name in ("coco", "concadia"):
        for line in (DATA / name / "dev.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                out.append((f"{name}/{record['id']}", DATA / name / record["image"]))
    return out


# --- inside one measuring process ----------------------------------------------------------

def _cpu_ms(fn, items) -> float:
    """CPU ms per item of the whole process (a library's own threads, spinning ones too)."""
    start = time.process_time()
    for item in items:
        fn(item)
    return (time.process_time() - start) * 1000 / len(items)


def measure(config: str, paths: list[str], batch: int, components: bool) -> dict:
    import numpy as np
    from PIL import Image

    from models.offline.backend import OfflineDrafter, describe

    drafter = OfflineDrafter(**CONFIGS[config])
    drafter.warm_up()
    images = [Image.open(p).convert("RGB") for p in paths]
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(images), batch):
        drafter.draft(images[i:i + batch])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    result = {"config": config, "images": len(images), "seconds": elapsed, "images_per_s": len(images) / elapsed,
              "process_cpu_ms_per_image": cpu * 1000 / len(images)}
    if components:
        if drafter.workers:
            # as in the drafter's workers: one OpenMP thread for the face search (on this thread
            # yuface would otherwise start a team per core, and its CPU ms would count the spinning)
            from models.offline.faces import single_threaded_openmp

            _ = drafter.face_counter  # loaded first: its libgomp copy is told too
            single_threaded_openmp()
        distinct = images[: min(len(images), 16)]
        arrays = [np.asarray(im) for im in distinct]
        ms = {"classifier": _cpu_ms(lambda im: drafter.classifier.classify([im]), distinct),
              "detector": _cpu_ms(drafter.detector.detect, distinct),
              "ocr": _cpu_ms(drafter.reader.read, distinct),
              "faces": _cpu_ms(drafter.face_counter.faces, distinct)}
        if config == "after":
            from models.offline.faces import FaceCounter

            ms["ocr_gate"] = _cpu_ms(drafter.reader.has_text, arrays)
            # the same face search in yuface's own library, on the same copies, in this process:
            # what running its network on ONNX Runtime saves, measured side by side
            library = FaceCounter(max_side=drafter.face_side, engine="library")
            ms["faces_in_yuface_library"] = _cpu_ms(library.faces, distinct)
        found = [(drafter.classifier.classify([im])[0], drafter.detector.detect(im), drafter.reader.read(im),
                  drafter.face_counter.faces(im)) for im in distinct]
        ms["describe"] = _cpu_ms(lambda args: describe(args[0], *args[1]), list(zip(distinct, found)))
        result["component_cpu_ms"] = ms
    return result


def draft_all(config: str, items: list[tuple[str, str]], batch: int) -> dict:
    from PIL import Image

    from models.offline.backend import OfflineDrafter

    drafter = OfflineDrafter(**CONFIGS[config])
    drafter.warm_up()
    out, start = {}, time.perf_counter()
    for i in range(0, len(items), batch):
        chunk = items[i:i + batch]
        drafts = drafter.draft([Image.open(p).convert("RGB") for _, p in chunk])
        for (key, _), d in zip(chunk, drafts):
            out[key] = {"text": d.text, "confidence": d.confidence, "ocr": d.evidence.text,
                        "faces": d.evidence.faces, "kind": d.evidence.kind}
    return {"drafts": out, "seconds": time.perf_counter() - start}


def child(argv: list[str]) -> None:
    kind, config, spec, out = argv
    job = json.loads(Path(spec).read_text())
    if kind == "measure":
        result = measure(config, job["paths"], job["batch"], job["components"])
    else:
        result = draft_all(config, [tuple(x) for x in job["items"]], job["batch"])
    Path(out).write_text(json.dumps(result))


def run_child(kind: str, config: str, job: dict, work: Path) -> dict:
    spec, out = work / f"{kind}-{config}-job.json", work / f"{kind}-{config}-out.json"
    spec.write_text(json.dumps(job))
    subprocess.run([sys.executable, "-m", "evaluation.bench_offline", "--child", kind, config, str(spec), str(out)],
                   cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.read_text())


# --- the driver ---------------------------------------------------------------------------

def agreement(before: dict, after: dict) -> dict:
    rows = {}
    for key in before:
        part = key.split("/")[0]
        row = rows.setdefault(part, {"images": 0, "identical_text": 0, "identical_ocr": 0, "differ": []})
        row["images"] += 1
        row["identical_text"] += before[key]["text"] == after[key]["text"]
        row["identical_ocr"] += before[key]["ocr"] == after[key]["ocr"]
        if before[key]["text"] != after[key]["text"] or before[key]["ocr"] != after[key]["ocr"]:
            row["differ"].append({"id": key, "before": before[key], "after": after[key]})
    return rows


def markdown(result: dict) -> str:
    lines = ["# Embedded default drafter: before/after issue 15", "",
             f"Command: `{result['command']}`", f"Machine: {result['machine']}", "",
             f"Timing photos: {result['timing']['photos']} (no text), drafted in batches of "
             f"{result['timing']['batch']}, {result['timing']['rounds']} interleaved rounds.", "",
             "| configuration | images/s median [min-max] | process CPU ms/image |", "|---|---|---|"]
    for config in CONFIGS:
        ips = [r[config]["images_per_s"] for r in result["timing"]["runs"]]
        cpu = [r[config]["process_cpu_ms_per_image"] for r in result["timing"]["runs"]]
        lines.append(f"| {config} | {statistics.median(ips):.2f} [{min(ips):.2f}-{max(ips):.2f}] | "
                     f"{statistics.median(cpu):.0f} |")
    ratios = result["timing"]["ratio_after_before"]
    lines += ["", f"after/before images/s per round: median {statistics.median(ratios):.2f}x "
                  f"[{min(ratios):.2f}-{max(ratios):.2f}]", "",
              "Each component alone, one image at a time, process CPU ms (median over rounds):", "",
              "| component | before | after |", "|---|---|---|"]
    comps = result["timing"]["component_cpu_ms"]
    for name in sorted(set(comps["before"]) | set(comps["after"])):
        b, a = comps["before"].get(name), comps["after"].get(name)
        lines.append(f"| {name} | {'-' if b is None else f'{b:.1f}'} | {'-' if a is None else f'{a:.1f}'} |")
    if "agreement" in result:
        lines += ["", "Agreement with the unmodified path (draft text and OCR text identical):", "",
                  "| set | images | identical drafts | identical OCR text |", "|---|---|---|---|"]
        for part, row in result["agreement"]["sets"].items():
            lines.append(f"| {part} dev | {row['images']} | {row['identical_text']} | {row['identical_ocr']} |")
        rate = result["agreement"]["images_per_s"]
        lines += ["", f"Drafting both dev sets (with and without text, one pass each): before "
                      f"{rate['before']:.2f} images/s, after {rate['after']:.2f} images/s."]
        differ = [d for row in result["agreement"]["sets"].values() for d in row["differ"]]
        if differ:
            lines += ["", "Drafts that differ:", ""]
            for d in differ:
                lines.append(f"- {d['id']}: before {d['before']['text']!r} (OCR {d['before']['ocr']!r}); "
                             f"after {d['after']['text']!r} (OCR {d['after']['ocr']!r})")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict | None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1:])
        return None
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--images", type=int, default=48, help="drafts per timing run (the photos repeat)")
    p.add_argument("--batch", type=int, default=8, help="images per draft() call (the service's batch)")
    p.add_argument("--photos", type=Path, nargs="*", help="timing photos (default: shipped COCO photos without text)")
    p.add_argument("--agreement", action=argparse.BooleanOptionalAction, default=(DATA / "coco" / "dev.jsonl").exists())
    p.add_argument("--out", type=Path, default=ROOT / "evaluation" / "results" / "bench" / "offline.json")
    args = p.parse_args(argv)
    from evaluation.bench_service import machine

    pool = [str(x) for x in (args.photos or photos_without_text())]
    paths = [pool[i % len(pool)] for i in range(args.images)]
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-offline-") as tmp:
        work = Path(tmp)
        for r in range(args.rounds):
            order = list(CONFIGS) if r % 2 == 0 else list(reversed(CONFIGS))
            row = {c: run_child("measure", c, {"paths": paths, "batch": args.batch, "components": True}, work)
                   for c in order}
            row["ratio"] = row["after"]["images_per_s"] / row["before"]["images_per_s"]
            print(f"round {r + 1}: before {row['before']['images_per_s']:.2f} images/s, after "
                  f"{row['after']['images_per_s']:.2f} images/s ({row['ratio']:.2f}x); load "
                  f"{os.getloadavg()[0]:.1f}", flush=True)
            runs.append(row)
        components = {c: {k: statistics.median(r[c]["component_cpu_ms"][k] for r in runs)
                          for k in runs[0][c]["component_cpu_ms"]} for c in CONFIGS}
        result = {"command": "python -m evaluation.bench_offline " + " ".join(argv), "machine": machine(),
                  "timing": {"photos": len(pool), "images": args.images, "batch": args.batch, "rounds": args.rounds,
                             "runs": runs, "ratio_after_before": [r["ratio"] for r in runs],
                             "component_cpu_ms": components}}
        if args.agreement:
            items = [(k, str(v)) for k, v in dev_images()]
            drafted = {c: run_child("draft", c, {"items": items, "batch": args.batch}, work) for c in CONFIGS}
            sets = agreement(drafted["before"]["drafts"], drafted["after"]["drafts"])
            result["agreement"] = {"sets": sets, "images_per_s": {c: len(items) / drafted[c]["seconds"]
                                                                  for c in CONFIGS}}
            for part, row in sets.items():
                print(f"{part} dev: {row['identical_text']}/{row['images']} drafts identical, "
                      f"{row['identical_ocr']}/{row['images']} OCR text identical", flush=True)
    result["load_average"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
