"""Accessibility audit of pages: which images fail WCAG 1.1.1 (or read badly), why, and
what each should say instead.

    pages  -> service.page_images (every image with its context)
           -> service.audit.rules (findings per image; one run's pages compared)
           -> proposals from the pipeline (and --check-images: alt that disagrees with
              what the drafter sees)
           -> service.audit.report (JSON, SARIF 2.1.0, HTML)

The CLI (`alttext audit`) and the HTTP API (`POST /v1/audit`) are thin shells over
:func:`audit_pages`.
"""
from __future__ import annotations

from service.audit.model import AuditReport, Finding, PageReport, Summary
from service.audit.run import AuditOptions, PageInput, audit_pages

__all__ = ["AuditOptions", "AuditReport", "Finding", "PageInput", "PageReport", "Summary", "audit_pages"]
