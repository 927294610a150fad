"""Untrusted page text: sanitising, credit-line removal, cutting to a budget."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.text import containment, fit, sanitise, sentences, strip_credits

SEED = Path(__file__).parents[1] / "fixtures" / "seed" / "perseverance_captions.jsonl"

# (id, expected text after strip_credits, expected medium named in a lead-in)
EXPECTED = {
    'perseverance-01': (
        "The first images arrive moments after NASA's Perseverance Mars rover spacecraft successfully touched down on Mars, at NASA's Jet Propulsion Laboratory in Pasadena, California, U.S.",
        None,
    ),
    'perseverance-02': (
        "Members of NASA's Perseverance rover team react in mission control after receiving confirmation the spacecraft successfully touched down on Mars, at NASA's Jet Propulsion Laboratory in Pasadena, California, USA. A key objective for Perseverance's mission on Mars is astrobiology, including the search for signs of ancient microbial life. The rover will characterize the planet's geology and past climate, pave the way for human exploration of the Red Planet, and be the first mission to collect and cache Martian rock and regolith.",
        'photo',
    ),
    'perseverance-03': (
        'Emmanuel Macron gives the thumb-up as he sits in front of a screen broadcasting the landing of NASA’s Perseverance Mars rover on the planet Mars, during a visit at the French National Center for Space Studies (CNES), in Paris.',
        None,
    ),
    'perseverance-04': (
        "A NASA Mars Rover Landing banner confirming the mission is complete, on the One Times Square video board as NASA's Perseverance rover begins its descent towards the surface of Mars, in New York City, USA.",
        'photo',
    ),
    'perseverance-05': (
        "The area where Perseverance Mars rover landed (on screen), during a NASA Perseverance rover mission post-landing update at NASA's Jet Propulsion Laboratory in Pasadena, California, USA.",
        'photo',
    ),
    'perseverance-06': (
        "Members of NASA's Perseverance Mars rover team watch in mission control as the first images arrive moments after the spacecraft successfully touched down on Mars, at NASA's Jet Propulsion Laboratory in Pasadena, California, USA.",
        'photo',
    ),
    'perseverance-07': (
        "Members of NASA’s Perseverance Mars rover team watching in mission control as the first images arrive moments after the spacecraft successfully touched down on Mars, at NASA's Jet Propulsion Laboratory in Pasadena, California.",
        'photo',
    ),
    'perseverance-08': (
        'A giant projection of the NASA Mars 2020 mission logo on the north face of the Eiger mountain (left), NASA logo on the Monch mountain (center) and and astronaut on the Jungfrau mountain (right), by Swiss light artist Gerry Hofstetter, pictured from the alpine resort of Mannlichen, Switzerland.',
        'photo',
    ),
    'perseverance-09': (
        "A full scale model of the Mars 2020 Perseverance rover is displayed at NASA's Jet Propulsion Laboratory (JPL) in Pasadena, California.",
        None,
    ),
    'perseverance-10': (
        'NASA’s Perseverance rover casting off its spacecraft’s cruise stage, minutes before entering the Martian atmosphere, as hundreds of critical events in the rover’s Entry, Descent, and Landing sequence must execute perfectly and exactly on time for the rover to touch down on Mars safely.',
        'illustration',
    ),
    'perseverance-11': (
        "A United Launch Alliance Atlas V rocket carrying NASA's Mars 2020 Perseverance Rover vehicle takes off from Cape Canaveral Air Force Station in Cape Canaveral, Florida, U.S.",
        None,
    ),
}


def _seed() -> list[dict]:
    return [json.loads(line) for line in SEED.read_text(encoding="utf-8").splitlines() if line]


@pytest.mark.parametrize("row", _seed(), ids=lambda r: r["id"])
def test_seed_captions_lose_credits_lead_ins_and_filing_dates(row):
    text, medium = strip_credits(row["caption"])
    assert (text, medium) == EXPECTED[row["id"]]
    assert row["credit"] not in text
    assert "PHOTO" not in text and "handout" not in text.lower()
    assert "2021" not in text or "2021 mission" in text  # filing dates go, the "Mars 2020" mission name stays


def test_all_eleven_seed_captions_are_covered():
    assert sorted(EXPECTED) == sorted(r["id"] for r in _seed()) and len(EXPECTED) == 11


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("Protesters march in Hong Kong (Reuters)", "Protesters march in Hong Kong."),
        ("A dog runs on the beach. Photo by Jane Doe/Getty Images", "A dog runs on the beach."),
        ("The Eiffel Tower at dusk. © 2021 Jane Doe", "The Eiffel Tower at dusk."),
        ("© 2021 Jane Doe", ""),
        ("WASHINGTON (AP) — The president speaks at the White House on Jan 3, 2020.",
         "The president speaks at the White House."),
        ("Children play in a fountain in Rome. REUTERS/Remo Casilli", "Children play in a fountain in Rome."),
        ("A cat sleeps on a sofa. Courtesy of the Smith family", "A cat sleeps on a sofa."),
        ("A photo issued Feb 18, 2021, shows a rover on a test track", "A rover on a test track."),
        ("This NASA photo shows the rover's wheels", "The rover's wheels."),
        # a date the caption gives for what is shown is no filing date: only a wire caption's closing
        # date and a release date go
        ("Eleanor Roosevelt and Charles Anderson on April 19, 1941.",
         "Eleanor Roosevelt and Charles Anderson on April 19, 1941."),
        ("Troops sent to quell rioting in D.C. on July 21, 1919", "Troops sent to quell rioting in D.C. on July 21, 1919."),
        ("Troops in D.C. on July 21, 1919. PHOTO: AP", "Troops in D.C."),
        ("The comet over the observatory, released on March 3, 2021", "The comet over the observatory."),
    ],
)
def test_credit_forms(caption, expected):
    assert strip_credits(caption)[0] == expected


def test_illustration_lead_in_reports_the_medium():
    assert strip_credits("This NASA handout illustration obtained Feb 15, 2021 shows a rover")[1] == "illustration"


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<p>Two <b>cats</b> &amp; a dog</p>", "Two cats & a dog"),
        ("A cat<script>alert('x')</script> sleeps", "A cat sleeps"),
        ("tab\there\x00 and\u200b zero-width\r\nnewline", "tab here and zero-width newline"),
        ("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
        (None, ""),
    ],
)
def test_sanitise(raw, clean):
    assert sanitise(raw) == clean


def test_sanitise_caps_length_at_a_word():
    text = sanitise("word " * 2000, limit=100)
    assert len(text) <= 100 and text.endswith("word")


def test_fit_prefers_sentence_then_clause_then_phrase():
    assert fit("A red bus. It waits at a stop near the old town hall in the rain.", 20) == ("A red bus.", True)
    text = "Emmanuel Macron sits in front of a screen, during a visit to the French space agency in Paris"
    assert fit(text, 70) == ("Emmanuel Macron sits in front of a screen.", True)
    assert fit("Short enough.", 125) == ("Short enough.", False)


def test_fit_closes_brackets_it_would_leave_open():
    alt, cut = fit("The area where the rover landed (shown on the large screen at the back of the room)", 50)
    assert cut and "(" not in alt and alt.endswith(".")


@given(st.text(min_size=0, max_size=400), st.integers(min_value=20, max_value=200))
def test_fit_never_exceeds_budget_or_cuts_words(text, budget):
    alt, cut = fit(text, budget)
    assert len(alt) <= budget
    clean = " ".join(text.split())
    if cut and not alt.endswith("…"):  # "…" marks the one case with no word boundary in reach
        words = {x.rstrip(".,;:") for x in clean.split()}
        assert all(w.rstrip(".,;:") in words for w in alt.rstrip(".").split())
    if alt.endswith("…"):
        assert " " not in alt and clean.startswith(alt[:-1])


def test_fit_marks_a_word_longer_than_the_budget():
    assert fit("x" * 50, 20) == ("x" * 19 + "…", True)


def test_sentences_respects_abbreviations():
    assert sentences("They landed in the U.S. Then they left. Dr. Lee waved.") == [
        "They landed in the U.S. Then they left.", "Dr. Lee waved."]


def test_containment_is_word_overlap_not_exact_match():
    assert containment("Two cats sleeping on shoes", "Our two cats, sleeping on a pair of shoes") == 1.0
    assert containment("A red bus", "Two cats") == 0.0


def test_seed_caption_table_in_docs_is_current():
    from evaluation.seed_table import TABLE, render

    assert TABLE.read_text(encoding="utf-8") == render(), "run: python -m evaluation.seed_table"


def test_sanitise_entity_encoded_markup_does_not_come_back_as_tags():
    # Found by the attack suite: "&lt;script&gt;" decoded once became a literal <script> tag in the alt.
    from service.text import sanitise

    assert sanitise("&lt;script&gt;alert(1)&lt;/script&gt; Harbour") == "Harbour"
    assert sanitise("&lt;b&gt;Bold&lt;/b&gt; move") == "Bold move"
    assert sanitise("7 &gt; 3 and 5 &lt; 6") == "7 > 3 and 5 < 6"


def test_initials_and_reign_marks_do_not_end_a_sentence():
    from service.text import fit, sentences

    text = "The Red Sox were honored by President George W. Bush after their win. They met at noon."
    assert sentences(text)[0].endswith("George W. Bush after their win.")
    assert sentences("Emperor Taizu of Song (r. 960–976), founder of the dynasty. More.")[0].endswith("dynasty.")
    cut, was_cut = fit("Egerton R. Young's Winter Adventures of Three Boys in the Great Lone Land, a book of 1899", 60)
    assert was_cut and not cut.endswith("R.")
