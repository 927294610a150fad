"""Policy checks from the merge rules, as plain functions over one output.

Each check needs no reference, so they run on every image, including images a
dataset has no human description for. ``flags()`` names the checks an output
fails; ``aggregate`` metrics in ``evaluation.metrics`` turn them into shares.
"""
from __future__ import annotations

import re

from service.text import sanitise

# Credit lines, agency tags and bylines: not image content (DESIGN.md, merge rules).
# A label and a colon is a credit only when a name follows ("PHOTO: NASA", "Photo: Jane Doe");
# "Black-and-white photograph: a clock" is a description, so the next word's case matters.
# "PHOTO: Jane Doe" is a credit; "Black-and-white photograph: USS Texas" names the medium.
CREDIT_LABEL = re.compile(
    r"(?<![Bb]lack-and-white )(?i:\b(?:photo(?:graph)?|image|picture|credit|source|courtesy))\s*:\s*[A-Z]"
)
CREDIT_PATTERNS = [
    r"\bphoto(?:graph)?\s+(?:by|courtesy)\b",
    r"\bcourtesy\s+of\b",
    r"\((?:reuters|ap|afp|epa|ansa|dpa|getty(?:\s+images)?|ap\s+photo)\)",
    r"\breuters\b",
    r"\bgetty\s+images\b",
    r"\bassociated\s+press\b",
    r"\bap\s+photo\b",
    r"\bafp\b",
    r"\bepa(?:-efe)?\b",
    r"\bvia\s+(?:epa|reuters|afp|ap|getty)\b",
    r"\bhandout\b",
    r"\bshutterstock\b",
    r"\balamy\b",
    r"©",
    r"\(c\)\s*\d{4}",
    r"\bcopyright\b",
    r"\ball rights reserved\b",
    r"\bfile\s+photo\b",
]
_CREDIT = re.compile("|".join(CREDIT_PATTERNS), re.IGNORECASE)

# Openers that screen readers make redundant ("image, image of a dog").
BANNED_OPENERS = [
    r"(?:an?\s+|the\s+)?(?:image|picture|photo|photograph|graphic|illustration)\s+(?:of|showing|shows|depicting)\b",
    r"this\s+(?:is\s+an?\s+)?(?:image|picture|photo|photograph)\b",
    r"(?:there\s+is\s+)?an?\s+image\b",
]
_OPENER = re.compile(r"^\W*(?:" + "|".join(BANNED_OPENERS) + ")", re.IGNORECASE)

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# Fragments: alt text that is neither a sentence nor a clean noun phrase. Our own medium
# label ("Black-and-white photograph: ...") is allowed as a lead; any other "X: Y" lead is the
# "Subject: object list" form no person writes ("NASA: two birds.", "Fig: ...").
MEDIUM_LABELS = ("Black-and-white photograph", "Chart", "Logo", "Illustration", "Screenshot", "Diagram", "Map",
                 "Document")
_LABEL_LEAD = re.compile(r"^(?P<lead>[^.:!?“”\"]{1,60}):\s+(?P<rest>.*)")
# Colons a person writes that are no "Subject: list" label (each still leaves the rest checked):
# a numbered figure label the page cites ("Figure 1: The molar ..."), a title's subtitle ("Star Trek:
# The Next Generation ..."), a colon that introduces a quotation (what a sign says) and one that
# introduces who is where ("..., left to right: ...", "Four mongooses (clockwise from top left): ...",
# "... in February: First row, ..."). A colon inside brackets or quotes ("Oryza sativa (Oryzoideae:
# Oryzeae)") is no lead at all.
_NUMBERED_LABEL = re.compile(r"^(?i:fig(?:ure)?\.?|plate|table|map|chart|diagram)\s*\d+[a-z]?$")
_TITLE_WORD = re.compile(r"^(?:[A-Z][\w’'&-]*|of|the|and|in|on|at|for|a|an|to|de|von|van)$")
_MONTHS = frozenset("january february march april may june july august september october november december".split())
_POSITION = re.compile(
    r"(?i:\b(?:left to right|right to left|top to bottom|bottom to top|clockwise|counter-?clockwise|"
    r"from (?:the )?(?:left|right|top|bottom)|(?:top|bottom|front|back|first|second|third|middle) row))"
)
_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|“[^”]*”|\"[^\"]*\"")
_DANGLING = frozenset("""
a an the this that these those of in on at by for from with to into onto over under about as and or but nor
its their his her our your my whose where which who when while
""".split())
_POSSESSIVE_END = re.compile(r"(?:['’]s|s['’])$", re.I)
_ABBREVIATION_ONLY = re.compile(r"^(?:(?i:fig(?:ure)?)\.?\s*\d*[a-z]?|[A-Z]{1,6}|(?:[A-Za-z]\.){2,})$")
DUPLICATE_THRESHOLD = 0.8

# Flag codes, also shown as filters in the HTML gallery.
OVER_BUDGET = "over_budget"
CREDIT_LEAK = "credit_leak"
BANNED_OPENER = "banned_opener"
CAPTION_DUPLICATE = "caption_duplicate"
EMPTY_ALT = "empty_alt"
FRAGMENT = "fragment"
NEEDS_REVIEW = "needs_review"


def plain_text(text: str | None) -> str:
    """Caption/context as plain text, exactly as the service cleans page text."""
    return sanitise(text, limit=1_000_000)


def tokens(text: str | None) -> list[str]:
    return _WORD.findall((text or "").lower())


def credit_leak(alt: str) -> bool:
    return bool(alt and (_CREDIT.search(alt) or CREDIT_LABEL.search(alt)))


def banned_opener(alt: str) -> bool:
    return bool(alt and _OPENER.match(alt))


def caption_overlap(alt: str, caption: str | None) -> float:
    """Share of the alt's distinct words that the caption already has (containment), 0 when either is empty."""
    alt_words, cap_words = set(tokens(alt)), set(tokens(caption))
    if not alt_words or not cap_words:
        return 0.0
    return len(alt_words & cap_words) / len(alt_words)


def caption_duplicate(alt: str, caption: str | None, threshold: float = DUPLICATE_THRESHOLD) -> bool:
    return caption_overlap(alt, caption) > threshold


def fragment(alt: str) -> bool:
    """True when the alt reads as a broken fragment: a "Subject: list" lead other than a
    medium label, a sentence that ends on an article, preposition, conjunction or possessive
    ("Members of NASA's."), or a sentence that is only an abbreviation or figure label."""
    text = " ".join((alt or "").split())
    if not text:
        return False
    for label in MEDIUM_LABELS:
        if text.startswith(label + ": "):
            text = text[len(label) + 2:]
            break
    if _label_lead(text):
        return True
    body = re.sub(r"“[^”]*”|\"[^\"]*\"", "quote", text)  # quoted text is what the image says
    for sentence in re.split(r"(?<=[.!?])\s+", body):
        words = sentence.strip(" .!?…").split()
        if not words:
            continue
        last = words[-1].strip(",;").lower()
        if last in _DANGLING or _POSSESSIVE_END.search(last):
            return True
        if len(words) <= 2 and _ABBREVIATION_ONLY.match(" ".join(words)):
            return True
    return False


def _label_lead(text: str) -> bool:
    """Does the alt open with a "Label: ..." lead (not one of the colons people write, above)?"""
    lead = _LABEL_LEAD.match(text)
    if not lead:
        return False
    head, rest = lead.group("lead").strip(), lead.group("rest")
    if "(" in head and ")" not in head.split("(")[-1]:
        return False  # the colon is inside an open bracket
    if ":" not in _BRACKETED.sub("", text.split(": ", 1)[0] + ": "):
        return False
    if _NUMBERED_LABEL.match(head) or rest[:1] in ("“", '"', "‘"):
        return False
    if _POSITION.search(head[-40:]) or _POSITION.match(rest[:30]) or _POSITION.search(rest.split(",")[0][:30]):
        return False
    head_words, rest_words = head.split(), rest.split()
    title = (all(_TITLE_WORD.match(w) for w in head_words) and head_words[0][:1].isupper()
             and not any(w.lower() in _MONTHS for w in head_words)
             and len(rest_words) >= 2 and all(w[:1].isupper() for w in rest_words[:2]))
    return not title


def empty_alt(alt: str, informative: bool = True) -> bool:
    """An informative image must not get alt=""; decorative ones should."""
    return informative and not (alt or "").strip()


def within_budget(alt: str, max_chars: int) -> bool:
    return len(alt or "") <= max_chars


def flags(
    alt: str,
    caption: str | None,
    *,
    max_chars: int,
    needs_review: bool | None = None,
    informative: bool = True,
) -> list[str]:
    """Codes of the policy checks this output fails."""
    out = []
    if not within_budget(alt, max_chars):
        out.append(OVER_BUDGET)
    if credit_leak(alt):
        out.append(CREDIT_LEAK)
    if banned_opener(alt):
        out.append(BANNED_OPENER)
    if caption_duplicate(alt, caption):
        out.append(CAPTION_DUPLICATE)
    if empty_alt(alt, informative):
        out.append(EMPTY_ALT)
    if fragment(alt):
        out.append(FRAGMENT)
    if needs_review:
        out.append(NEEDS_REVIEW)
    return out


def values(
    alt: str,
    caption: str | None,
    *,
    max_chars: int,
    needs_review: bool | None = None,
    informative: bool = True,
) -> dict[str, float | None]:
    """Per-image numbers behind the policy metrics; None where a check does not apply
    (caption duplication without a caption, needs_review for systems that have no such flag)."""
    alt = alt or ""
    return {
        "length": float(len(alt)),
        "within_budget": float(within_budget(alt, max_chars)),
        "credit_leak": float(credit_leak(alt)),
        "banned_opener": float(banned_opener(alt)),
        "caption_duplicate": float(caption_duplicate(alt, caption)) if plain_text(caption) else None,
        "empty_alt": float(empty_alt(alt, informative)) if informative else None,
        "fragment": float(fragment(alt)) if alt else None,
        "needs_review": None if needs_review is None else float(needs_review),
    }
