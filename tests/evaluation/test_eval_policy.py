from __future__ import annotations

import pytest

from evaluation import policy


@pytest.mark.parametrize("alt", [
    "NASA's Perseverance rover lands on Mars. PHOTO: NASA VIA EPA-EFE",
    "A protester holds a sign (Reuters)",
    "Crowds on the beach. Getty Images",
    "The summit at dawn © 2021 Jane Doe",
    "A handout photo made available by NASA shows the rover",
    "Firefighters at work, AFP",
    "Photo: Jane Doe",
    "Rover on the crater floor. Credit: NASA/JPL-Caltech",
])
def test_credit_lines_are_caught(alt):
    assert policy.credit_leak(alt)
    assert policy.CREDIT_LEAK in policy.flags(alt, None, max_chars=500)


@pytest.mark.parametrize("alt", [
    "Two bears run across dry ground.", "A photographer kneels in the snow.", "Shoppers at a market stall.", "",
    "Black-and-white photograph: a clock.", "Screenshot: a web page with a login form.",
])
def test_ordinary_descriptions_are_not_credit_lines(alt):
    assert not policy.credit_leak(alt)


@pytest.mark.parametrize("alt,banned", [
    ("Image of a dog on a sofa", True),
    ("picture of two cats", True),
    ("A photo of the harbour", True),
    ("An image showing a chart of sales", True),
    ("Photograph of the team", True),
    ("A picture frame on a white wall", False),
    ("Photographers gather at the finish line", False),
    ("Dog on a sofa", False),
])
def test_banned_openers(alt, banned):
    assert policy.banned_opener(alt) is banned


def test_caption_duplication_uses_containment():
    caption = "Emmanuel Macron speaks at the Elysee Palace in Paris on Tuesday."
    assert policy.caption_duplicate("Emmanuel Macron speaks at the Elysee Palace in Paris.", caption)
    assert not policy.caption_duplicate("A man in a dark suit at a lectern with two flags behind him.", caption)
    assert not policy.caption_duplicate("anything", None)


def test_values_and_flags():
    values = policy.values("", "A caption", max_chars=125, needs_review=True)
    assert values["empty_alt"] == 1.0 and values["needs_review"] == 1.0 and values["caption_duplicate"] == 0.0
    assert policy.values("x", None, max_chars=125)["caption_duplicate"] is None
    assert policy.values("", None, max_chars=125, informative=False)["empty_alt"] is None
    assert policy.flags("x" * 130, None, max_chars=125, needs_review=True) == [policy.OVER_BUDGET, policy.NEEDS_REVIEW]


def test_plain_text_strips_markup_and_control_characters():
    assert policy.plain_text("<b>Cats</b> &amp; dogs\x00\n  <script>x</script>") == "Cats & dogs"
    assert policy.plain_text(None) == ""


def test_a_medium_label_is_not_a_credit_line():
    from evaluation.policy import credit_leak

    assert not credit_leak("Black-and-white photograph: USS Texas, a boat.")
    assert credit_leak("A boat at sea. Photograph: Jane Doe/Reuters")


@pytest.mark.parametrize(
    ("alt", "broken"),
    [
        ("NASA: two birds.", True),  # "Subject: list"
        ("Members of NASA's: two birds.", True),
        ("Fig: Black-and-white photograph, a street.", True),
        ("Members of NASA’s.", True),  # ends on a possessive
        ("The area where.", True),
        ("A view of the.", True),
        ("Fig. 3.", True),
        ("Members of NASA's Perseverance rover team. Two birds.", False),
        ("Black-and-white photograph: two bears.", False),  # our medium label is a lead, not a subject
        ("A person riding a horse in a field.", False),
        ("Text reading “OPEN / IN”.", False),  # quoted text is what the image says
        ("", False),  # empty is its own check
        # colons people write (Concadia captions carried when hidden) are not "Subject: list" leads ...
        ("Star Trek: The Next Generation first-season cast photo.", False),  # a title's subtitle
        ("Cultivation of rice, Oryza sativa (Oryzoideae: Oryzeae), in Cambodia.", False),  # inside brackets
        ("Tech's 1917 backfield; left to right: Strupper, Harlan, Guyon, and Hill.", False),  # who is where
        ("Four mongooses (clockwise from top left): meerkat, yellow mongoose.", False),
        ("Conference participants in February: First row, left to right: Florence Harriman (US).", False),
        ('A government sign in Tangshan Township: "Please practice family planning."', False),  # a quotation
        ("Figure 1: The molar extinction coefficients of HbO2 and Hb.", False),  # a numbered figure label
        # ... but a label and a description still are, title-cased or not, bracketed or dated
        ("BEdita: a screenshot of the dashboard.", True),
        ("September 26: Typhoon Vera storm path.", True),
        ("Buildings: Black-and-white photograph.", True),
        ("NASA (left): two birds.", True),
        ("The first images: two birds.", True),
    ],
)
def test_fragment_check(alt, broken):
    from evaluation.policy import FRAGMENT, flags, fragment

    assert fragment(alt) is broken
    assert (FRAGMENT in flags(alt, None, max_chars=125)) is broken
