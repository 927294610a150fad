"""The audit checked against a real engine: axe-core (pinned, tests/support/axe) in headless
Chromium on the corpus, and on the audit's own HTML report (plus keyboard use)."""
from __future__ import annotations

import pytest

from models.debug import DebugDrafter
from service.audit.report import to_html
from tests.support.audit_corpus import AXE_TO_OURS, agreement, axe_violations, expected, predicted, run_corpus, \
    scores
from tests.support.browser import Browser, require_browser


@pytest.fixture(scope="module")
def report():
    return run_corpus(DebugDrafter(), proposals=True)


@pytest.fixture(scope="module")
def browser():
    require_browser()
    with Browser() as b:
        yield b


def test_the_audit_finds_every_expected_finding_on_the_corpus_and_nothing_else(report):
    exp, got = expected(), predicted(report)
    wrong = {k: (exp.get(k, set()), got.get(k, set())) for k in set(exp) | set(got)
             if exp.get(k, set()) != got.get(k, set())}
    assert wrong == {}
    table = {s.rule: s for s in scores(exp, got)}
    assert all(s.expected >= 1 for s in table.values()), "every rule has at least one case in the corpus"


def test_every_image_related_axe_violation_is_reported_by_us_on_the_same_element(browser, report):
    axe = axe_violations(browser)
    assert len(axe) >= 12 and {rule for _, rule, _ in axe} >= {"image-alt", "link-name", "area-alt",
                                                             "svg-img-alt", "role-img-alt", "object-alt"}
    got = predicted(report)
    missed = [(page, rule, ids) for page, rule, ids in axe
              if not ids or not all(got.get((page, i), set()) & AXE_TO_OURS[rule] for i in ids)]
    assert missed == []
    assert all(row.nodes == row.ours_same_element for row in agreement(axe, got))


def test_the_html_report_passes_axe_and_works_by_keyboard(browser, report):
    browser.load(html=to_html(report))
    assert browser.axe() == []
    total = report.summary.findings
    status = "document.getElementById('shown').textContent"
    assert browser.evaluate(status) == f"{total} of {total} findings shown"
    # reach the rule filter by keyboard (past the summary table's links) and pick the next
    # rule with the arrow key
    for _ in range(60):
        if browser.evaluate("document.activeElement.id") == "f-rule":
            break
        browser.press("Tab")
    assert browser.evaluate("document.activeElement.id") == "f-rule"
    assert browser.evaluate("document.activeElement.matches(':focus-visible')")
    browser.press("ArrowDown")
    chosen = browser.evaluate("document.getElementById('f-rule').value")
    assert chosen, "the arrow key changed the rule filter"
    count = sum(1 for p in report.pages for f in p.findings if f.rule == chosen)
    assert browser.evaluate(status) == f"{count} of {total} findings shown"
    assert browser.evaluate("document.querySelectorAll('.finding:not([hidden])').length") == count
    # Tab on to the reset button and press Enter: everything is shown again
    for _ in range(5):
        browser.press("Tab")
        if browser.evaluate("document.activeElement.id") == "f-reset":
            break
    browser.press("Enter")
    assert browser.evaluate(status) == f"{total} of {total} findings shown"
    # the element's source opens from the keyboard too
    browser.evaluate("document.querySelector('.finding summary').focus()")
    browser.press("Enter")
    assert browser.evaluate("document.querySelector('.finding details').open") is True


def test_a_missing_browser_skips_with_the_reason_and_fails_under_ci(monkeypatch):
    import tests.support.browser as harness

    monkeypatch.setattr(harness, "chromium_path", lambda: None)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="Chromium is not installed"):
        harness.require_browser()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        harness.require_browser()
