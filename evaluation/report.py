"""report.md (side-by-side tables) and report.html (a self-contained gallery, worst first).

Every dataset or model string is escaped before it reaches HTML; the page's only script
reads JSON from data attributes and toggles ``hidden``; it never writes markup.
"""
from __future__ import annotations

import html
import json
from collections import Counter

from evaluation import metrics as M

LABELS = {
    "length_mean": "mean length (chars)",
    "length_max": "max length (chars)",
    "within_budget": "within length budget",
    "credit_leak": "credit-line leakage",
    "banned_opener": "banned opener",
    "caption_duplicate": "duplicates the caption",
    "empty_alt": "empty alt on informative image",
    "fragment": "fragment (not a sentence or clean noun phrase)",
    "needs_review": "marked needs_review",
}
SHARES = {"within_budget", "credit_leak", "banned_opener", "caption_duplicate", "empty_alt", "fragment", "needs_review"}
PAIRED_COLUMNS = ["BLEU-4", "METEOR", "ROUGE-L", "CIDEr", "CLIPScore", "RefCLIPScore"]
GALLERY_SCORES = ["CIDEr", "BLEU-4", "METEOR", "ROUGE-L", "CLIPScore"]


def _fmt(name: str, value: float | None) -> str:
    if value is None:
        return "–"
    if name in SHARES:
        return f"{100 * value:.1f}%"
    if name.startswith("length"):
        return f"{value:.1f}"
    return f"{value:.3f}"


def _fmt_interval(name: str, interval) -> str:
    if not interval:
        return ""
    lo, hi = interval
    if name in SHARES:
        return f"[{100 * lo:.1f}, {100 * hi:.1f}]"
    if name.startswith("length"):
        return f"[{lo:.1f}, {hi:.1f}]"
    return f"[{lo:.3f}, {hi:.3f}]"


def cell(name: str, metric: dict) -> str:
    if metric.get("skipped"):
        return "skipped"
    text = _fmt(name, metric["value"])
    interval = _fmt_interval(name, metric.get("interval"))
    return f"{text} {interval}".strip()


def _label(name: str, results: dict) -> str:
    label = LABELS.get(name, name)
    if name == "within_budget":
        label += f" (≤ {results['config']['merge']['max_chars']} chars)"
    arrow = "↓" if name in M.LOWER_IS_BETTER else ("" if name == "length_mean" else "↑")
    return f"{label} {arrow}".strip()


def _skip_notes(results: dict, names: list[str]) -> list[str]:
    seen = {}
    for system, body in results["systems"].items():
        for name in names:
            reason = body["metrics"][name].get("skipped")
            if reason:
                seen.setdefault((name, reason), []).append(system)
    return [f"{name} for {', '.join(systems)}: {reason}" for (name, reason), systems in seen.items()]


def summary_lines(results: dict) -> list[str]:
    ds, cfg = results["dataset"], results["config"]
    models = results["versions"].get("models", {})
    model_text = "; ".join(f"{m['id']} ({m['backend']}, revision {m.get('revision') or 'none'})"
                           for m in models.values()) or "none (caption-only)"
    return [
        (f"{ds['scored']} images scored out of {ds['images']} ({len(ds['errors'])} unreadable); "
         f"{ds['with_references']} with references, {ds['with_caption']} with a caption, "
         f"{ds['with_context']} with context."),
        f"Drafter: {model_text}.",
        f"Merge settings: max_chars={cfg['merge']['max_chars']}, review_below={cfg['merge']['review_below']}, "
        f"caption {'shown beside the image' if cfg['merge'].get('caption_visible', True) else 'not shown on the page'}.",
        (f"Bootstrap: {results['bootstrap']['resamples']} resamples of images, seed {results['bootstrap']['seed']}, "
         f"{round(100 * results['bootstrap']['confidence'])}% percentile intervals in brackets."),
    ]


def markdown(results: dict) -> str:
    systems = list(results["systems"])
    ds, cfg = results["dataset"], results["config"]
    out = [f"# alttext evaluation: {ds['name']} ({ds['split']})", ""]
    out += summary_lines(results)
    out += ["", f"Dataset file: `{ds['file']}` (sha256 `{ds['sha256'][:16]}…`).", ""]
    if cfg.get("command"):
        out += ["Command:", "", "```", cfg["command"], "```", ""]

    header = "| metric | " + " | ".join(systems) + " |"
    rule = "|---|" + "---|" * len(systems)
    out += ["## Reference metrics (higher is better)", "", header, rule]
    for name in [*M.REFERENCE_METRICS, *M.CLIP_METRICS]:
        out.append(f"| {name} | " + " | ".join(cell(name, results["systems"][s]["metrics"][name]) for s in systems)
                   + " |")
    out += ["", "## Policy metrics (reference-free, every image)", "", header, rule]
    for name in M.POLICY_METRICS:
        out.append(f"| {_label(name, results)} | "
                   + " | ".join(cell(name, results["systems"][s]["metrics"][name]) for s in systems) + " |")

    columns = [c for c in PAIRED_COLUMNS if any(c in comp["metrics"] for comp in results["comparisons"])]
    if results["comparisons"] and columns:
        out += ["", "## Paired bootstrap tests", "",
                ("Difference a − b with its interval and one-sided p (share of resamples where the difference "
                 "vanishes or flips sign)."), "",
                "| a − b | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
        for comp in results["comparisons"]:
            cells = []
            for c in columns:
                m = comp["metrics"].get(c)
                if not m:
                    cells.append("–")
                    continue
                interval = f" [{m['interval'][0]:+.3f}, {m['interval'][1]:+.3f}]" if m.get("interval") else ""
                p = f" p={m['p_value']:.3f}" if m.get("p_value") is not None else ""
                cells.append(f"{m['diff']:+.3f}{interval}{p}")
            out.append(f"| {comp['a']} − {comp['b']} | " + " | ".join(cells) + " |")

    out += calibration_markdown(results)
    out += ["", "## Notes", ""]
    out += ["- Systems: " + "; ".join(f"`{s}`: {body['description']}" for s, body in results["systems"].items())]
    out += [f"- Bootstrap: {results['bootstrap']['method']}"]
    notes = results["notes"]
    if notes.get("tokenizer"):
        out.append(f"- Tokenizer: {notes['tokenizer']}; {notes.get('cider', '')}.")
    out += [f"- Skipped: {line}" for line in _skip_notes(results, [*M.REFERENCE_METRICS, *M.CLIP_METRICS,
                                                                   *M.POLICY_METRICS])]
    if ds["with_caption"] == 0 and "caption-only" in results["systems"]:
        out.append("- This set has no captions, so `caption-only` outputs are empty and score 0 "
                   "(a lower bound, not a bug).")
    if ds["errors"]:
        out.append("- Unreadable images (left out): " + ", ".join(f"{e['id']} ({e['code']})" for e in ds["errors"]))
    cache = results["cache"]
    out.append(f"- Draft cache: {'on' if cache['enabled'] else 'off'}, {cache['hits']} hits, "
               f"{cache['misses']} drafts computed.")
    out.append("- Timing (s): " + ", ".join(f"{k.removesuffix('_s')} {v}" for k, v in results["timing"].items()))
    versions = results["versions"]
    out.append("- Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()
                                          if k != "models" and v is not None))
    return "\n".join(out) + "\n"


def calibration_markdown(results: dict) -> list[str]:
    """AUROC and a reliability table for each drafter's confidence (when references name things)."""
    out = []
    for system, cal in results.get("calibration", {}).items():
        auroc = f"{cal['auroc']:.3f}" if cal.get("auroc") is not None else "n/a (one class empty)"
        one = cal["names_a_referenced_thing"]
        one_auroc = f"{one['auroc']:.3f}" if one.get("auroc") is not None else "n/a (one class empty)"
        out += ["", f"## Confidence calibration ({system})", "",
                f"Does `{system}` confidence say when the draft is right? Target: {cal['target']} "
                f"({cal['positives']} of {cal['n']} drafts that name a detected thing). "
                f"AUROC **{auroc}**. For \"names at least one thing a reference names\" "
                f"({one['positives']} of {cal['n']}): AUROC {one_auroc}. Synonyms per evaluation/mentions.py.",
                "", "| confidence bin | drafts | mean confidence | share right |", "|---|---|---|---|"]
        out += [f"| {b['low']:.1f}–{b['high']:.1f} | {b['n']} | {b['confidence']:.3f} | {b['accuracy']:.3f} |"
                for b in cal["reliability"]]
    return out


def reliability_svg(system: str, cal: dict) -> str:
    """A reliability plot: mean confidence (x) against the share right (y) per bin, with the
    diagonal of perfect calibration; dot area grows with the number of drafts."""
    size, pad = 220, 30
    span = size - 2 * pad

    def xy(c: float, a: float) -> tuple[float, float]:
        return pad + c * span, size - pad - a * span

    dots = []
    for b in cal["reliability"]:
        x, y = xy(b["confidence"], b["accuracy"])
        r = 3 + min(9, b["n"] ** 0.5)
        dots.append(f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{r:.1f}' fill='#1f4e9c' fill-opacity='0.8'/>")
    x0, y0 = xy(0, 0)
    x1, y1 = xy(1, 1)
    auroc = f"{cal['auroc']:.3f}" if cal.get("auroc") is not None else "n/a"
    label = (f"Reliability plot for {system}: share of drafts that are right against mean confidence, "
             f"per confidence bin; AUROC {auroc}. The same numbers are in the table below.")
    return (f"<svg width='{size}' height='{size}' viewBox='0 0 {size} {size}' role='img' aria-label='{_e(label)}'>"
            f"<rect x='{pad}' y='{pad}' width='{span}' height='{span}' fill='#fff' stroke='#555'/>"
            f"<line x1='{x0}' y1='{y0}' x2='{x1}' y2='{y1}' stroke='#555' stroke-dasharray='4 3'/>"
            + "".join(dots)
            + f"<text x='{size / 2}' y='{size - 8}' text-anchor='middle' font-size='11' fill='#1b1b1b'>confidence</text>"
            f"<text x='10' y='{size / 2}' text-anchor='middle' font-size='11' fill='#1b1b1b' "
            f"transform='rotate(-90 10 {size / 2})'>share right</text></svg>")


def _calibration_html(results: dict) -> str:
    parts = []
    for system, cal in results.get("calibration", {}).items():
        rows = "".join(f"<tr><td>{b['low']:.1f}–{b['high']:.1f}</td><td class='num'>{b['n']}</td>"
                       f"<td class='num'>{b['confidence']:.3f}</td><td class='num'>{b['accuracy']:.3f}</td></tr>"
                       for b in cal["reliability"])
        auroc = f"{cal['auroc']:.3f}" if cal.get("auroc") is not None else "n/a"
        parts.append(
            f"<section aria-labelledby='cal-{_e(system)}'><h2 id='cal-{_e(system)}'>Confidence calibration "
            f"({_e(system)})</h2><p>Target: {_e(cal['target'])} ({cal['positives']} of {cal['n']}); "
            f"AUROC {auroc}.</p>{reliability_svg(system, cal)}"
            f"<table><caption>Reliability by confidence bin</caption><thead><tr><th scope='col'>bin</th>"
            f"<th scope='col'>drafts</th><th scope='col'>mean confidence</th><th scope='col'>share right</th>"
            f"</tr></thead><tbody>{rows}</tbody></table></section>")
    return "".join(parts)


# --- HTML gallery -------------------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1b1b1b;background:#fafafa}
h1{font-size:1.4rem}h2{font-size:1rem;margin:.2rem 0}
table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;padding:.2rem .4rem;vertical-align:top}
th{background:#eee;text-align:left}
.summary td{white-space:nowrap}
.controls{position:sticky;top:0;background:#fafafa;padding:.5rem 0;border-bottom:1px solid #ccc;z-index:1}
.card{display:flex;gap:1rem;background:#fff;border:1px solid #ddd;border-radius:6px;padding:.75rem;margin:.75rem 0}
.card[hidden]{display:none}
.thumb{flex:0 0 160px}.thumb img{max-width:160px;max-height:160px;border:1px solid #ccc}
.nothumb{width:160px;height:100px;background:#eee;color:#555;display:flex;align-items:center;
justify-content:center;text-align:center;font-size:12px}
.main{flex:1;min-width:0}.refs{margin:.2rem 0 .4rem 1.2rem;padding:0;color:#333}
.caption{color:#333}.muted{color:#666}.out{max-width:48rem}
.flag{display:inline-block;background:#fde2e1;color:#8a1c13;border-radius:3px;padding:0 .3rem;margin:1px;
font-size:12px}
.warn{background:#fff1c2;color:#6b4e00}
td.num{text-align:right;font-variant-numeric:tabular-nums}
"""

_JS = """
(function(){
var flag=document.getElementById('flag'),sys=document.getElementById('sys'),shown=document.getElementById('shown');
var cards=Array.prototype.slice.call(document.querySelectorAll('.card'));
function apply(){
 var f=flag.value,s=sys.value,n=0;
 cards.forEach(function(c){
  var pairs=JSON.parse(c.getAttribute('data-flags'));
  var ok=!f||pairs.some(function(p){return (!s||p[0]===s)&&(f==='*'||p[1]===f);});
  c.hidden=!ok; if(ok){n++;}
 });
 shown.textContent=n+' of '+cards.length+' images shown';
}
flag.addEventListener('change',apply);sys.addEventListener('change',apply);apply();
})();
"""


def _e(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def primary_system(systems: list[str]) -> str:
    if "merged" in systems:
        return "merged"
    models = [s for s in systems if s not in ("caption-only", "subject-only")]
    return models[-1] if models else systems[0]


def worst_first(rows: list[dict], systems: list[str]) -> tuple[list[int], str]:
    """Order of rows, worst first, and how it was decided."""
    primary = primary_system(systems)

    def score(i: int):
        scores = rows[i]["systems"][primary].get("scores", {})
        for name in ("CIDEr", "CLIPScore"):
            if scores.get(name) is not None:
                return (0, scores[name])
        return (1, 0.0)

    key_name = "CIDEr"
    if all(rows[i]["systems"][primary].get("scores", {}).get("CIDEr") is None for i in range(len(rows))):
        key_name = "CLIPScore" if any(rows[i]["systems"][primary].get("scores", {}).get("CLIPScore") is not None
                                      for i in range(len(rows))) else "number of flags"
    order = sorted(range(len(rows)), key=lambda i: (*score(i), -len(_pairs(rows[i])), rows[i]["id"]))
    return order, f"{primary} {key_name}, lowest first (ties: more flags first)"


def _pairs(row: dict) -> list[list[str]]:
    pairs = []
    for system, out in row["systems"].items():
        for code in dict.fromkeys([*out.get("flags", []), *out.get("warnings", [])]):
            pairs.append([system, code])
    return pairs


def _summary_table(results: dict) -> str:
    systems = list(results["systems"])
    head = "".join(f"<th scope='col'>{_e(s)}</th>" for s in systems)
    body = []
    for name in [*M.REFERENCE_METRICS, *M.CLIP_METRICS, *M.POLICY_METRICS]:
        label = name if name in M.REFERENCE_METRICS or name in M.CLIP_METRICS else _label(name, results)
        cells = "".join(f"<td>{_e(cell(name, results['systems'][s]['metrics'][name]))}</td>" for s in systems)
        body.append(f"<tr><th scope='row'>{_e(label)}</th>{cells}</tr>")
    return f"<table class='summary'><tr><th>metric</th>{head}</tr>{''.join(body)}</table>"


def _score(value) -> str:
    return "" if value is None else f"{value:.3f}"


def _card(row: dict, thumb: str | None, rank: int) -> str:
    pairs = _pairs(row)
    if thumb:
        img = f"<img src='{_e(thumb)}' alt='Image {_e(row['id'])}' loading='lazy'>"
    else:
        img = "<div class='nothumb'>thumbnail not embedded</div>"
    caption = row.get("caption") or ""
    cap_html = (f"<p class='caption'><b>Caption:</b> {_e(caption[:600])}{'…' if len(caption) > 600 else ''}</p>"
                if caption else "<p class='muted'>No caption.</p>")
    context = row.get("context") or ""
    ctx_html = f"<details><summary>Context</summary><p>{_e(context)}</p></details>" if context else ""
    refs = row.get("references") or []
    refs_html = ("<ol class='refs'>" + "".join(f"<li>{_e(r)}</li>" for r in refs) + "</ol>") if refs \
        else "<p class='muted'>No reference (reference-free checks only).</p>"
    score_names = [n for n in GALLERY_SCORES
                   if any(out.get("scores", {}).get(n) is not None for out in row["systems"].values())]
    head = "".join(f"<th>{_e(n)}</th>" for n in score_names)
    lines = []
    for system, out in row["systems"].items():
        values = out.get("scores", {})
        scores = "".join(f"<td class='num'>{_score(values.get(n))}</td>" for n in score_names)
        flags = "".join(f"<span class='flag'>{_e(f)}</span>" for f in out.get("flags", []))
        flags += "".join(f"<span class='flag warn'>{_e(w)}</span>" for w in out.get("warnings", [])
                         if w not in out.get("flags", []))
        alt = out.get("alt") or ""
        alt_html = _e(alt) if alt else "<span class='muted'>(empty)</span>"
        lines.append(f"<tr><th scope='row'>{_e(system)}</th><td class='out'>{alt_html}</td>{scores}<td>{flags}</td></tr>")
    table = (f"<table><tr><th>system</th><th>output</th>{head}<th>flags</th></tr>{''.join(lines)}</table>")
    return (f"<article class='card' id='s-{_e(row['id'])}' data-flags='{_e(json.dumps(pairs))}'>"
            f"<div class='thumb'>{img}</div><div class='main'><h2>#{rank} · {_e(row['id'])}</h2>"
            f"{cap_html}{ctx_html}<b>References</b>{refs_html}{table}</div></article>")


def html_report(results: dict, rows: list[dict], thumbs: list[str | None]) -> str:
    systems = list(results["systems"])
    ds = results["dataset"]
    order, order_note = worst_first(rows, systems)
    counts = Counter(code for row in rows for code in {p[1] for p in _pairs(row)})
    options = "".join(f"<option value='{_e(code)}'>{_e(code)} ({n})</option>" for code, n in sorted(counts.items()))
    sys_options = "".join(f"<option value='{_e(s)}'>{_e(s)}</option>" for s in systems)
    any_count = sum(1 for row in rows if _pairs(row))
    cards = "".join(_card(rows[i], thumbs[i] if i < len(thumbs) else None, rank + 1) for rank, i in enumerate(order))
    summary = "".join(f"<p>{_e(line)}</p>" for line in summary_lines(results))
    command = f"<p>Command: <code>{_e(results['config'].get('command'))}</code></p>" \
        if results["config"].get("command") else ""
    title = f"alttext evaluation: {ds['name']} ({ds['split']})"
    thumb_note = {"embed": "", "link": " Thumbnails link to the dataset's image files (not embedded).",
                  "none": " Thumbnails were not embedded (--thumbnails none)."}[results["config"]["thumbnails"]]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>{_e(title)}</title><style>{_CSS}</style></head>
<body><header><h1>{_e(title)}</h1>{summary}{command}
{_summary_table(results)}
{_calibration_html(results)}</header>
<div class="controls" role="search">
<label>Flag or warning <select id="flag"><option value="">all images</option>
<option value="*">any flag ({any_count})</option>{options}</select></label>
<label>in system <select id="sys"><option value="">any system</option>{sys_options}</select></label>
<span id="shown" aria-live="polite"></span></div>
<main><p class="muted">Sorted worst first by {_e(order_note)}.{_e(thumb_note)}</p>{cards}</main>
<script>{_JS}</script></body></html>
"""
