"""Reference metrics (pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L, CIDEr) and policy metrics.

Every text goes through the PTB tokenizer once (pycocoevalcap's bundled Stanford jar,
one Java process for all systems and references); METEOR runs one Java process for
all systems. Each metric yields a ``Metric``: the corpus value, per-image scores (for
the gallery and ``samples.jsonl``), and one value per bootstrap resample (see
``evaluation.stats``). Without Java, a Python tokenizer stands in for PTB and METEOR
is skipped with the reason recorded.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np

from evaluation import stats

BLEU = ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"]
REFERENCE_METRICS = [*BLEU, "METEOR", "ROUGE-L", "CIDEr"]
CLIP_METRICS = ["CLIPScore", "RefCLIPScore"]
POLICY_METRICS = [
    "length_mean", "length_max", "within_budget", "credit_leak", "banned_opener",
    "caption_duplicate", "empty_alt", "fragment", "needs_review",
]
# Lower is better for these (the report marks direction).
LOWER_IS_BETTER = {"credit_leak", "banned_opener", "caption_duplicate", "empty_alt", "fragment", "needs_review",
                   "length_max"}
PUNCTUATION = {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?", "!", ",", ":", "-", "--",
               "...", ";"}
JAVA_TIMEOUT_S = 600


@dataclass
class Metric:
    value: float | None
    per_sample: np.ndarray            # NaN where the metric does not apply to an image
    resampled: np.ndarray | None      # one value per bootstrap resample
    method: str = "mean"              # "corpus", "mean", "max"
    n: int = 0                        # images it was computed on
    skipped: str | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def skip(cls, reason: str, n_images: int) -> Metric:
        return cls(value=None, per_sample=np.full(n_images, np.nan), resampled=None, method="skipped",
                   skipped=reason)


def mean_metric(per_sample: Sequence[float | None], counts: np.ndarray) -> Metric:
    arr = np.array([np.nan if v is None else v for v in per_sample], dtype=np.float64)
    n = int((~np.isnan(arr)).sum())
    if n == 0:
        return Metric(value=None, per_sample=arr, resampled=None, method="mean", n=0,
                      skipped="not applicable to any image")
    return Metric(value=float(np.nanmean(arr)), per_sample=arr, resampled=stats.weighted_mean(arr, counts),
                  method="mean", n=n)


def max_metric(per_sample: Sequence[float], counts: np.ndarray) -> Metric:
    arr = np.asarray(per_sample, dtype=np.float64)
    if arr.size == 0:
        return Metric(value=None, per_sample=arr, resampled=None, method="max", n=0, skipped="no images")
    return Metric(value=float(np.nanmax(arr)), per_sample=arr, resampled=stats.weighted_max(arr, counts),
                  method="max", n=int(arr.size))


# --- tokenization -------------------------------------------------------------------------------------------

def java_available() -> bool:
    return shutil.which("java") is not None


def java_version() -> str | None:
    if not java_available():
        return None
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (out.stderr or out.stdout).strip().splitlines()
    return lines[0] if lines else None


_SPACE = re.compile(r"\s+", re.UNICODE)


def _one_line(text: str) -> str:
    # Java's line reader also breaks on \r, \u2028, \u0085...: every such character becomes a space.
    text = "".join(" " if (ord(ch) < 32 or 0x7F <= ord(ch) < 0xA0) else ch for ch in text or "")
    return _SPACE.sub(" ", text).strip()


def _pycocoevalcap_dir() -> Path:
    import pycocoevalcap.bleu.bleu as module  # pycocoevalcap is a namespace package: locate it by a module

    return Path(module.__file__).resolve().parent.parent


def ptb_tokenize(texts: Sequence[str]) -> list[str]:
    """PTB-tokenize, lowercase and drop punctuation, as pycocoevalcap's PTBTokenizer does
    (same jar and flags), in one Java process, reading stdin instead of a temp file in site-packages."""
    if not texts:
        return []
    jar = _pycocoevalcap_dir() / "tokenizer" / "stanford-corenlp-3.4.1.jar"
    lines = [_one_line(t) for t in texts] + ["end of input"]
    proc = subprocess.run(
        ["java", "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase",
         "-encoding", "utf-8"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, encoding="utf-8", timeout=JAVA_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"PTB tokenizer failed: {proc.stderr.strip()[:500]}")
    out = proc.stdout.split("\n")
    if len(out) < len(lines) or out[len(lines) - 1].strip() != "end of input":
        raise RuntimeError(f"PTB tokenizer returned {len(out)} lines for {len(lines)} inputs")
    return [" ".join(w for w in line.rstrip().split(" ") if w and w not in PUNCTUATION) for line in out[:len(texts)]]


_PY_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|n't|'s|[^\s\w]", re.UNICODE)


def simple_tokenize(texts: Sequence[str]) -> list[str]:
    """Stand-in for PTB when Java is missing: lowercase word tokens, punctuation dropped."""
    out = []
    for text in texts:
        words = _PY_TOKEN.findall(_one_line(text).lower())
        out.append(" ".join(w for w in words if w not in PUNCTUATION and re.search(r"\w", w)))
    return out


def tokenize(texts: Sequence[str]) -> tuple[list[str], str]:
    if java_available():
        return ptb_tokenize(texts), "PTB (Stanford CoreNLP 3.4.1, pycocoevalcap)"
    return simple_tokenize(texts), "python regex (Java not found; scores differ slightly from PTB)"


# --- BLEU ---------------------------------------------------------------------------------------------------

_TINY, _SMALL = 1e-15, 1e-9


def bleu_stats(hyps: Sequence[str], refs: Sequence[Sequence[str]], n: int = 4) -> np.ndarray:
    """Per image: testlen, closest reflen, guess[1..n], correct[1..n] (pycocoevalcap's BleuScorer)."""
    from pycocoevalcap.bleu.bleu_scorer import cook_refs, cook_test

    rows = np.zeros((len(hyps), 2 + 2 * n), dtype=np.float64)
    for i, (hyp, ref) in enumerate(zip(hyps, refs)):
        comps = cook_test(hyp, cook_refs(ref, n=n), n=n)
        testlen = comps["testlen"]
        reflen = min((abs(length - testlen), length) for length in comps["reflen"])[1]
        rows[i] = [testlen, reflen, *comps["guess"], *comps["correct"]]
    return rows


def bleu_from_stats(totals: np.ndarray, n: int = 4) -> np.ndarray:
    """Corpus BLEU-1..n from summed stats (last axis as in bleu_stats); same arithmetic as BleuScorer."""
    totals = np.asarray(totals, dtype=np.float64)
    testlen, reflen = totals[..., 0], totals[..., 1]
    guess, correct = totals[..., 2:2 + n], totals[..., 2 + n:2 + 2 * n]
    ratios = (correct + _TINY) / (guess + _SMALL)
    cumulative = np.cumprod(ratios, axis=-1)
    bleus = cumulative ** (1.0 / np.arange(1, n + 1))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    penalty = np.where(ratio < 1, np.exp(1 - 1 / np.where(ratio < 1, ratio, 1)), 1.0)
    return bleus * penalty[..., None]


def bleu_metrics(hyps: Sequence[str], refs: Sequence[Sequence[str]], counts: np.ndarray) -> dict[str, Metric]:
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer

    scorer = BleuScorer(n=4)
    for hyp, ref in zip(hyps, refs):
        scorer += (hyp, list(ref))
    corpus, per_image = scorer.compute_score(option="closest", verbose=0)
    rows = bleu_stats(hyps, refs)
    check = bleu_from_stats(rows.sum(axis=0))
    if not np.allclose(check, corpus, rtol=1e-9, atol=1e-12):  # pragma: no cover - guards the reimplementation
        raise AssertionError(f"BLEU statistics disagree with pycocoevalcap: {check} vs {corpus}")
    resampled = bleu_from_stats(counts.astype(np.float64) @ rows)  # (B, 4)
    return {
        name: Metric(value=float(corpus[k]), per_sample=np.asarray(per_image[k], dtype=np.float64),
                     resampled=resampled[:, k], method="corpus", n=len(hyps))
        for k, name in enumerate(BLEU)
    }


# --- METEOR -------------------------------------------------------------------------------------------------

# Meteor 1.5 defaults for English (task "default"): alpha, beta, gamma, delta; module weights
# for exact, stem, synonym, paraphrase. Used only to re-aggregate the jar's own statistics.
_ALPHA, _BETA, _GAMMA, _DELTA = 0.85, 0.20, 0.60, 0.75
_MODULE_WEIGHTS = np.array([1.0, 0.6, 0.8, 0.6])


def meteor_from_stats(s: np.ndarray) -> np.ndarray:
    """Meteor score from its 23 sufficient statistics (last axis), as MeteorScorer.computeMetrics."""
    s = np.asarray(s, dtype=np.float64)
    tl, rl, tf, rf = s[..., 0], s[..., 1], s[..., 2], s[..., 3]
    stages = s[..., 4:20].reshape(s.shape[:-1] + (4, 4))
    tc, rc, tfm, rfm = stages[..., 0], stages[..., 1], stages[..., 2], stages[..., 3]
    chunks, twm, rwm = s[..., 20], s[..., 21], s[..., 22]
    with np.errstate(all="ignore"):
        t_len = _DELTA * (tl - tf) + (1 - _DELTA) * tf
        r_len = _DELTA * (rl - rf) + (1 - _DELTA) * rf
        t_match = (tc * _MODULE_WEIGHTS).sum(-1) * _DELTA + (tfm * _MODULE_WEIGHTS).sum(-1) * (1 - _DELTA)
        r_match = (rc * _MODULE_WEIGHTS).sum(-1) * _DELTA + (rfm * _MODULE_WEIGHTS).sum(-1) * (1 - _DELTA)
        precision, recall = t_match / t_len, r_match / r_len
        fmean = 1.0 / ((1 - _ALPHA) / precision + _ALPHA / recall)
        frag = np.where(_perfect(s), 0.0, chunks / ((twm + rwm) / 2))
        score = fmean * (1 - _GAMMA * frag ** _BETA)
    return np.where(np.isnan(score), 0.0, np.maximum(score, 0.0))


def _perfect(s: np.ndarray) -> np.ndarray:
    stages = s[..., 4:20].reshape(s.shape[:-1] + (4, 4))
    t_total = stages[..., 0].sum(-1) + stages[..., 2].sum(-1)
    r_total = stages[..., 1].sum(-1) + stages[..., 3].sum(-1)
    return (t_total == s[..., 0]) & (r_total == s[..., 1]) & (s[..., 20] == 1)


def meteor_aggregable(s: np.ndarray) -> np.ndarray:
    """Per-image stats as the jar sums them for a corpus score: perfect matches add no chunks."""
    s = np.array(s, dtype=np.float64)
    s[_perfect(s), 20] = 0
    return s


class MeteorJar:
    """pycocoevalcap's meteor-1.5.jar (same flags as its Meteor class) over stdio, pipelined:
    a writer thread feeds lines while the caller reads answers, so large sets do not
    pay one round trip per image and the pipes cannot deadlock."""

    def __init__(self) -> None:
        jar_dir = _pycocoevalcap_dir() / "meteor"
        self._proc = subprocess.Popen(
            ["java", "-jar", "-Xmx2G", "meteor-1.5.jar", "-", "-", "-stdio", "-l", "en", "-norm"],
            cwd=jar_dir, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )

    def _ask(self, lines: list[str], answers_per_line: list[int]) -> list[str]:
        error: list[Exception] = []

        def write() -> None:
            try:
                for line in lines:
                    self._proc.stdin.write((line + "\n").encode("utf-8"))
                self._proc.stdin.flush()
            except (OSError, ValueError) as exc:  # pragma: no cover - surfaced below
                error.append(exc)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        out = []
        for _ in range(sum(answers_per_line)):
            raw = self._proc.stdout.readline()
            if not raw:
                raise RuntimeError("METEOR process ended early")
            out.append(raw.decode("utf-8").strip())
        writer.join()
        if error:
            raise RuntimeError(f"METEOR input failed: {error[0]}")
        return out

    @staticmethod
    def _clean(text: str) -> str:
        return " ".join(_one_line(text).replace("|||", " ").split())

    def stats(self, hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> list[str]:
        lines = [" ||| ".join(["SCORE", *(self._clean(r) for r in ref), self._clean(hyp)])
                 for hyp, ref in zip(hyps, refs)]
        return self._ask(lines, [1] * len(lines))

    def evaluate(self, stat_lines: Sequence[str]) -> tuple[float, list[float]]:
        answers = self._ask(["EVAL ||| " + " ||| ".join(stat_lines)], [len(stat_lines) + 1])
        return float(answers[-1]), [float(a) for a in answers[:-1]]

    def close(self) -> None:
        """Stop the jar (it keeps no state worth a clean exit)."""
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout):
            try:
                stream.close()
            except OSError:
                pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def meteor_metric(jar: MeteorJar, hyps: Sequence[str], refs: Sequence[Sequence[str]], counts: np.ndarray) -> Metric:
    lines = jar.stats(hyps, refs)
    corpus, per_image = jar.evaluate(lines)
    raw = np.array([[float(x) for x in line.split()] for line in lines], dtype=np.float64)
    aggregable = meteor_aggregable(raw)
    mine = float(meteor_from_stats(aggregable.sum(axis=0)))
    if abs(mine - corpus) <= 1e-6:
        resampled, method = meteor_from_stats(counts.astype(np.float64) @ aggregable), "corpus"
    else:  # pragma: no cover - a different jar or settings: fall back to the per-image mean
        resampled, method = stats.weighted_mean(np.asarray(per_image), counts), "mean"
    return Metric(value=corpus, per_sample=np.asarray(per_image, dtype=np.float64), resampled=resampled,
                  method=method, n=len(hyps))


# --- all reference metrics ----------------------------------------------------------------------------------

def reference_metrics(
    hyps_by_system: Mapping[str, Sequence[str]],
    references: Sequence[Sequence[str]],
    counts: np.ndarray,
    meteor: MeteorJar | None = None,
) -> tuple[dict[str, dict[str, Metric]], dict]:
    """Score every system against the references, on the images that have references.

    ``counts`` is the bootstrap plan over all images; images without references get NaN
    per-image scores and are left out of the corpus values. Returns per-system metrics
    and notes (tokenizer, METEOR availability). ``meteor``: a jar process started earlier
    (it loads its paraphrase table for seconds, so callers start it before drafting); it is
    closed here either way.
    """
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    n_images = len(references)
    keep = [i for i, refs in enumerate(references) if refs]
    systems = list(hyps_by_system)
    notes: dict = {"images_with_references": len(keep)}
    if not keep:
        if meteor is not None:
            meteor.close()
        reason = "skipped: no image in this set has a reference (reference-free checks only)"
        notes["reference_metrics"] = reason
        return {s: {m: Metric.skip(reason, n_images) for m in REFERENCE_METRICS} for s in systems}, notes

    # One tokenizer run for references and every system's outputs.
    flat_refs = [r for i in keep for r in references[i]]
    flat_hyps = [hyps_by_system[s][i] for s in systems for i in keep]
    tokens, notes["tokenizer"] = tokenize(flat_refs + flat_hyps)
    tok_refs, offset = [], 0
    for i in keep:
        tok_refs.append(tokens[offset:offset + len(references[i])])
        offset += len(references[i])
    tok_hyps = {}
    for s in systems:
        tok_hyps[s] = tokens[offset:offset + len(keep)]
        offset += len(keep)

    sub_counts = counts[:, keep]
    gts = {str(k): tok_refs[k] for k in range(len(keep))}
    out: dict[str, dict[str, Metric]] = {}
    jar = meteor or (MeteorJar() if java_available() else None)
    if jar is None:
        notes["METEOR"] = "skipped: Java not found (METEOR needs the bundled meteor-1.5.jar)"
    try:
        for s in systems:
            hyps = tok_hyps[s]
            res = {str(k): [hyps[k]] for k in range(len(keep))}
            metrics = bleu_metrics(hyps, tok_refs, sub_counts)
            metrics["METEOR"] = (meteor_metric(jar, hyps, tok_refs, sub_counts) if jar
                                 else Metric.skip(notes["METEOR"], len(keep)))
            _, rouge = Rouge().compute_score(gts, res)
            metrics["ROUGE-L"] = mean_metric(list(np.asarray(rouge, dtype=np.float64)), sub_counts)
            _, cider = Cider().compute_score(gts, res)
            metrics["CIDEr"] = mean_metric(list(np.asarray(cider, dtype=np.float64)), sub_counts)
            out[s] = {name: _spread(metrics[name], keep, n_images) for name in REFERENCE_METRICS}
    finally:
        if jar is not None:
            jar.close()
    return out, notes


def _spread(metric: Metric, keep: list[int], n_images: int) -> Metric:
    """Per-image scores back onto all images (NaN where no reference)."""
    full = np.full(n_images, np.nan)
    if metric.per_sample is not None and len(metric.per_sample) == len(keep):
        full[keep] = metric.per_sample
    metric.per_sample = full
    return metric


# --- policy metrics -----------------------------------------------------------------------------------------

def policy_metrics(per_image: Sequence[Mapping[str, float | None]], counts: np.ndarray) -> dict[str, Metric]:
    """Aggregate evaluation.policy.values() rows: means (shares) and the max length."""
    out = {}
    column = lambda key: [row[key] for row in per_image]
    out["length_mean"] = mean_metric(column("length"), counts)
    out["length_max"] = max_metric(column("length"), counts)
    for key in ("within_budget", "credit_leak", "banned_opener", "caption_duplicate", "empty_alt", "fragment",
                "needs_review"):
        metric = mean_metric(column(key), counts)
        if metric.skipped and key == "needs_review":
            metric.skipped = "not applicable: this system has no needs_review flag"
        elif metric.skipped and key == "caption_duplicate":
            metric.skipped = "not applicable: no image in this set has a caption"
        out[key] = metric
    return out

