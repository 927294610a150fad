"""Report writers: JSON (the AuditReport as is), SARIF 2.1.0 (code hosts and CI show each
finding on the page's source file and line) and a self-contained HTML report (thumbnails,
filters by rule and page, the proposed fix beside the current alt)."""
from __future__ import annotations

import base64
import hashlib
import html
import json
import mimetypes
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from service.audit.model import AuditReport, Finding
from service.audit.rules import RULES, SEVERITIES

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVEL = {"critical": "error", "serious": "error", "moderate": "warning", "minor": "note"}
_WCAG_SLUG = {"1.1.1": "non-text-content", "2.4.4": "link-purpose-in-context", "4.1.2": "name-role-value",
              "3.1.2": "language-of-parts", "3.2.4": "consistent-identification"}


def wcag_url(criterion: str) -> str:
    slug = _WCAG_SLUG.get(criterion)
    return f"https://www.w3.org/WAI/WCAG22/Understanding/{slug}.html" if slug else "https://www.w3.org/TR/WCAG22/"


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("alttext")
    except Exception:  # pragma: no cover - not installed as a distribution
        return "0"


def to_json(report: AuditReport) -> str:
    return json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


# --- SARIF ------------------------------------------------------------------------------------


def _artifact_uri(page: str, base: Path | None) -> str:
    """Local pages: a path relative to ``base`` (the repository root, so code hosts map it
    to the file) when inside it, else a file:// URI. URLs stay URLs."""
    if urlsplit(page).scheme in ("http", "https", "file"):
        return page
    path = Path(page).resolve()
    if base is not None:
        try:
            return path.relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_uri()


def to_sarif(report: AuditReport, base: Path | None = None) -> str:
    rule_ids = list(RULES)
    rules = [{
        "id": r.id, "name": "".join(w.capitalize() for w in r.id.split("-")),
        "shortDescription": {"text": r.title},
        "fullDescription": {"text": f"{r.title} (WCAG {r.wcag})."},
        "helpUri": wcag_url(r.wcag),
        "defaultConfiguration": {"level": _LEVEL[r.severity]},
        "properties": {"tags": ["accessibility", f"wcag{r.wcag.replace('.', '')}"], "severity": r.severity,
                       "wcag": r.wcag, "precision": "high" if r.severity == "critical" else "medium"},
    } for r in RULES.values()]
    results = []
    artifacts: list[dict] = []
    artifact_index: dict[str, int] = {}
    for page in report.pages:
        uri = _artifact_uri(page.page, base)
        if uri not in artifact_index:
            artifact_index[uri] = len(artifacts)
            artifacts.append({"location": {"uri": uri}, "mimeType": "text/html"})
        for f in page.findings:
            message = f.reason
            if f.proposed_alt is not None:
                message += (f' Proposed alt: "{f.proposed_alt}".' if f.proposed_alt
                            else ' Proposed: alt="" (decorative).')
            region: dict = {"snippet": {"text": f.html}}
            if f.line:
                region["startLine"] = f.line
                if f.column:
                    region["startColumn"] = f.column
            location = {"physicalLocation": {"artifactLocation": {"uri": uri, "index": artifact_index[uri]}},
                        "logicalLocations": [{"fullyQualifiedName": f.selector, "kind": "element"}]}
            if f.line:
                location["physicalLocation"]["region"] = region
            fingerprint = hashlib.sha256(f"{uri}\n{f.selector}\n{f.rule}\n{f.html}".encode()).hexdigest()
            results.append({
                "ruleId": f.rule, "ruleIndex": rule_ids.index(f.rule), "level": _LEVEL[f.severity],
                "message": {"text": message}, "locations": [location],
                "partialFingerprints": {"alttextFinding/v1": fingerprint},
                "properties": {"severity": f.severity, "wcag": f.wcag, "selector": f.selector,
                               "proposedAlt": f.proposed_alt, "currentAlt": f.alt, "confidence": f.confidence},
            })
    sarif = {
        "$schema": SARIF_SCHEMA, "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "alttext-audit", "semanticVersion": _version(),
                                "informationUri": "https://www.w3.org/WAI/tutorials/images/", "rules": rules}},
            "artifacts": artifacts, "results": results, "columnKind": "unicodeCodePoints",
        }],
    }
    return json.dumps(sarif, indent=2, ensure_ascii=False) + "\n"


# --- HTML -------------------------------------------------------------------------------------

ThumbSource = Callable[[str], bytes | None]
THUMB_MAX_BYTES = 512 * 1024


def local_thumbnail(src: str) -> bytes | None:
    """Bytes of a local (file://) image for the report's thumbnail; None otherwise."""
    parts = urlsplit(src)
    if parts.scheme != "file":
        return None
    path = Path(unquote(parts.path))
    try:
        if path.is_file() and path.stat().st_size <= THUMB_MAX_BYTES:
            return path.read_bytes()
    except OSError:
        return None
    return None


def _data_uri(src: str | None, thumbs: ThumbSource | None) -> str | None:
    if not src:
        return None
    if src.startswith("data:image/") and len(src) < THUMB_MAX_BYTES and not src.startswith("data:image/svg"):
        return src
    data = thumbs(src) if thumbs else None
    if not data:
        return None
    mime = mimetypes.guess_type(urlsplit(src).path)[0] or "image/png"
    if not mime.startswith("image/") or mime == "image/svg+xml":
        return None  # SVG could carry script; only raster thumbnails are inlined
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


_CSS = """
:root{color-scheme:light;font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#1a1a1a;background:#fff}
body{margin:0 auto;max-width:72rem;padding:1rem 1.5rem 3rem;line-height:1.45}
h1{font-size:1.6rem;margin:.5rem 0}h2{font-size:1.25rem;margin:1.5rem 0 .5rem}
a{color:#0b57a4}a:focus,button:focus,select:focus,summary:focus{outline:3px solid #b35c00;outline-offset:2px}
table{border-collapse:collapse;width:100%}th,td{border:1px solid #767676;padding:.4rem .5rem;text-align:left;
vertical-align:top}th{background:#f0f0f0}
.filters{display:flex;flex-wrap:wrap;gap:1rem;align-items:end;margin:1rem 0;padding:.75rem;border:1px solid #767676}
.filters label{display:flex;flex-direction:column;font-weight:600;gap:.25rem}
select,button{font:inherit;padding:.3rem .5rem;border:1px solid #545454;border-radius:4px;background:#fff;color:#1a1a1a}
.finding{border:1px solid #767676;border-radius:6px;padding:.75rem;margin:.75rem 0;display:grid;
grid-template-columns:7rem 1fr;gap:.75rem}
.finding[hidden]{display:none}.thumb{width:7rem;height:5rem;object-fit:contain;background:#f0f0f0;
border:1px solid #767676}.nothumb{width:7rem;height:5rem;display:flex;align-items:center;justify-content:center;
background:#f0f0f0;border:1px solid #767676;font-size:.85rem;text-align:center}
.sev{display:inline-block;padding:0 .4rem;border-radius:4px;font-weight:700;font-size:.9rem}
.sev-critical{background:#8b0000;color:#fff}.sev-serious{background:#b00020;color:#fff}
.sev-moderate{background:#7a4a00;color:#fff}.sev-minor{background:#3d3d3d;color:#fff}
.compare{display:grid;grid-template-columns:1fr 1fr;gap:.5rem;margin:.5rem 0}
.compare div{border:1px solid #767676;padding:.4rem;border-radius:4px}.compare h5{margin:0 0 .2rem;font-size:.95rem}
code,pre{font-family:ui-monospace,monospace;font-size:.85rem}pre{white-space:pre-wrap;word-break:break-all;
background:#f6f6f6;padding:.4rem;margin:.25rem 0;border:1px solid #cfcfcf}
.meta{color:#4a4a4a;font-size:.9rem}.count{font-weight:600}
"""

_JS = """
(function(){
  var rule=document.getElementById('f-rule'),page=document.getElementById('f-page'),
      sev=document.getElementById('f-sev'),out=document.getElementById('shown');
  var order=['minor','moderate','serious','critical'];
  function apply(){
    var n=0,items=document.querySelectorAll('.finding');
    for(var i=0;i<items.length;i++){
      var it=items[i],ok=(!rule.value||it.dataset.rule===rule.value)&&(!page.value||it.dataset.page===page.value)
        &&(!sev.value||order.indexOf(it.dataset.severity)>=order.indexOf(sev.value));
      it.hidden=!ok;if(ok)n++;
    }
    out.textContent=n+' of '+items.length+' findings shown';
  }
  [rule,page,sev].forEach(function(el){el.addEventListener('change',apply)});
  document.getElementById('f-reset').addEventListener('click',function(){
    rule.value='';page.value='';sev.value='';apply();
  });
  apply();
})();
"""


def _alt_text(value: str | None) -> str:
    if value is None:
        return "(no alt attribute)"
    return '"" (marked decorative)' if value == "" else value


def to_html(report: AuditReport, thumbs: ThumbSource | None = local_thumbnail) -> str:
    e = html.escape
    rules_used = sorted({f.rule for p in report.pages for f in p.findings})
    pages_used = [p.page for p in report.pages]
    s = report.summary
    parts = [
        "<!doctype html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Alt text audit report</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
        '<header><h1>Alt text audit report</h1>',
        f'<p class="meta">{s.pages} page(s), {s.images} image(s), {s.findings} finding(s)'
        + (f", {s.pages_failed} page(s) could not be read" if s.pages_failed else "") + ".</p></header>",
        "<main>",
        '<section aria-labelledby="summary-h"><h2 id="summary-h">Summary by rule</h2>',
        "<table><caption class=\"meta\">Findings per rule, with severity and WCAG success criterion</caption>"
        "<thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">Severity</th><th scope=\"col\">WCAG</th>"
        "<th scope=\"col\">Findings</th></tr></thead><tbody>",
    ]
    for rule_id, count in s.by_rule.items():
        rule = RULES[rule_id]
        parts.append(f"<tr><th scope=\"row\"><code>{e(rule_id)}</code> {e(rule.title)}</th><td>{e(rule.severity)}</td>"
                     f'<td><a href="{e(wcag_url(rule.wcag))}">{e(rule.wcag)}</a></td><td>{count}</td></tr>')
    if not s.by_rule:
        parts.append('<tr><td colspan="4">No findings.</td></tr>')
    parts.append("</tbody></table></section>")

    parts.append('<section aria-labelledby="findings-h"><h2 id="findings-h">Findings</h2>')
    parts.append('<form class="filters" aria-label="Filter findings" onsubmit="return false">')
    parts.append('<label for="f-rule">Rule<select id="f-rule"><option value="">All rules</option>'
                 + "".join(f'<option value="{e(r)}">{e(r)}</option>' for r in rules_used) + "</select></label>")
    parts.append('<label for="f-page">Page<select id="f-page"><option value="">All pages</option>'
                 + "".join(f'<option value="{e(p)}">{e(p)}</option>' for p in pages_used) + "</select></label>")
    parts.append('<label for="f-sev">Severity at least<select id="f-sev"><option value="">Any</option>'
                 + "".join(f'<option value="{v}">{v}</option>' for v in reversed(SEVERITIES)) + "</select></label>")
    parts.append('<button type="button" id="f-reset">Show all</button>'
                 '<p id="shown" class="count" role="status" aria-live="polite"></p></form>')

    n = 0
    for page in report.pages:
        parts.append(f'<h3 class="page-h">{e(page.page)}</h3>')
        if page.error:
            parts.append(f'<p>Could not read this page: <code>{e(page.error.get("code", ""))}</code> '
                         f'{e(page.error.get("message", ""))}</p>')
            continue
        if not page.findings:
            parts.append(f"<p>No findings on this page ({page.images} image(s) checked).</p>")
        for f in page.findings:
            n += 1
            parts.append(_finding_html(f, page.page, n, thumbs))
    parts.append("</section></main>")
    parts.append(f"<script>{_JS}</script></body></html>")
    return "\n".join(parts) + "\n"


def _finding_html(f: Finding, page: str, n: int, thumbs: ThumbSource | None) -> str:
    e = html.escape
    uri = f._thumbnail or _data_uri(f.src, thumbs)
    shown = _alt_text(f.alt)
    if uri:
        thumb = f'<img class="thumb" src="{e(uri)}" alt="Thumbnail of the image in finding {n}">'
    else:
        thumb = '<div class="nothumb">no preview</div>'
    if f.proposed_alt is None:
        proposal = f"(none: {e(f.proposal_error)})" if f.proposal_error else "(proposals off)"
    else:
        proposal = e(_alt_text(f.proposed_alt))
        if f.proposal_needs_review:
            why = ", ".join(f.proposal_warnings) or "low confidence"
            proposal += f' <strong class="review">Needs review</strong> ({e(why)})'
    where = f"line {f.line}" if f.line else "line unknown"
    return (
        f'<article class="finding" data-rule="{e(f.rule)}" data-page="{e(page)}" data-severity="{e(f.severity)}" '
        f'aria-labelledby="f{n}-h">{thumb}<div>'
        f'<h4 id="f{n}-h"><span class="sev sev-{e(f.severity)}">{e(f.severity)}</span> '
        f'<code>{e(f.rule)}</code> (WCAG <a href="{e(wcag_url(f.wcag))}">{e(f.wcag)}</a>)</h4>'
        f"<p>{e(f.reason)}</p>"
        f'<div class="compare"><div><h5>Current alt</h5><p>{e(shown)}</p></div>'
        f"<div><h5>Proposed alt</h5><p>{proposal}</p></div></div>"
        f'<p class="meta">{e(page)}, {where}, <code>{e(f.selector)}</code>, confidence {f.confidence:.2f}</p>'
        f"<details><summary>Element as written</summary><pre>{e(f.html)}</pre></details>"
        "</div></article>"
    )


def write(report: AuditReport, fmt: str, base: Path | None = None) -> str:
    if fmt == "json":
        return to_json(report)
    if fmt == "sarif":
        return to_sarif(report, base or Path(os.getcwd()))
    if fmt == "html":
        return to_html(report)
    raise ValueError(f"unknown format {fmt!r}")
