"""What an audit reports (the JSON format; SARIF and HTML are made from it)."""
from __future__ import annotations

from pydantic import BaseModel, Field, PrivateAttr

from service.audit.rules import SEVERITIES


class Finding(BaseModel):
    rule: str = Field(description="Stable rule id, e.g. missing-alt, filename-alt.")
    severity: str = Field(description="critical, serious, moderate or minor.")
    wcag: str = Field(description="WCAG 2.2 success criterion, e.g. 1.1.1.")
    selector: str = Field(description="CSS selector of the element.")
    html: str = Field(description="The element as written in the page source.")
    reason: str
    proposed_alt: str | None = Field(
        description='Suggested alt text from the pipeline; "" means mark it decorative. None when proposals '
                    "are off or the image could not be read (see proposal_error).")
    confidence: float = Field(ge=0.0, le=1.0, description="How sure the audit is of this finding.")
    alt: str | None = Field(None, description="The accessible name the image has now (None: no alt at all).")
    src: str | None = Field(None, description="The image's effective source (data-src for lazy images).")
    line: int | None = Field(None, description="1-based source line of the element.")
    column: int | None = None
    proposal_confidence: float | None = Field(None, ge=0.0, le=1.0)
    proposal_error: str | None = Field(None, description="Why no proposal: image_not_found, fetch_blocked, ...")
    proposal_needs_review: bool | None = Field(
        None, description="The pipeline asks a person to check the proposal (low confidence, purpose unknown, ...).")
    proposal_warnings: list[str] = Field(default_factory=list,
                                         description="The pipeline's warning codes for the proposal.")
    # A small JPEG data: URI of the image as the model saw it, for the HTML report only.
    _thumbnail: str | None = PrivateAttr(None)


class PageReport(BaseModel):
    page: str = Field(description="File path or URL of the page.")
    lang: str | None = Field(None, description="The page's declared language (<html lang>).")
    title: str = ""
    images: int = Field(0, description="Image occurrences found on the page.")
    findings: list[Finding] = Field(default_factory=list)
    error: dict | None = Field(None, description="{code, message} when the page could not be read.")


class Summary(BaseModel):
    pages: int
    images: int
    findings: int
    by_rule: dict[str, int]
    by_severity: dict[str, int]
    pages_failed: int = 0


class AuditReport(BaseModel):
    pages: list[PageReport]
    summary: Summary

    def at_or_above(self, severity: str) -> int:
        """Findings at or above ``severity``."""
        floor = SEVERITIES.index(severity)
        return sum(1 for p in self.pages for f in p.findings if SEVERITIES.index(f.severity) >= floor)


def summarise(pages: list[PageReport]) -> Summary:
    by_rule: dict[str, int] = {}
    by_severity = {s: 0 for s in reversed(SEVERITIES)}
    for page in pages:
        for f in page.findings:
            by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
            by_severity[f.severity] += 1
    return Summary(pages=len(pages), images=sum(p.images for p in pages),
                   findings=sum(len(p.findings) for p in pages), by_rule=dict(sorted(by_rule.items())),
                   by_severity=by_severity, pages_failed=sum(1 for p in pages if p.error))
