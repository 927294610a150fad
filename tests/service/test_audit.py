"""The audit: rules on small pages, proposals from the pipeline, report formats, the CLI
(exit codes, crawl of a real local site) and POST /v1/audit."""
from __future__ import annotations

import asyncio
import functools
import json
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from models.debug import DebugDrafter
from service.app import create_app
from service.audit import AuditOptions, PageInput, audit_pages
from service.audit.report import to_html, to_sarif
from service.audit.run import file_loader
from service.cli import app as cli_app
from service.pipeline import describe_batch
from tests.support.api import settings, wait_ready
from tests.support.audit_corpus import CORPUS
from tests.support.servers import ThreadedServer

AUDIT_FIXTURES = CORPUS.parent


def audit(html: str, *, url: str = "file:///site/page.html", drafter=None, **options):
    async def describer(pairs):
        return describe_batch(drafter, [p[0] for p in pairs], [p[1] for p in pairs])

    report = asyncio.run(audit_pages([PageInput("page.html", html=html, url=url)],
                                     AuditOptions(proposals=drafter is not None, **options),
                                     loader=file_loader(), describer=describer if drafter else None))
    return report.pages[0].findings


def rules(html: str, **kw) -> list[str]:
    return [f.rule for f in audit(html, **kw)]


def page(body: str, lang: str = "en") -> str:
    return f'<!doctype html><html lang="{lang}"><head><title>T</title></head><body>{body}</body></html>'


# --- rules -----------------------------------------------------------------------------------


def test_correct_images_and_correctly_hidden_decoration_are_not_findings():
    assert rules(page(
        '<img src="a.png" alt="Two cats asleep on a sofa">'
        '<img src="rule.png" alt="">'                                 # decorative, alt=""
        '<div aria-hidden="true"><img src="o.png"></div>'             # hidden, no alt at all
        '<img src="s.gif" role="presentation">'
        '<a href="/a"><img src="i.png" alt=""> Account</a>'          # the link has its text
        '<button aria-label="Close"><svg aria-hidden="true"></svg></button>'
        '<svg viewBox="0 0 1 1"><path d="M0 0"/></svg>'               # inline ornament, not exposed
        '<svg role="img" aria-labelledby="t"><title id="t">Sales up 40%</title></svg>'
        '<input type="image" src="go.png" alt="Search">'
    )) == []


@pytest.mark.parametrize("body, rule, wcag", [
    ('<img src="a.png">', "missing-alt", "1.1.1"),
    ('<input type="image" src="go.png">', "missing-alt", "4.1.2"),
    ('<img src="m.png" usemap="#m" alt="Map"><map name="m"><area href="/n" coords="0,0,1,1"></map>', "missing-alt",
     "2.4.4"),
    ('<div role="img"></div>', "missing-alt", "1.1.1"),
    ('<svg role="img"><path d="M0 0"/></svg>', "missing-alt", "1.1.1"),
    ('<object data="c.svg"></object>', "missing-alt", "1.1.1"),
    ('<a href="/"><img src="logo.png" alt=""></a>', "empty-alt-on-functional", "2.4.4"),
    ('<button><img src="x.png" role="none"></button>', "empty-alt-on-functional", "4.1.2"),
    ('<a href="/"><span aria-hidden="true"><img src="h.png" alt="Home"></span></a>', "empty-alt-on-functional",
     "2.4.4"),
    ('<img src="a.png" alt="IMG_2041.JPG">', "filename-alt", "1.1.1"),
    ('<img src="a.png" alt="hero-banner-final_v2">', "filename-alt", "1.1.1"),
    ('<img src="a.png" alt="Loading...">', "placeholder-alt", "1.1.1"),
    ('<img src="a.png" alt="logo">', "placeholder-alt", "1.1.1"),
    ('<img src="a.png" alt="Picture of a lighthouse at dusk">', "redundant-prefix", "1.1.1"),
    ('<img src="a.png" alt="Crowds on the beach. © 2024 Jane Doe">', "credit-in-alt", "1.1.1"),
    ('<figure><img src="a.png" alt="The lighthouse at dusk"><figcaption>The lighthouse at dusk.</figcaption>'
     '</figure>', "duplicates-caption", "1.1.1"),
    ('<a href="/p/1"><img src="a.png" alt="Blue kettle"><h3>Blue kettle</h3></a>', "duplicates-caption", "1.1.1"),
    ('<p><img src="a.png" alt="Jane Doe"> <b>Jane Doe</b> wrote:</p>', "duplicates-caption", "1.1.1"),
    ('<img src="a.png" alt="' + "A long description of the harbour. " * 10 + '">', "too-long", "1.1.1"),
    ('<img src="spacer.gif" alt="spacer image" width="1" height="1">', "decorative-with-alt", "1.1.1"),
    ('<img src="a.png" role="presentation" alt="A red door">', "decorative-with-alt", "1.1.1"),
])
def test_each_rule_fires_with_its_wcag_criterion(body, rule, wcag):
    findings = audit(page(body))
    assert [f.rule for f in findings] == [rule], findings
    assert findings[0].wcag == wcag and findings[0].reason and findings[0].severity
    assert findings[0].selector and findings[0].html.startswith("<")


def test_long_alt_with_a_long_description_is_fine_and_the_limit_is_configurable():
    long_alt = "A map of the flood zone with shelters and routes marked. " * 5
    assert rules(page(f'<img src="m.png" alt="{long_alt}" aria-describedby="d"><p id="d">Details</p>')) == []
    assert rules(page('<img src="m.png" alt="A short but over the limit text">'), max_alt_chars=20) == ["too-long"]


def test_language_unmarked_is_flagged_marked_or_proper_nouns_are_not():
    assert rules(page('<img src="a.png" alt="Une femme lit le journal sur un banc du parc">')) == ["wrong-language"]
    assert rules(page('<p lang="fr"><img src="a.png" alt="Une femme lit le journal sur un banc du parc"></p>')) == []
    assert rules(page('<img src="a.png" alt="Emmanuel Macron et Olaf Scholz à Paris">', lang="fr")) == []
    assert rules(page('<img src="a.png" alt="Notre-Dame de Paris seen from the river at dusk">')) == []
    finding = audit(page('<img src="a.png" alt="Zwei Kinder spielen im Garten mit einem Ball">'))[0]
    assert finding.rule == "wrong-language" and "German" in finding.reason and 0.5 <= finding.confidence <= 1


def test_same_image_with_contradicting_alt_across_pages_lazy_source_included():
    one = page('<img src="/img/team.jpg" alt="Our team at the summer picnic">')
    two = page('<img src="data:image/gif;base64,R0lGOD" data-src="/img/team.jpg" alt="A red tractor in a field">')
    three = page('<img src="/img/team.jpg" alt="Our team at the summer picnic, 2025">')
    report = asyncio.run(audit_pages([PageInput("one.html", one, "https://ex.org/a/"),
                                      PageInput("two.html", two, "https://ex.org/b/"),
                                      PageInput("three.html", three, "https://ex.org/c/")],
                                     AuditOptions(proposals=False)))
    got = {p.page: [f.rule for f in p.findings] for p in report.pages}
    assert got == {"one.html": ["inconsistent-alt-across-pages"], "two.html": ["inconsistent-alt-across-pages"],
                   "three.html": ["inconsistent-alt-across-pages"]}
    assert "two.html" in report.pages[0].findings[0].reason


def test_copies_of_one_local_image_under_other_names_are_the_same_image(tmp_path):
    from PIL import Image

    Image.new("RGB", (20, 20), (30, 160, 60)).save(tmp_path / "field.png")
    (tmp_path / "copy-of-field.png").write_bytes((tmp_path / "field.png").read_bytes())
    Image.new("RGB", (20, 20), (30, 60, 220)).save(tmp_path / "sea.png")
    pages = [PageInput("a.html", page('<img src="field.png" alt="A wheat field in June">'),
                       (tmp_path / "a.html").as_uri()),
             PageInput("b.html", page('<img src="copy-of-field.png" alt="Our office in Leeds">'),
                       (tmp_path / "b.html").as_uri()),
             PageInput("c.html", page('<img src="sea.png" alt="A calm sea at dawn">'), (tmp_path / "c.html").as_uri())]
    report = asyncio.run(audit_pages(pages, AuditOptions(proposals=False)))
    got = {p.page: [f.rule for f in p.findings] for p in report.pages}
    assert got == {"a.html": ["inconsistent-alt-across-pages"], "b.html": ["inconsistent-alt-across-pages"],
                   "c.html": []}
    assert "copy-of-field.png, the same file as field.png" in report.pages[1].findings[0].reason


# --- proposals and --check-images -----------------------------------------------------------


def test_proposals_come_from_the_pipeline_and_decorative_ones_are_empty(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 30), (30, 60, 220)).save(tmp_path / "sea.png")
    html = page('<img src="sea.png" alt="IMG_0001.JPG"><a href="/contact"><img src="sea.png" alt=""></a>'
                '<img src="spacer.gif" alt="spacer" width="1" height="1"><img src="gone.png">')
    findings = audit(html, url=(tmp_path / "page.html").as_uri(), drafter=DebugDrafter())
    by_rule = {f.rule: f for f in findings}
    assert by_rule["filename-alt"].proposed_alt == "A 40 by 30 image, mostly blue."
    assert by_rule["filename-alt"].proposal_confidence == pytest.approx(0.9, abs=0.2)
    assert by_rule["empty-alt-on-functional"].proposed_alt == "Contact"  # the link's purpose, not the picture
    assert by_rule["decorative-with-alt"].proposed_alt == ""
    assert by_rule["missing-alt"].proposed_alt is None and by_rule["missing-alt"].proposal_error == "image_not_found"
    # --no-proposals: nothing proposed, nothing drafted
    assert all(f.proposed_alt is None for f in audit(html, url=(tmp_path / "page.html").as_uri()))


def test_a_proposal_the_pipeline_is_unsure_of_says_so_in_json_and_html(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 30), (30, 60, 220)).save(tmp_path / "go.png")
    html = page('<form><input type="image" src="go.png"></form><img src="go.png" alt="IMG_0001.JPG">')
    findings = audit(html, url=(tmp_path / "page.html").as_uri(), drafter=DebugDrafter())
    button, photo = findings
    # A button whose purpose nobody can tell: the picture is proposed, but flagged for a person.
    assert button.rule == "missing-alt" and button.proposed_alt
    assert button.proposal_needs_review is True and "functional_purpose_unknown" in button.proposal_warnings
    assert photo.proposal_needs_review is False and photo.proposal_warnings == []
    report = to_html(_report_of(findings))
    assert "Needs review</strong> (functional_purpose_unknown" in report


def _report_of(findings):
    from service.audit.model import AuditReport, PageReport, summarise

    pages = [PageReport(page="page.html", lang="en", images=2, findings=findings)]
    return AuditReport(pages=pages, summary=summarise(pages))


def test_check_images_reports_alt_that_disagrees_with_the_draft(tmp_path):
    from PIL import Image

    Image.new("RGB", (40, 30), (220, 30, 30)).save(tmp_path / "red.png")
    html = page('<img src="red.png" alt="A blue sky over green hills"><img src="red.png" alt="A red barn">')
    url = (tmp_path / "page.html").as_uri()
    findings = audit(html, url=url, drafter=DebugDrafter(), check_images=True)
    assert [f.rule for f in findings] == ["alt-mismatch"]
    assert findings[0].alt == "A blue sky over green hills" and findings[0].confidence == pytest.approx(0.9)
    assert "mostly red" in findings[0].reason and findings[0].proposed_alt == "A 40 by 30 image, mostly red."
    assert audit(html, url=url, drafter=DebugDrafter()) == []  # only with --check-images


# --- report formats ----------------------------------------------------------------------------


def _corpus_report():
    from tests.support.audit_corpus import run_corpus

    return run_corpus(DebugDrafter(), proposals=True)


@pytest.fixture(scope="module")
def corpus_report():
    return _corpus_report()


def test_sarif_is_2_1_0_with_rules_locations_and_lines(corpus_report):
    sarif = json.loads(to_sarif(corpus_report, base=AUDIT_FIXTURES.parents[1]))
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    run = sarif["runs"][0]
    ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert "missing-alt" in ids and len(ids) == 12
    results = run["results"]
    assert len(results) == corpus_report.summary.findings
    for result in results:
        assert ids[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note") and result["message"]["text"]
        loc = result["locations"][0]["physicalLocation"]
        assert loc["artifactLocation"]["uri"].startswith("fixtures/audit/site/")
        assert loc["region"]["startLine"] >= 1 and loc["region"]["snippet"]["text"].startswith("<")
    first = next(r for r in results if r["ruleId"] == "empty-alt-on-functional")
    source = (AUDIT_FIXTURES.parents[1] / first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"])
    line = source.read_text().splitlines()[first["locations"][0]["physicalLocation"]["region"]["startLine"] - 1]
    assert first["locations"][0]["physicalLocation"]["region"]["snippet"]["text"] in line


def test_html_report_is_self_contained_with_thumbnails_filters_and_fixes(corpus_report):
    text = to_html(corpus_report)
    assert "<script src" not in text and "<link" not in text and 'src="file:' not in text
    assert text.count('class="finding"') == corpus_report.summary.findings
    assert 'src="data:image/png;base64,' in text
    assert 'id="f-rule"' in text and 'id="f-page"' in text
    assert "Proposed alt" in text and "A 48 by 32 image, mostly" in text


# --- the CLI ------------------------------------------------------------------------------------


def test_cli_formats_fail_on_and_unreadable_pages(tmp_path, env):
    env(ALTTEXT_MODEL="debug")
    runner = CliRunner()
    nav = str(CORPUS / "navigation.html")
    result = runner.invoke(cli_app, ["audit", nav, "--no-proposals", "--no-progress"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["pages"][0]["page"] == nav and body["summary"]["by_severity"]["critical"] >= 3
    assert runner.invoke(cli_app, ["audit", nav, "--no-proposals", "--fail-on", "critical"]).exit_code == 1
    clean = tmp_path / "clean.html"
    clean.write_text(page('<img src="a.png" alt="Two cats asleep on a sofa">'))
    assert runner.invoke(cli_app, ["audit", str(clean), "--fail-on", "minor"]).exit_code == 0
    out = tmp_path / "r" / "report.sarif"
    result = runner.invoke(cli_app, ["audit", str(CORPUS), "--format", "sarif", "--out", str(out),
                                     "--no-proposals"])
    assert result.exit_code == 0 and json.loads(out.read_text())["version"] == "2.1.0"
    result = runner.invoke(cli_app, ["audit", str(tmp_path / "missing.html"), "--no-proposals"])
    assert result.exit_code == 2 and "page_not_found" in result.output
    assert runner.invoke(cli_app, ["audit", nav, "--format", "xml"]).exit_code == 2
    assert runner.invoke(cli_app, ["audit", nav, "--fail-on", "bad"]).exit_code == 2


@pytest.fixture
def env(monkeypatch):
    """Set ALTTEXT_* variables for a CLI run (settings are cached per process)."""
    from service.settings import get_settings

    def set_env(**values):
        for key, value in values.items():
            if value is None:
                monkeypatch.delenv(key, raising=False)
            else:
                monkeypatch.setenv(key, value)
        get_settings.cache_clear()

    yield set_env
    get_settings.cache_clear()


@pytest.fixture
def site():
    """The corpus served over real HTTP on 127.0.0.1 (port 0)."""
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(AUDIT_FIXTURES))
    handler.log_message = lambda *a: None
    with ThreadedServer(handler) as server:
        yield server.url("")


def test_cli_crawls_a_site_and_fetches_images_for_proposals(site, env):
    env(ALTTEXT_MODEL="debug", ALTTEXT_FETCH_ALLOW="127.0.0.1/32")
    result = CliRunner().invoke(cli_app, [
        "audit", "--crawl", f"{site}/site/avatars.html", "--depth", "0", "--max-pages", "3", "--rate", "0",
        f"{site}/site/image-map.html", "--no-progress"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    pages = [p["page"] for p in body["pages"]]
    assert pages == [f"{site}/site/image-map.html", f"{site}/site/avatars.html"]
    avatars = body["pages"][1]
    functional = next(f for f in avatars["findings"] if f["rule"] == "empty-alt-on-functional")
    assert functional["proposed_alt"] == "Sam"  # link purpose from /u/sam
    placeholder = next(f for f in avatars["findings"] if f["rule"] == "placeholder-alt")
    assert placeholder["proposed_alt"].startswith("A 48 by 32 image")  # image fetched over HTTP
    # the HTML report shows remote images too (thumbnails of what the model saw), and only as data: URIs
    result = CliRunner().invoke(cli_app, ["audit", f"{site}/site/avatars.html", "--format", "html", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert result.stdout.count('src="data:image/jpeg;base64,') == len(avatars["findings"]) - 2  # 2 need no model
    assert f'src="{site}' not in result.stdout
    # without the allowlist, loopback is refused under the SSRF rules
    env(ALTTEXT_FETCH_ALLOW=None)
    result = CliRunner().invoke(cli_app, ["audit", f"{site}/site/avatars.html", "--no-progress"])
    assert result.exit_code == 2 and "fetch_blocked" in result.output


# --- POST /v1/audit -------------------------------------------------------------------------------


@pytest.fixture
def client(tmp_path):
    with TestClient(create_app(settings(tmp_path, fetch_allow=["127.0.0.1/32"]), DebugDrafter())) as c:
        wait_ready(c)
        yield c


def test_api_audits_html_in_the_body(client):
    html = (CORPUS / "navigation.html").read_text()
    response = client.post("/v1/audit", json={"html": html, "proposals": False})
    assert response.status_code == 200, response.text
    body = response.json()
    findings = body["pages"][0]["findings"]
    assert {f["rule"] for f in findings} >= {"empty-alt-on-functional", "missing-alt", "duplicates-caption"}
    assert body["summary"]["findings"] == len(findings)
    assert set(findings[0]) >= {"rule", "severity", "wcag", "selector", "html", "reason", "proposed_alt",
                                "confidence"}


def test_api_fetches_a_url_and_its_images_under_the_ssrf_rules(client, site):
    response = client.post("/v1/audit", json={"url": f"{site}/site/product-grid.html", "check_images": True})
    assert response.status_code == 200, response.text
    findings = response.json()["pages"][0]["findings"]
    mismatch = next(f for f in findings if f["rule"] == "alt-mismatch")
    assert mismatch["alt"] == "A red enamel casserole dish" and "mostly blue" in mismatch["proposed_alt"]
    # html without a page address: relative images cannot be fetched, file: never is
    body = {"html": page('<img src="/etc/passwd.png" alt="IMG_1.JPG"><img src="file:///etc/hosts" alt="x.png">')}
    findings = client.post("/v1/audit", json=body).json()["pages"][0]["findings"]
    assert [f["proposal_error"] for f in findings] == ["fetch_blocked", "fetch_blocked"]


def test_api_errors_use_the_envelope(client, tmp_path):
    assert client.post("/v1/audit", json={}).json()["error"]["code"] == "invalid_request"
    blocked = client.post("/v1/audit", json={"url": "http://169.254.169.254/latest/meta-data/"})
    assert blocked.status_code == 400 and blocked.json()["error"]["code"] == "fetch_blocked"
    with TestClient(create_app(settings(tmp_path / "x"), DebugDrafter())) as c:
        wait_ready(c)
        local = c.post("/v1/audit", json={"url": "http://127.0.0.1:9/page.html"})
        assert local.status_code == 400 and local.json()["error"]["code"] == "fetch_blocked"
