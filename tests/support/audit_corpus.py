"""The audit corpus (tests/fixtures/audit/site): every image element carries ``data-id``
and ``data-expect`` (the rule ids it should get, space-separated; empty: no finding).
Scoring helpers shared by the tests and scripts/audit-agreement.py."""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from pathlib import Path

from service.audit import AuditOptions, AuditReport, audit_pages
from service.audit.model import summarise
from service.audit.rules import RULES
from service.audit.run import file_loader, local_pages

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "audit" / "site"
_ID = re.compile(r'\bdata-id="([^"]+)"')
_EXPECT_TAG = re.compile(r'<[a-zA-Z][^>]*\bdata-id="([^"]+)"[^>]*>')
_EXPECT = re.compile(r'\bdata-expect="([^"]*)"')
# axe-core rules about images, and the rule of ours that must report the same element.
AXE_TO_OURS = {
    "image-alt": {"missing-alt"}, "input-image-alt": {"missing-alt"}, "area-alt": {"missing-alt"},
    "role-img-alt": {"missing-alt"}, "svg-img-alt": {"missing-alt"}, "object-alt": {"missing-alt"},
    "image-redundant-alt": {"duplicates-caption"},
    # a link or button whose only content is an image: ours names the image inside
    "link-name": {"missing-alt", "empty-alt-on-functional"}, "button-name": {"missing-alt", "empty-alt-on-functional"},
}
# Pages whose images were made for --check-images with a colour-only drafter (debug backend).
CHECK_IMAGES_PAGES = ("product-grid.html",)


def expected() -> dict[tuple[str, str], set[str]]:
    """(page file name, data-id) -> expected rule ids."""
    out: dict[tuple[str, str], set[str]] = {}
    for page in sorted(CORPUS.glob("*.html")):
        for tag in _EXPECT_TAG.finditer(page.read_text(encoding="utf-8")):
            rules = _EXPECT.search(tag.group(0))
            out[(page.name, tag.group(1))] = set(rules.group(1).split()) if rules else set()
    return out


def predicted(report: AuditReport) -> dict[tuple[str, str], set[str]]:
    out: dict[tuple[str, str], set[str]] = {}
    for page in report.pages:
        for f in page.findings:
            ident = _ID.search(f.html)
            if ident:
                out.setdefault((Path(page.page).name, ident.group(1)), set()).add(f.rule)
    return out


def run_corpus(drafter=None, proposals: bool = False) -> AuditReport:
    """The audit over the whole corpus (one run, so pages are compared); --check-images
    only on the pages made for it."""
    from service.pipeline import describe_batch

    async def describer(pairs):
        return await asyncio.to_thread(describe_batch, drafter, [p[0] for p in pairs], [p[1] for p in pairs])

    pages = local_pages([CORPUS])
    base = asyncio.run(audit_pages(pages, AuditOptions(proposals=proposals),
                                   loader=file_loader(), describer=describer if drafter else None))
    if drafter is None:
        return base
    checked = [p for p in pages if Path(p.label).name in CHECK_IMAGES_PAGES]
    extra = asyncio.run(audit_pages(checked, AuditOptions(proposals=proposals, check_images=True),
                                    loader=file_loader(), describer=describer))
    by_name = {Path(p.page).name: p for p in extra.pages}
    for page in base.pages:
        more = by_name.get(Path(page.page).name)
        if more is not None:
            page.findings += [f for f in more.findings if f.rule == "alt-mismatch"]
    base.summary = summarise(base.pages)
    return base


@dataclass
class Score:
    rule: str
    expected: int
    true_positive: int
    false_positive: int

    @property
    def precision(self) -> float | None:
        found = self.true_positive + self.false_positive
        return self.true_positive / found if found else None

    @property
    def recall(self) -> float | None:
        return self.true_positive / self.expected if self.expected else None


def scores(exp: dict[tuple[str, str], set[str]], got: dict[tuple[str, str], set[str]]) -> list[Score]:
    out = []
    for rule in RULES:
        want = {k for k, v in exp.items() if rule in v}
        have = {k for k, v in got.items() if rule in v}
        out.append(Score(rule, len(want), len(want & have), len(have - want)))
    return out


# --- axe-core on the same pages ------------------------------------------------------------------

_IDS_OF_TARGET = """(function(sel){
  var el=document.querySelector(sel); if(!el) return [];
  if(el.hasAttribute('data-id')) return [el.getAttribute('data-id')];
  return Array.prototype.map.call(el.querySelectorAll('[data-id]'), function(x){return x.getAttribute('data-id')});
})(%s)"""


def axe_violations(browser, pages: list[Path] | None = None) -> list[tuple[str, str, list[str]]]:
    """(page file name, axe rule id, data-ids of the corpus images at that node) for every
    node of every image-related axe violation on the corpus."""
    import json

    out = []
    for page in pages or sorted(CORPUS.glob("*.html")):
        violations = browser.axe(page, options={"runOnly": {"type": "rule", "values": sorted(AXE_TO_OURS)}})
        for violation in violations:
            for node in violation["nodes"]:
                target = node["target"][0]
                ids = browser.evaluate(_IDS_OF_TARGET % json.dumps(target))
                out.append((page.name, violation["id"], ids))
    return out


@dataclass
class Agreement:
    axe_rule: str
    nodes: int  # axe's violations (one per element)
    ours_same_element: int  # ...that our audit reports on the same element with a matching rule


def agreement(axe: list[tuple[str, str, list[str]]], got: dict[tuple[str, str], set[str]]) -> list[Agreement]:
    rows: dict[str, Agreement] = {}
    for page, rule, ids in axe:
        row = rows.setdefault(rule, Agreement(rule, 0, 0))
        row.nodes += 1
        if ids and all(got.get((page, i), set()) & AXE_TO_OURS[rule] for i in ids):
            row.ours_same_element += 1
    return sorted(rows.values(), key=lambda r: r.axe_rule)


def beyond_axe(axe: list[tuple[str, str, list[str]]], got: dict[tuple[str, str], set[str]]) -> dict[str, list[str]]:
    """Our findings on elements axe-core has no violation for: rule -> ["page#id", ...]."""
    flagged = {(page, i) for page, _, ids in axe for i in ids}
    out: dict[str, list[str]] = {}
    for (page, ident), rules in sorted(got.items()):
        for rule in sorted(rules):
            if (page, ident) not in flagged or rule not in {r for p, ar, ids in axe if p == page and ident in ids
                                                            for r in AXE_TO_OURS[ar]}:
                out.setdefault(rule, []).append(f"{page}#{ident}")
    return out
