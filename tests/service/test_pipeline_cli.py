"""The one pipeline, through the functions and through the `alttext` CLI."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from models.imageio import ImageError
from service.cli import app
from service.pipeline import describe, describe_batch
from service.page import PageContext
from tests.support.drafters import CountingDrafter
from tests.support.images import COCO_FIXTURES

pytestmark = pytest.mark.slow
CATS = COCO_FIXTURES / "000000555705.jpg"
BEARS = COCO_FIXTURES / "000000020247.jpg"
runner = CliRunner()


def test_describe_returns_ai_generated_alt(offline_drafter):
    result = describe(offline_drafter, CATS)
    assert result.alt == result.draft.text
    assert result.source == "draft" and result.ai_generated
    assert "cats" in result.alt.lower()


def test_existing_human_alt_is_kept_and_ours_only_proposed(offline_drafter):
    good = describe(offline_drafter, CATS, PageContext(existing_alt="Mochi and Tofu asleep on my trainers"))
    assert good.alt == "Mochi and Tofu asleep on my trainers"
    assert good.source == "human" and not good.ai_generated and good.proposal is None
    bad = describe(offline_drafter, CATS, PageContext(existing_alt="IMG_2041.JPG"))
    assert bad.alt == "IMG_2041.JPG" and bad.needs_review
    assert "existing_alt_filename" in bad.warnings
    assert bad.proposal and "cats" in bad.proposal.lower()


def test_decorative_image_gets_empty_alt(offline_drafter):
    result = describe(offline_drafter, CATS, PageContext(role="decorative"))
    assert result.alt == "" and result.decorative


def test_decorative_images_cost_no_model_call(offline_drafter):
    counting = CountingDrafter(offline_drafter)
    pages = [PageContext(role="decorative"), PageContext(), PageContext(role="decorative")]
    results = describe_batch(counting, [CATS, BEARS, CATS], pages)
    assert counting.images == 1
    assert [r.alt for r in results][0::2] == ["", ""] and "bear" in results[1].alt.lower()
    with pytest.raises(ImageError) as err:  # decorative or not, a bad image is still refused
        describe_batch(counting, [b""], [PageContext(role="decorative")])
    assert err.value.code == "invalid_image"


def test_length_budget_is_respected_without_cutting_words(offline_drafter):
    result = describe(offline_drafter, COCO_FIXTURES / "000000226111.jpg", PageContext(max_chars=40))
    assert len(result.alt) <= 40
    assert "truncated" in result.warnings
    assert result.alt == "A street sign."  # cut before the quoted sign text, not inside it


def test_batch_keeps_order(offline_drafter):
    results = describe_batch(offline_drafter, [CATS, BEARS, CATS])
    assert [("cat" in r.alt.lower(), "bear" in r.alt.lower()) for r in results] == [
        (True, False), (False, True), (True, False)]


def test_cli_describe_plain_and_json():
    out = runner.invoke(app, ["describe", str(CATS), str(BEARS)])
    assert out.exit_code == 0, out.output
    lines = out.output.strip().splitlines()
    assert lines[0].startswith(f"{CATS}: Two cats")
    assert "bears" in lines[1].lower()

    out = runner.invoke(app, ["describe", "--json", "--existing-alt", "My cats", str(CATS)])
    row = json.loads(out.output)
    assert row["result"]["alt"] == "My cats" and row["result"]["source"] == "human"
    assert row["result"]["draft"]["model"]["backend"] == "offline"


def test_cli_reports_bad_files_and_still_describes_good_ones(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    out = runner.invoke(app, ["describe", "--json", str(empty), str(CATS), str(tmp_path / "missing.png")])
    assert out.exit_code == 1
    rows = [json.loads(line) for line in out.output.strip().splitlines()]
    by_image = {row["image"]: row for row in rows}
    assert by_image[str(empty)]["error"]["code"] == "invalid_image"
    assert by_image[str(empty)]["error"]["reason"] == "empty"
    assert by_image[str(tmp_path / "missing.png")]["error"]["code"] == "not_found"
    assert "cats" in by_image[str(CATS)]["result"]["alt"].lower()


def test_cli_rejects_unknown_role():
    out = runner.invoke(app, ["describe", "--role", "banner", str(CATS)])
    assert out.exit_code == 2
    assert "role must be one of" in out.output


def test_cli_models_lists_backends():
    out = runner.invoke(app, ["models"])
    assert out.exit_code == 0
    assert "offline" in out.output and "installed" in out.output
    assert "transformers" in out.output


def test_cli_page_options_reach_the_merge():
    hidden = runner.invoke(app, ["describe", "--caption-hidden", "--caption",
                                 "A handout photo made available by NASA shows Mochi asleep. PHOTO: NASA VIA EPA-EFE",
                                 str(CATS)])
    assert hidden.exit_code == 0
    assert hidden.output.startswith(f"{CATS}: Mochi asleep.") and "PHOTO" not in hidden.output
    link = runner.invoke(app, ["describe", "--role", "functional", "--link-href", "/search", str(CATS)])
    assert link.output.strip() == f"{CATS}: Search"
    french = runner.invoke(app, ["describe", "--json", "--lang", "fr", str(CATS)])
    assert "language_mismatch" in json.loads(french.output)["result"]["warnings"]


def test_caption_that_says_all_the_drafter_sees_gets_its_subject_only(offline_drafter):
    # The bears photo beside "Two bears in the grass": the drafter sees two bears and nothing more
    # it trusts, so the alt names the image by the caption's subject and does not read the caption again.
    shown = describe(offline_drafter, BEARS, PageContext(caption="Two bears in the grass"))
    assert shown.alt == "Two bears." and not shown.decorative
    hidden = describe(offline_drafter, BEARS, PageContext(caption="Two bears in the grass", caption_visible=False))
    assert hidden.alt.startswith("Two bears in the grass")
    other = describe(offline_drafter, BEARS, PageContext(caption="Yogi and Boo-Boo, May 2019"))
    assert "bears" in other.alt.lower()  # a caption that does not say what is seen is complemented
