"""Untrusted page text is cleaned once, when a PageContext is made; downstream never cleans again."""
from __future__ import annotations

from fastapi.testclient import TestClient

from service.app import create_app
from service.backfill.decisions import keep_row, passes
from service.backfill.items import Item
from service.engine import clean_item, split_item
from service.page import PageContext
from tests.support.api import b64, png, settings, wait_for, wait_ready
from tests.support.drafters import ColourDrafter


def test_page_text_is_cleaned_when_the_context_is_made():
    page = PageContext(caption="<p>Two cats\u202e on <b>a</b>\n\n shoe.</p><script>alert(1)</script>",
                       context="Meet\x00 the   office cats", link_text="<span></span>", action=" Search ",
                       existing_alt="A\u200b cat", link_href=" /sea\trch ")
    assert page.caption == "Two cats on a shoe."
    assert (page.context, page.link_text, page.action, page.existing_alt, page.link_href) == (
        "Meet the office cats", "", "Search", "A cat", "/search")
    assert PageContext(context="word " * 2000).context == ("word " * 800).strip()  # capped at a word
    assert PageContext().caption is None and PageContext().caption_body == ""


def test_the_credit_line_is_split_off_once():
    page = PageContext(caption="A handout photo made available by NASA shows the rover on Mars. "
                               "PHOTO: NASA VIA EPA-EFE")
    assert page.caption_body == "The rover on Mars."
    assert page.caption_split == ("The rover on Mars.", "photo")
    assert "EPA-EFE" in page.caption  # the caption itself is kept whole, for the duplicate-caption check


# Cleaning decodes entities once; a second cleaning would decode them again.
QUOTED = "Tickets from AT&amp;amp;T"


def test_validated_items_are_not_cleaned_twice():
    page = PageContext(caption=QUOTED)
    assert page.caption == "Tickets from AT&amp;T"
    assert PageContext(caption=page.caption).caption == "Tickets from AT&T"  # what cleaning twice would do
    _, again = split_item(clean_item(page))
    assert again.caption == "Tickets from AT&amp;T"
    _, raw = split_item({"caption": QUOTED})  # an unmarked item (e.g. a job stored before) is cleaned
    assert raw.caption == "Tickets from AT&amp;T"


def test_the_api_cleans_page_text_once(tmp_path):
    with TestClient(create_app(settings(tmp_path, cache=False), ColourDrafter())) as c:
        wait_ready(c)
        body = {"image_base64": b64(png("red")), "existing_alt": f"{QUOTED} in a <b>red</b>\u202e box"}
        one = c.post("/v1/alt-text", json=body).json()
        batch = c.post("/v1/alt-text:batch", json={"items": [body]}).json()["results"][0]["result"]
        job = c.post("/v1/jobs", json={"items": [body]}).headers["location"]
        done = wait_for(lambda: (j := c.get(job).json())["status"] == "completed" and j)
        stored = c.get(f"{job}/results").json()["items"][0]["result"]
    assert done["succeeded"] == 1
    # The human's alt is kept as cleaned once: the quoted entity stays quoted, markup and controls go.
    assert one["alt"] == batch["alt"] == stored["alt"] == "Tickets from AT&amp;T in a red box"


def test_backfill_reports_and_keeps_the_human_alt_as_it_stands():
    raw = "A black cat\n  asleep on a red mat."
    item = Item(id="1", src="cat.png", page={"existing_alt": raw})
    page = item.context()
    assert page.existing_alt == "A black cat asleep on a red mat." and passes(page, 125)
    row = keep_row(item)
    assert row["new_alt"] == row["existing_alt"] == raw  # never rewritten, not even its whitespace
