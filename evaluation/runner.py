"""One evaluation run: systems side by side on the same images, scored, written to one folder.

    load samples -> per batch: decode images, draft (cached) + merge via service.pipeline.describe_batch,
    CLIP image embeddings, thumbnails -> reference, CLIP and policy metrics once per system ->
    bootstrap intervals and paired tests -> results.json, samples.jsonl, report.md, report.html
"""
from __future__ import annotations

import base64
import io
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Literal

import numpy as np

from evaluation import metrics as M
from evaluation import policy, stats
from evaluation.datasets import SHIPPED, Sample, file_sha256, load_samples, resolve
from models.versions import installed_version

CAPTION_ONLY, SUBJECT_ONLY, DRAFT_ONLY, MERGED = "caption-only", "subject-only", "draft-only", "merged"
BASE_SYSTEMS = (CAPTION_ONLY, SUBJECT_ONLY, DRAFT_ONLY, MERGED)
TEXT_SYSTEMS = (CAPTION_ONLY, SUBJECT_ONLY)  # need no drafter
Thumbnails = Literal["embed", "link", "none"]
THUMB_PX = 160
PAGE_CAPTION_MAX, PAGE_CONTEXT_MAX = 5000, 20000  # PageContext bounds
SCHEMA_VERSION = 1


@dataclass
class EvalConfig:
    dataset: str
    split: str = "dev"
    systems: list[str] | None = None          # None: all
    models: list[str] = field(default_factory=lambda: ["offline"])
    limit: int | None = None
    out: Path | None = None
    image_root: Path | None = None            # COCO-format annotations only
    max_chars: int | None = None              # merge settings; None: service settings
    review_below: float | None = None
    caption_visible: bool = True              # is the caption shown beside the image on the page?
    batch_size: int | None = None
    resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95
    clip_model: str | None = None             # None: ALTTEXT_CLIP_MODEL
    cache_dir: Path | None = None             # None: ALTTEXT_EVAL_CACHE or ~/.cache/alttext
    use_cache: bool = True
    thumbnails: Thumbnails = "embed"
    progress: bool = True
    command: str | None = None                # recorded in results.json and report.md


def system_names(models: Sequence[str]) -> list[str]:
    """caption-only and subject-only, then draft-only and merged for the first model, then suffixed
    ones for the others."""
    names = [CAPTION_ONLY, SUBJECT_ONLY]
    for k, model in enumerate(models):
        suffix = "" if k == 0 else f"@{model}"
        names += [DRAFT_ONLY + suffix, MERGED + suffix]
    return names


def _model_of(system: str, models: Sequence[str]) -> str | None:
    if system in TEXT_SYSTEMS:
        return None
    return system.split("@", 1)[1] if "@" in system else models[0]


def select_systems(requested: Sequence[str] | None, models: Sequence[str]) -> list[str]:
    available = system_names(models)
    if not requested:
        return available
    wanted = [s.strip() for item in requested for s in item.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in available]
    if unknown:
        raise ValueError(f"unknown system(s) {', '.join(unknown)}; available: {', '.join(available)}")
    return [s for s in available if s in wanted]


def default_out(config: EvalConfig) -> Path:
    name = Path(config.dataset).stem if config.dataset not in SHIPPED else config.dataset
    return Path("runs") / "eval" / f"{name}-{config.split}-{time.strftime('%Y%m%d-%H%M%S')}"


def _versions() -> dict:
    from evaluation.cache import code_fingerprint

    repo = Path(__file__).resolve().parents[1]
    commit = dirty = None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                                timeout=10, check=False).stdout.strip() or None
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                                    capture_output=True, text=True, timeout=10, check=False).stdout.strip())
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {
        "alttext": installed_version("alttext"), "git_commit": commit, "git_dirty": dirty,
        "python": platform.python_version(), "platform": platform.platform(),
        **{pkg: installed_version(pkg) for pkg in ("pycocoevalcap", "numpy", "torch", "transformers", "pillow")},
        "java": M.java_version(),
        "drafting_code": code_fingerprint(),
    }


def _thumbnail(image, size: int = THUMB_PX) -> str:
    thumb = image.copy()
    thumb.thumbnail((size, size))
    buf = io.BytesIO()
    thumb.convert("RGB").save(buf, "JPEG", quality=70, optimize=True)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _clip(text: str | None, limit: int) -> str | None:
    text = policy.plain_text(text) if text else None
    return text[:limit] if text else None


def _role(sample: Sample) -> str:
    role = sample.meta.get("role") if sample.meta else None
    return role if role in ("informative", "decorative", "functional", "complex", "text") else "informative"


def _settings(config: EvalConfig):
    from service.settings import Settings, get_settings

    base = get_settings().model_dump()
    updates = {k: v for k, v in {"max_chars": config.max_chars, "review_below": config.review_below,
                                 "batch_size": config.batch_size}.items() if v is not None}
    return Settings.model_validate({**base, **updates}) if updates else get_settings()


def _metric_json(metric: M.Metric, level: float) -> dict:
    if metric.skipped:
        return {"value": None, "interval": None, "skipped": metric.skipped}
    out = {"value": metric.value, "interval": stats.interval(metric.resampled, level) if metric.resampled is not None
           else None, "n": metric.n, "bootstrap": metric.method}
    out.update(metric.extra)
    return out


def _num(value):
    if value is None:
        return None
    value = float(value)
    return None if np.isnan(value) else round(value, 6)


def run(
    config: EvalConfig,
    drafters: Mapping[str, object] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Run one evaluation and write its folder. ``drafters`` maps model id -> Drafter (tests pass
    one in; otherwise models.registry.load_drafter loads each). Returns the results.json content."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    started = time.perf_counter()
    systems = select_systems(config.systems, config.models)
    _settings(config)  # bad merge settings fail before any work
    out_dir = Path(config.out) if config.out else default_out(config)
    out_dir.mkdir(parents=True, exist_ok=True)

    dataset_path = resolve(config.dataset, config.split)
    samples = load_samples(config.dataset, config.split, config.limit, config.image_root)
    if not samples:
        raise ValueError(f"no samples in {dataset_path}")
    log(f"eval: {len(samples)} images from {dataset_path}; systems: {', '.join(systems)}")
    # METEOR's jar loads its paraphrase table for seconds: start it now, it loads while we draft.
    meteor = M.MeteorJar() if M.java_available() and any(s.references for s in samples) else None
    try:
        return _run(config, samples, dataset_path, systems, out_dir, meteor, drafters, log, started)
    finally:
        if meteor is not None:
            meteor.close()


def _run(config, samples, dataset_path, systems, out_dir, meteor, drafters, log, started) -> dict:
    from tqdm import tqdm

    from models.imageio import ImageError, load_image
    from service.pipeline import describe_batch
    from service.page import PageContext

    timing: dict[str, float] = {}
    model_ids = list(dict.fromkeys(m for s in systems if (m := _model_of(s, config.models)) is not None))
    settings = _settings(config)

    # Drafters (each wrapped in the draft cache).
    from evaluation.cache import CachingDrafter, DraftCache

    cache = DraftCache.open(config.cache_dir) if config.use_cache and model_ids else None
    wrapped: dict[str, CachingDrafter] = {}
    for model in model_ids:
        drafter = (drafters or {}).get(model)
        if drafter is None:
            from models.registry import load_drafter

            options = settings.model_copy(update={"model": model}).drafter_options()
            log(f"eval: loading drafter {model}")
            drafter = load_drafter(model, **options)
        wrapped[model] = CachingDrafter(drafter, cache)

    clip_path = config.clip_model or os.environ.get("ALTTEXT_CLIP_MODEL")
    clip_scorer, clip_skip = None, None
    if not clip_path:
        from evaluation.clipscore import SKIPPED_NO_MODEL

        clip_skip = SKIPPED_NO_MODEL
    else:
        try:
            from evaluation.clipscore import ClipScorer

            clip_scorer = ClipScorer(clip_path)
        except Exception as exc:  # noqa: BLE001 - any load failure is reported, not fatal
            clip_skip = f"skipped: could not load CLIP model from {clip_path}: {type(exc).__name__}: {exc}"

    # Pass over the images, in batches.
    rows: list[dict] = []          # one per sample that loaded
    errors: list[dict] = []
    thumbs: list[str | None] = []
    image_emb: list[np.ndarray] = []
    outputs: dict[str, list[dict]] = {s: [] for s in systems}
    batch = settings.batch_size
    t0 = time.perf_counter()
    bar = tqdm(total=len(samples), desc="drafting", unit="img", disable=not config.progress, file=sys.stderr)
    for start in range(0, len(samples), batch):
        chunk = samples[start:start + batch]
        ok: list[tuple[Sample, object]] = []
        for sample in chunk:
            try:
                ok.append((sample, load_image(sample.image, **settings.image_limits())))
            except ImageError as exc:
                errors.append({"id": sample.id, "image": _rel(sample.image, dataset_path), "code": exc.code,
                               "reason": exc.reason, "message": str(exc)})
        if ok:
            pages = [PageContext(caption=_clip(s.caption, PAGE_CAPTION_MAX), context=_clip(s.context, PAGE_CONTEXT_MAX),
                                 caption_visible=config.caption_visible, role=_role(s)) for s, _ in ok]
            results_by_model = {}
            for model, drafter in wrapped.items():
                for _, li in ok:
                    drafter.register(li.image, li.sha256)
                results_by_model[model] = describe_batch(drafter, [li for _, li in ok], pages, settings)
                drafter.forget()
            if clip_scorer is not None:
                image_emb.append(clip_scorer.image_embeddings([li.image for _, li in ok]))
            for k, (sample, li) in enumerate(ok):
                rows.append(_row(sample, li, dataset_path))
                if config.thumbnails == "embed":
                    thumbs.append(_thumbnail(li.image))
                elif config.thumbnails == "link":
                    thumbs.append(os.path.relpath(Path(sample.image).resolve(), out_dir.resolve()))
                else:
                    thumbs.append(None)
                for system in systems:
                    outputs[system].append(_output(system, sample, config.models, results_by_model, k,
                                                   settings.nlp))
        bar.update(len(chunk))
    bar.close()
    timing["images_and_drafts_s"] = round(time.perf_counter() - t0, 2)
    if cache:
        cache.close()
    n = len(rows)
    if n == 0:
        raise RuntimeError(f"no image could be loaded ({len(errors)} errors); first: {errors[0] if errors else None}")

    # Metrics, once per system.
    t0 = time.perf_counter()
    counts = stats.resample_counts(n, config.resamples, config.seed)
    references = [row["references"] for row in rows]
    hyps = {s: [o["alt"] for o in outputs[s]] for s in systems}
    log(f"eval: scoring {len(systems)} systems on {n} images (tokenizer, METEOR, CIDEr...)")
    ref_metrics, notes = M.reference_metrics(hyps, references, counts, meteor)
    timing["reference_metrics_s"] = round(time.perf_counter() - t0, 2)

    t0 = time.perf_counter()
    clip_metrics: dict[str, dict[str, M.Metric]] = {}
    if clip_scorer is not None:
        emb = np.concatenate(image_emb)
        for s in systems:
            clip_s = clip_scorer.clip_scores(emb, hyps[s])
            ref_s = clip_scorer.ref_clip_scores(clip_s, hyps[s], references)
            clip_metrics[s] = {"CLIPScore": M.mean_metric(list(clip_s), counts),
                               "RefCLIPScore": M.mean_metric(list(ref_s), counts)}
            if clip_metrics[s]["RefCLIPScore"].skipped:
                clip_metrics[s]["RefCLIPScore"].skipped = "skipped: no image has a reference"
    else:
        clip_metrics = {s: {m: M.Metric.skip(clip_skip, n) for m in M.CLIP_METRICS} for s in systems}
    timing["clip_metrics_s"] = round(time.perf_counter() - t0, 2)

    max_chars = settings.max_chars
    policy_rows: dict[str, list[dict]] = {}
    policy_metrics: dict[str, dict[str, M.Metric]] = {}
    for s in systems:
        policy_rows[s] = [policy.values(o["alt"], row["caption"], max_chars=max_chars,
                                        needs_review=o.get("needs_review"), informative=row["role"] != "decorative")
                          for o, row in zip(outputs[s], rows)]
        # Duplication only matters when readers see the caption too, and never for the caption itself.
        duplication_skip = ("not applicable: the output is the caption" if s == CAPTION_ONLY else
                            None if config.caption_visible else "not applicable: the caption is not shown on the page")
        if duplication_skip:
            for values in policy_rows[s]:
                values["caption_duplicate"] = None
        policy_metrics[s] = M.policy_metrics(policy_rows[s], counts)
        if duplication_skip:
            policy_metrics[s]["caption_duplicate"] = M.Metric.skip(duplication_skip, n)

    all_metrics = {s: {**ref_metrics[s], **clip_metrics[s], **policy_metrics[s]} for s in systems}
    metric_names = [*M.REFERENCE_METRICS, *M.CLIP_METRICS, *M.POLICY_METRICS]

    # Paired comparisons: every later system against every earlier one.
    comparisons = []
    for a_i, b_i in combinations(range(len(systems)), 2):
        a, b = systems[b_i], systems[a_i]
        per_metric = {}
        for name in metric_names:
            ma, mb = all_metrics[a][name], all_metrics[b][name]
            if ma.skipped or mb.skipped or ma.resampled is None or mb.resampled is None:
                continue
            per_metric[name] = stats.paired(ma.value, mb.value, ma.resampled, mb.resampled, config.confidence)
        comparisons.append({"a": a, "b": b, "metrics": per_metric})

    calibration = {s: _calibration(outputs[s], rows) for s in systems if s.startswith(DRAFT_ONLY)}

    # Per-sample scores and flags.
    for s in systems:
        for i, o in enumerate(outputs[s]):
            o["scores"] = {name: _num(all_metrics[s][name].per_sample[i])
                           for name in (*M.REFERENCE_METRICS, *M.CLIP_METRICS) if not all_metrics[s][name].skipped}
            shown_caption = rows[i]["caption"] if s != CAPTION_ONLY and config.caption_visible else None
            o["flags"] = policy.flags(o["alt"], shown_caption, max_chars=max_chars,
                                      needs_review=o.get("needs_review"), informative=rows[i]["role"] != "decorative")
    for i, row in enumerate(rows):
        row["systems"] = {s: outputs[s][i] for s in systems}

    results = {
        "schema": SCHEMA_VERSION,
        "config": {
            **{k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()
               if k not in ("progress", "cache_dir", "out")},
            "systems": systems,
            "merge": {"max_chars": settings.max_chars, "review_below": settings.review_below,
                      "caption_visible": config.caption_visible},
            "batch_size": settings.batch_size,
            "clip_model": clip_path,
        },
        "dataset": {"name": config.dataset, "split": config.split,
                    "file": _display_path(dataset_path), "sha256": file_sha256(dataset_path),
                    "images": len(samples), "scored": n, "errors": errors,
                    "with_references": notes["images_with_references"],
                    "with_caption": sum(1 for r in rows if r["caption"]),
                    "with_context": sum(1 for r in rows if r["context"])},
        "versions": {**_versions(), "models": {m: wrapped[m].model.model_dump() for m in wrapped}},
        "systems": {
            s: {"description": _describe(s, config.models),
                "metrics": {name: _metric_json(all_metrics[s][name], config.confidence) for name in metric_names}}
            for s in systems
        },
        "comparisons": comparisons,
        "calibration": {s: c for s, c in calibration.items() if c is not None},
        "bootstrap": {"resamples": config.resamples, "seed": config.seed, "confidence": config.confidence,
                      "unit": "image", "method": BOOTSTRAP_NOTE},
        "notes": {**notes, "CLIPScore": clip_skip or f"computed with {clip_path}",
                  "cider": "CIDEr-D as in pycocoevalcap (document frequencies from this set's references)"},
        "cache": {"enabled": cache is not None,
                  "hits": sum(d.hits for d in wrapped.values()), "misses": sum(d.misses for d in wrapped.values())},
        "timing": timing,
    }
    t0 = time.perf_counter()
    from evaluation import report

    _write(out_dir, results, rows)
    (out_dir / "report.md").write_text(report.markdown(results), encoding="utf-8")
    (out_dir / "report.html").write_text(report.html_report(results, rows, thumbs), encoding="utf-8")
    timing["report_s"] = round(time.perf_counter() - t0, 2)
    timing["total_s"] = round(time.perf_counter() - started, 2)
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"eval: wrote {out_dir} (cache hits {results['cache']['hits']}, misses {results['cache']['misses']}; "
        f"{timing['total_s']} s)")
    results["out"] = str(out_dir)
    return results


def _calibration(outputs: list[dict], rows: list[dict]) -> dict | None:
    """Does the draft's confidence say when the draft is right? Two targets per image with
    references: every thing the draft names is named by a reference (the draft is right), and
    at least one thing it names is (it names a referenced thing); synonyms as in
    evaluation.mentions. AUROC for each, and a reliability table for the first."""
    from evaluation.mentions import mentions, names_a_referenced_thing

    conf, right, names_one = [], [], []
    for out, row in zip(outputs, rows):
        if not row["references"] or out.get("confidence") is None or not out.get("named"):
            continue
        conf.append(out["confidence"])
        right.append(all(mentions(n, row["references"]) for n in out["named"]))
        names_one.append(names_a_referenced_thing(out["alt"], row["references"]))
    if not conf:
        return None
    return {
        "n": len(conf),
        "target": "every thing the draft names is named by a reference",
        "positives": int(sum(right)),
        "auroc": stats.auroc(conf, right),
        "names_a_referenced_thing": {"positives": int(sum(names_one)), "auroc": stats.auroc(conf, names_one)},
        "reliability": stats.reliability(conf, right),
    }


BOOTSTRAP_NOTE = (
    "images resampled with replacement; BLEU-n and METEOR are recomputed as corpus scores from summed per-image "
    "statistics on every resample (exact); ROUGE-L, CIDEr (document frequencies fixed from the full set), "
    "CLIPScore and policy shares bootstrap the mean of per-image scores; length_max the maximum. Intervals are "
    "percentile intervals. Paired tests use the same resamples for both systems; p is one-sided: the share of "
    "resamples where the difference is zero or has the other sign."
)


def _describe(system: str, models: Sequence[str]) -> str:
    model = _model_of(system, models)
    if system == CAPTION_ONLY:
        return "the dataset caption as plain text (empty when there is none)"
    if system == SUBJECT_ONLY:
        return ("the caption's subject phrase alone, as the merge finds it (service.merge.caption_subject; "
                "empty when there is no caption or no clean subject)")
    if system.startswith(DRAFT_ONLY):
        return f"the drafter's Draft.text ({model})"
    return f"service.pipeline.describe_batch alt, caption and context given as PageContext ({model})"


def _display_path(path: Path) -> str:
    """The dataset file relative to the data folder or the working directory, never a home path."""
    from evaluation.datasets import data_root

    path = path.resolve()
    for base, label in ((data_root(), "<data folder>"), (Path.cwd(), ".")):
        if base is not None:
            try:
                return f"{label}/{path.relative_to(base.resolve())}"
            except ValueError:
                continue
    return path.name


def _rel(image: Path, dataset_path: Path) -> str:
    try:
        return str(Path(image).resolve().relative_to(dataset_path.resolve().parent))
    except ValueError:
        return Path(image).name


def _row(sample: Sample, li, dataset_path: Path) -> dict:
    return {
        "id": sample.id, "image": _rel(sample.image, dataset_path), "sha256": li.sha256,
        "width": li.width, "height": li.height,
        "caption": sample.caption, "context": sample.context, "references": sample.references,
        "role": _role(sample), "meta": sample.meta,
    }


def _subject_only(caption: str | None, nlp_mode: str) -> str:
    from service.merge import caption_subject, polish
    from service.text import sanitise, strip_credits

    cleaned = strip_credits(sanitise(caption))[0] if caption else ""
    subject = caption_subject(cleaned, nlp_mode) if cleaned else None
    return polish(subject) if subject else ""


def _named_classes(draft) -> list[str]:
    """The detected object classes a draft names in its text (for calibration)."""
    from models.offline.scene import spoken

    text = draft.text.lower()
    return [o.name for o in draft.evidence.objects if spoken(o.name).split()[-1] in text or o.name in text]


def _output(system: str, sample: Sample, models: Sequence[str], results_by_model: dict, k: int,
            nlp_mode: str = "auto") -> dict:
    if system == CAPTION_ONLY:
        return {"alt": policy.plain_text(sample.caption), "needs_review": None}
    if system == SUBJECT_ONLY:
        return {"alt": _subject_only(sample.caption, nlp_mode), "needs_review": None}
    result = results_by_model[_model_of(system, models)][k]
    draft = result.draft
    if system.startswith(DRAFT_ONLY):
        return {"alt": " ".join((draft.text if draft else "").split()), "needs_review": None,
                "confidence": round(draft.confidence, 4) if draft else None,
                "kind": draft.evidence.kind if draft else None,
                "named": _named_classes(draft) if draft else []}
    return {"alt": result.alt, "needs_review": result.needs_review, "warnings": list(result.warnings),
            "confidence": round(result.confidence, 4), "source": result.source,
            "long_description": result.long_description}


def _write(out_dir: Path, results: dict, rows: list[dict]) -> None:
    with (out_dir / "samples.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        for error in results["dataset"]["errors"]:
            fh.write(json.dumps({"id": error["id"], "image": error["image"], "error": error}, ensure_ascii=False) + "\n")
