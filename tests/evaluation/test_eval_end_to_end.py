"""A 10-image run through `alttext eval`: the four files, their structure, the cache on re-run."""
from __future__ import annotations

import json
import re
import shutil

import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from evaluation import metrics as M
from evaluation.cli import eval_command
from evaluation.runner import EvalConfig, run, select_systems, system_names
from tests.support.drafters import CountingDrafter
from tests.support.images import COCO_FIXTURES, text_image
from tests.support.tiny_clip import build_tiny_clip

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not M.java_available(), reason="needs Java")]
SYSTEMS = ["caption-only", "subject-only", "draft-only", "merged"]
METRICS = [*M.REFERENCE_METRICS, *M.CLIP_METRICS, *M.POLICY_METRICS]
HOSTILE = '<script>alert("x")</script><b>Bears</b> in the wild'


def _dataset(folder):
    """8 COCO fixture images plus 2 drawn here, with captions (one with a credit line, one hostile)."""
    (folder / "images").mkdir(parents=True)
    rows = [json.loads(line) for line in (COCO_FIXTURES / "references.jsonl").read_text().splitlines() if line]
    for row in rows:
        shutil.copy(COCO_FIXTURES / row["image"], folder / "images" / row["image"])
        row["image"] = f"images/{row['image']}"
    rows[0]["caption"] = HOSTILE
    rows[1]["caption"] = "Pedestrians wait at a crossing in Toronto. PHOTO: JANE DOE VIA EPA-EFE"
    rows[1]["context"] = "City officials say the crossing will be rebuilt next year."
    text_image(["NO PARKING", "8AM - 6PM"]).save(folder / "images" / "sign.png")
    Image.radial_gradient("L").convert("RGB").resize((200, 150)).save(folder / "images" / "grey.jpg")
    rows.append({"id": "sign", "image": "images/sign.png", "caption": None, "context": None, "references": []})
    rows.append({"id": "grey", "image": "images/grey.jpg", "caption": "A grey gradient.",
                 "context": None, "references": ["A grey circle fading to black at the edges."]})
    path = folder / "set.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, offline_drafter):
    base = tmp_path_factory.mktemp("eval")
    dataset = _dataset(base / "data")
    clip = build_tiny_clip(base / "tiny-clip")
    counting = CountingDrafter(offline_drafter)
    app = typer.Typer()
    app.command()(eval_command)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("models.registry.load_drafter", lambda model, **_: counting)
        result = CliRunner().invoke(app, [
            "--dataset", str(dataset), "--out", str(base / "out"), "--cache-dir", str(base / "cache"),
            "--clip-model", str(clip), "--bootstrap", "200", "--no-progress"])
    assert result.exit_code == 0, result.output
    return base, dataset, counting, result.output


def test_run_writes_four_files_with_the_expected_structure(first_run):
    base, _, counting, output = first_run
    out = base / "out"
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.md", "results.json", "samples.jsonl"]
    assert counting.images == 10  # drafted once, batched
    assert "| BLEU-4 |" in output  # the CLI prints the table

    results = json.loads((out / "results.json").read_text())
    assert list(results["systems"]) == SYSTEMS
    assert results["dataset"]["scored"] == 10 and results["dataset"]["with_references"] == 9
    assert results["config"]["command"].startswith("alttext eval --dataset ")
    assert results["versions"]["models"]["offline"]["backend"] == "offline"
    for system in SYSTEMS:
        metrics = results["systems"][system]["metrics"]
        assert list(metrics) == METRICS
        for name in [*M.REFERENCE_METRICS, "CLIPScore", "RefCLIPScore", "length_mean", "within_budget"]:
            value, interval = metrics[name]["value"], metrics[name]["interval"]
            assert isinstance(value, float), (system, name)
            assert len(interval) == 2 and interval[0] <= interval[1], (system, name)
    assert results["systems"]["caption-only"]["metrics"]["credit_leak"]["value"] == pytest.approx(0.1)
    assert results["systems"]["caption-only"]["metrics"]["needs_review"]["skipped"]
    assert results["systems"]["merged"]["metrics"]["needs_review"]["value"] is not None
    pairs = {(c["a"], c["b"]) for c in results["comparisons"]}
    assert pairs == {("subject-only", "caption-only"), ("draft-only", "caption-only"), ("merged", "caption-only"),
                     ("draft-only", "subject-only"), ("merged", "subject-only"), ("merged", "draft-only")}
    assert results["systems"]["merged"]["metrics"]["fragment"]["value"] == 0.0
    calibration = results["calibration"]["draft-only"]
    assert calibration["n"] >= 5 and 0 <= calibration["positives"] <= calibration["n"]
    assert sum(b["n"] for b in calibration["reliability"]) == calibration["n"]
    cider = results["comparisons"][0]["metrics"]["CIDEr"]
    assert set(cider) == {"diff", "interval", "p_value"} and 0 <= cider["p_value"] <= 1

    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows][-2:] == ["sign", "grey"] and len(rows) == 10
    for row in rows:
        assert set(row["systems"]) == set(SYSTEMS) and len(row["sha256"]) == 64
        for system in SYSTEMS:
            assert "alt" in row["systems"][system] and "flags" in row["systems"][system]
            assert row["systems"][system]["scores"]["CLIPScore"] is not None
    sign = rows[-2]["systems"]["merged"]["scores"]
    assert "CIDEr" not in sign or sign["CIDEr"] is None  # no reference: reference-free checks only
    assert rows[0]["systems"]["caption-only"]["alt"] == "Bears in the wild"  # tags and script text stripped, as the service does
    assert "credit_leak" in rows[1]["systems"]["caption-only"]["flags"]
    assert rows[1]["systems"]["subject-only"]["alt"] == ""  # a lone common noun ("Pedestrians") is no subject
    assert rows[2]["systems"]["merged"]["scores"]["CIDEr"] is not None

    report = (out / "report.md").read_text()
    assert "| metric | caption-only | subject-only | draft-only | merged |" in report
    assert "## Confidence calibration (draft-only)" in report
    for name in M.REFERENCE_METRICS:
        assert re.search(rf"^\| {re.escape(name)} \| [0-9.]+ \[", report, re.MULTILINE), name
    assert "Paired bootstrap" in report


def test_html_gallery_is_self_contained_escaped_and_filterable(first_run):
    base, *_ = first_run
    page = (base / "out" / "report.html").read_text()
    assert page.count("<article class='card'") == 10
    assert page.count("data:image/jpeg;base64,") == 10
    assert "<script>alert" not in page and "&lt;script&gt;alert" in page
    assert not re.search(r"""(src|href)=['"]https?:""", page)  # nothing fetched from outside
    assert "<select id=\"flag\">" in page and "value='credit_leak'" in page
    assert page.count("<script>") == 1


def test_rerun_with_another_merge_setting_reuses_every_draft(first_run, offline_drafter):
    base, dataset, _, _ = first_run
    # Same images plus one that cannot be read: it is reported and left out, the rest still run.
    (dataset.parent / "images" / "broken.jpg").write_bytes(b"not an image")
    with_broken = dataset.parent / "with-broken.jsonl"
    with_broken.write_text(dataset.read_text() + json.dumps(
        {"id": "broken", "image": "images/broken.jpg", "references": ["Nothing."]}) + "\n")
    counting = CountingDrafter(offline_drafter)
    results = run(EvalConfig(dataset=str(with_broken), out=base / "again", cache_dir=base / "cache", max_chars=30,
                             resamples=100, progress=False, thumbnails="none", systems=["merged"]),
                  drafters={"offline": counting}, log=lambda _: None)
    assert counting.images == 0
    assert results["cache"] == {"enabled": True, "hits": 10, "misses": 0}
    assert results["dataset"]["scored"] == 10 and [e["id"] for e in results["dataset"]["errors"]] == ["broken"]
    assert list(results["systems"]) == ["merged"] and results["config"]["merge"]["max_chars"] == 30
    rows = [json.loads(line) for line in (base / "again" / "samples.jsonl").read_text().splitlines()]
    assert rows[-1]["id"] == "broken" and rows[-1]["error"]["code"] in ("invalid_image", "unsupported_media_type")
    assert all(len(r["systems"]["merged"]["alt"]) <= 30 for r in rows[:-1])
    assert results["systems"]["merged"]["metrics"]["CLIPScore"]["skipped"].startswith(
        "skipped: no local CLIP model configured")
    page = (base / "again" / "report.html").read_text()
    assert "data:image/jpeg" not in page and "thumbnail not embedded" in page


def test_unknown_system_is_refused(tmp_path):
    with pytest.raises(ValueError, match="available: caption-only, subject-only, draft-only, merged"):
        run(EvalConfig(dataset=str(COCO_FIXTURES / "references.jsonl"), systems=["best"], out=tmp_path),
            log=lambda _: None)


def test_extra_models_get_their_own_systems():
    assert system_names(["offline", "org/captioner"]) == [
        "caption-only", "subject-only", "draft-only", "merged", "draft-only@org/captioner", "merged@org/captioner"]
    assert select_systems(["merged,caption-only"], ["offline"]) == ["caption-only", "merged"]


def test_html_gallery_with_its_reliability_plot_passes_axe(first_run):
    from tests.support.browser import Browser, require_browser

    require_browser()
    base, *_ = first_run
    page = base / "out" / "report.html"
    assert "Confidence calibration" in page.read_text() and "<svg" in page.read_text()
    with Browser() as browser:
        assert browser.axe(page) == []
