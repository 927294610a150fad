"""Plain-text helpers for untrusted page text and for alt text itself.

Everything here is deterministic string work: sanitising caption/context input,
removing credit lines and handout lead-ins, cutting to a length budget at a clause
boundary, and measuring word overlap.
"""
from __future__ import annotations

import re
import unicodedata

from selectolax.lexbor import LexborHTMLParser

MAX_INPUT_CHARS = 4000  # page text beyond this adds nothing to a 125-character alt

# --- untrusted input -------------------------------------------------------------------


_TAG = re.compile(r"</?[A-Za-z!?][^<>]*>")


def _html_text(text: str) -> str:
    tree = LexborHTMLParser(text)
    tree.strip_tags(["script", "style", "noscript", "template"])
    return tree.text(separator=" ")


def sanitise(text: str | None, limit: int = MAX_INPUT_CHARS) -> str:
    """HTML -> text, control and format characters removed, whitespace collapsed, capped.

    Page text is data: nothing in it is ever executed or obeyed, this only makes it
    clean enough to quote.
    """
    if not text:
        return ""
    if "<" in text or "&" in text:
        text = _html_text(text)
        if _TAG.search(text):  # entity-encoded markup, decoded once: it must not come back as tags
            text = _TAG.sub(" ", _html_text(text))
    text = unicodedata.normalize("NFC", text)
    text = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") else ch for ch in text)
    text = " ".join(text.split())
    return cut_words(text, limit)


def cut_words(text: str, limit: int) -> str:
    """Clean text cut to at most ``limit`` characters at a space (sanitise's cap)."""
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0]
    return text


# --- credit lines, bylines, handout lead-ins, filing datelines ----------------------------

# a month, named in full or short ("Sept")
MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
         r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_DATE = rf"(?:{MONTH}\s+\d{{1,2}},?\s+\d{{4}}|\d{{1,2}}\s+{MONTH}\s+\d{{4}})"
_AGENCY = (r"(?i:Reuters|AP|AFP|EPA(?:-EFE)?|Getty Images|Xinhua|Bloomberg|ANP|dpa|PA|Shutterstock|Alamy|"
           r"NurPhoto|SIPA|Imagn|USA TODAY Sports)")
_MEDIUM = r"(?:handout\s+)?(?:photo(?:graph)?|picture|image|illustration|rendering|video grab|still|handout)"

# (pattern, whether it marks a wire or agency caption, whose closing date is its filing date)
_CREDIT_PATTERNS = [
    # "PHOTO: NASA VIA EPA-EFE", "Credit: Jane Doe", "Image: X" at the end
    (re.compile(r"[\s.,;]*\b(?:PHOTO|PHOTOS|PHOTOGRAPH|IMAGE|PICTURE|CREDIT|SOURCE|FOTO)S?\s*:\s*[^.]*\.?\s*$", re.I), True),
    # "Photo by Jane Doe/Getty Images", "(Photo by X)", "Photograph: X/Guardian"
    (re.compile(r"[\s.,;]*\(?\b(?:photo|photograph|picture|image)\s+(?:by|courtesy(?: of)?)\s+[^.()]*\)?\.?\s*$", re.I),
     False),
    # "© 2021 Jane Doe", "(c) Jane Doe", "Copyright 2021 X"
    (re.compile(r"[\s.,;]*(?:©|\(c\)|copyright)\s*[^.]*\.?\s*$", re.I), False),
    # "Courtesy of NASA", "Courtesy NASA/JPL"
    (re.compile(r"[\s.,;]*\bcourtesy(?: of)?\s+[^.]*\.?\s*$", re.I), False),
    # "(Reuters)", "(AP Photo/Jane Doe)", "REUTERS/Jane Doe", "/AFP"
    (re.compile(rf"\s*\(\s*{_AGENCY}(?:\s+Photo)?(?:\s*/\s*[^)]*)?\s*\)", re.I), True),
    (re.compile(rf"[\s.,;]*\b{_AGENCY}(?:\s+Photo)?\s*/\s*[A-Z][^.]*\.?\s*$"), True),
    (re.compile(rf"\s*/\s*{_AGENCY}\b\.?\s*$"), True),
]
# "PASADENA, Calif. (Reuters) - " / "WASHINGTON — " at the start of a wire caption
_DATELINE = re.compile(r"^[A-Z][A-Z .'-]{2,}(?:,\s*[A-Z][\w.]*)?\s*(?:\([^)]*\))?\s*[-—–]+\s+")
# "A handout photo made available by NASA shows", "This NASA photo shows",
# "A photo issued Feb 18, 2021, shows", "This NASA handout illustration obtained Feb 15, 2021 shows"
_LEAD_IN = re.compile(
    rf"^(?:A|An|This|The|In this)\s+(?:[\w’'.&-]+\s+){{0,3}}?(?P<medium>{_MEDIUM})"
    rf"(?:\s+(?:made available|released|issued|provided|obtained|distributed|taken|received)"
    rf"(?:\s+(?:by|from)\s+[^,]+?)?)?(?:,?\s+(?:on\s+)?{_DATE})?,?"
    rf"\s+(?:shows|show|showing|depicts|depicting)\s+",
    re.I,
)
# Filing dates: "Feb 18, 2021", ", on Feb 18, 2021," in a wire caption -- the date stamp every agency
# caption carries, whatever it shows; the article around it is dated already.
_FILING_DATE = re.compile(rf"(?:,\s*|\s+)(?:on\s+)?{_DATE}(?=\s*(?:[,.;]|$|\s+(?:in|at)\s))", re.I)
# Publication dates anywhere: when a picture was released, not when what it shows happened.
_PUBLISHED_DATE = re.compile(
    rf"(?:,\s*|\s+)(?:made available|released|issued|distributed|obtained)(?:\s+on)?\s+{_DATE},?",
    re.I)


def strip_credits(text: str) -> tuple[str, str | None]:
    """Remove credits, lead-ins, publication dates and a wire caption's filing date. Returns (text,
    medium named in a lead-in).

    The medium matters when it is not a photograph ("illustration"); the caller may keep it.
    """
    medium = None
    dated = _DATELINE.sub("", text)
    wire = dated != text  # "WASHINGTON (AP) — ...": a wire service's dateline
    text = _PUBLISHED_DATE.sub("", dated)
    lead = _LEAD_IN.match(text)
    if lead:
        medium = lead.group("medium").lower().replace("handout", "").strip() or None
        text = text[lead.end():]
        wire = True  # "A handout photo made available by NASA shows": an agency's release
    changed = True
    while changed:  # credits can stack: "... (Reuters) PHOTO: X"
        before = text
        for pattern, marks_wire in _CREDIT_PATTERNS:
            text, found = pattern.subn("", text)
            wire = wire or (found > 0 and marks_wire)
        changed = text != before
    if wire:
        # A wire caption closes with the date it was filed for, whatever it shows. Elsewhere a date
        # is what the caption says about the picture ("... sent to quell rioting in D.C. on July 21,
        # 1919"): a sighted reader of the caption gets it, so the alt keeps it.
        text = _FILING_DATE.sub("", text)
    text = re.sub(r"\s+([,.;:])", r"\1", text)
    text = re.sub(r",(\s*[,.])", r"\1", text)
    text = " ".join(text.split()).strip(" ,;:")
    if text and not ends_sentence(text):
        text += "."
    return upper_first(text), medium


def ends_sentence(text: str) -> bool:
    """Whether ``text`` already ends with a sentence's closing mark: a full stop, question or
    exclamation mark, ellipsis, closing bracket or double quote, or a closing single quote after
    the sentence's own full stop ("... I cannot stay.'")."""
    return text.endswith((".", "!", "?", ")", '"', "”", "…")) or bool(re.search(r"[.!?][’']$", text))


# --- sentences, clauses and the length budget -------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9“\"(])")
# A full stop that ends an abbreviation, an initial ("George W. Bush") or a reign/date mark
# ("r. 960", "c. 1850"), not a sentence.
_ABBREVIATIONS = re.compile(r"\b(?:U\.S|U\.K|Mr|Mrs|Ms|Dr|St|Jr|Sr|Calif|No|vs|Gen|Col|Lt|Sgt|Fig|approx|[A-Z]|r|c|ca|b|d|fl)\.$")


def sentences(text: str) -> list[str]:
    parts, current = [], ""
    for piece in _SENTENCE_END.split(text):
        current = f"{current} {piece}".strip() if current else piece
        if not _ABBREVIATIONS.search(current):
            parts.append(current)
            current = ""
    if current:
        parts.append(current)
    return parts


def upper_first(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


_LEADING_FUNCTION_WORD = re.compile(
    r"^(?:a|an|the|this|that|these|those|some|several|many|one|two|three|four|five|six|seven|eight|nine|ten"
    r"|about|at|in|on)\b"
)


def lower_first(text: str) -> str:
    """Lower-case a sentence's first word to continue it after a colon, only when it is a
    function word: "Two people" -> "two people", but "NASA's rover" or "Inter-Allied
    conference" keep their capitals."""
    return text[:1].lower() + text[1:] if _LEADING_FUNCTION_WORD.match(text[:12].lower()) and not text[1:2].isupper() else text


def fit(text: str, budget: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``budget`` characters, preferring a sentence, then a clause,
    then a word boundary; never mid-word. Returns (text, was_cut)."""
    text = " ".join(text.split())
    if len(text) <= budget:
        return text, False
    head = text[:budget]  # a cut at position < budget leaves room for the closing full stop
    for boundary in (
        r"[.!?](?=\s)",  # a sentence
        r"[;:—–](?=\s)|,(?=\s)",  # a clause set off by punctuation
        r"\s(?:and|but|while|as|during|with|after|before|where|which|who)\s",  # a clause
        r"\s(?:on|in|at|of|for|to|from|by|near|under|over|behind|beside)\s",  # a phrase
    ):
        cuts = [
            m.start() for m in re.finditer(boundary, head)
            if m.start() >= budget * 0.3 and _balanced(head[: m.start()]) and not _TIME_WORD.search(head[: m.start()])
            and not _ABBREVIATIONS.search(head[: m.start() + 1])  # "President George W." is no sentence
        ]
        if cuts:
            cut = head[: cuts[-1]].rstrip(" ,;:—–")
            return _close(cut), True
    cut = text[: budget - 1]
    if " " not in cut.strip():
        return cut + "…", True  # one word longer than the budget: mark the cut, there is no better place
    cut = (cut.rsplit(" ", 1)[0] if text[budget - 1] != " " else cut).rstrip(" ,;:—–")
    return _close(cut), True


# "moments after", "minutes before": the time word belongs to the clause that follows
_TIME_WORD = re.compile(r"\b(?:moments|seconds|minutes|hours|days|weeks|months|years|shortly|soon|just|right|long)$", re.I)


def _balanced(text: str) -> bool:
    return text.count("(") <= text.count(")") and text.count("“") <= text.count("”") and text.count('"') % 2 == 0


_DANGLING = re.compile(r"(?:,?\s+(?:with the text|with the words|reading|saying|that says|labell?ed|titled))+$", re.I)


def _close(text: str) -> str:
    """End a cut cleanly: drop an unclosed bracket or quote, and the words that led into it."""
    for open_, close in (("(", ")"), ("“", "”")):
        if text.count(open_) > text.count(close):
            text = text[: text.rfind(open_)].rstrip(" ,;:")
    if text.count('"') % 2:
        text = text[: text.rfind('"')].rstrip(" ,;:")
    text = _DANGLING.sub("", text).rstrip(" ,;:")
    return text if text.endswith((".", "!", "?", "”", '"', "…")) else text + "."


# --- words -------------------------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?", re.UNICODE)
STOP_WORDS = frozenset("""
a an the and or of with in on at by to for from as is are was were be been its it this that these those
his her their he she they we you i into onto over under near during while after before about than then
""".split())


def content_words(text: str) -> list[str]:
    return [w for w in (m.group(0).lower() for m in _WORD.finditer(text)) if w not in STOP_WORDS]


def containment(inner: str, outer: str) -> float:
    """Share of ``inner``'s content words that also occur in ``outer`` (0 when inner has none)."""
    words = content_words(inner)
    if not words:
        return 0.0
    pool = set(content_words(outer))
    return sum(w in pool for w in words) / len(words)
