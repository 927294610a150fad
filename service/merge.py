"""Draft + page context -> alt text people can trust (WCAG 1.1.1, the W3C alt decision tree).

Order of decisions:
1. decorative -> alt="".
2. functional (image in a link or button) -> the purpose, not the picture.
3. text -> the words in the image.
4. informative / complex -> the draft, grounded in the caption's names and
   complementing a visible caption, or carrying its key facts when the caption is
   not shown; complex images also get a long description.
5. existing human alt is kept unless it fails a quality rule, and then ours is only
   proposed, with reasons.
Every step is deterministic: the same input gives the same output.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from models.draft import OUT_OF_DOMAIN, Draft
from service import ner
from service.page import PageContext
from service.result import AltResult, Source
from service.text import (
    MONTH,
    containment,
    content_words,
    ends_sentence,
    fit,
    lower_first,
    sanitise,
    sentences,
    strip_credits,
    upper_first,
)

POLICY_VERSION = "2026-12-02.1"  # part of the cache key: bump when output for the same input changes
DRAFT_LANGUAGE = "en"  # what a draft that does not say is written in (captioners write English only)
CAPTION_CONFIDENCE = 0.7  # a human wrote the caption, but it may not describe the picture

# --- the alt text's own form ------------------------------------------------------------

_OPENER = re.compile(
    r"^(?:(?:this|the|an?)\s+)?(?:(?P<bw>black[- ]and[- ]white|monochrome|greyscale|grayscale)\s+)?"
    r"(?:image|picture|photo|photograph|pic|graphic|img)\s+(?:of|showing|shows|that shows|depicting|with)\s+",
    re.I,
)
_URL = re.compile(r"\b(?:https?://|www\.)\S+", re.I)
_FILENAME = re.compile(r"\b[\w.-]+\.(?:jpe?g|png|gif|webp|bmp|tiff?|avif|svg|heic)\b", re.I)
_CAMERA_NAME = re.compile(r"^(?:IMG|DSC|DSCN|DCIM|PXL|MVIMG|Screenshot|Screen Shot|image|photo)[ _-]?\d+", re.I)
PLACEHOLDERS = frozenset("""
image picture photo photograph img graphic alt alt-text untitled spacer banner icon placeholder null none
todo tbd n/a na thumbnail thumb figure logo
""".split()) | {"alt text", "image placeholder", "no description", "insert alt text"}


def polish(text: str) -> str:
    """Clean form: no 'image of' opener (unless the medium matters), no credit line, URL
    or file name, sentence case, ends with a full stop. Idempotent."""
    text = _FILENAME.sub("", _URL.sub("", sanitise(text)))
    if not re.search(r"[^\W_]", text):
        return ""  # punctuation alone says nothing
    medium, text = _split_medium(text)  # our own "Chart: ..." prefix is not a credit line
    opener = _OPENER.match(text)
    if opener:
        text = text[opener.end():]
        medium = "Black-and-white photograph" if opener.group("bw") else medium
    starts_lower = text[:1].islower()
    text = strip_credits(text)[0]  # a model can echo a watermark or credit line too
    if starts_lower and medium:
        text = text[:1].lower() + text[1:]  # it continues the medium's sentence
    text = re.sub(r"([.!?])(?:\s*[.!?])+", r"\1", re.sub(r"\s+([.,;:!?])", r"\1", text))
    text = " ".join(text.split()).strip(" ,;:-")
    if not re.search(r"[^\W_]", text):
        text = ""  # nothing but punctuation left once credits went
    if text and not ends_sentence(text):
        text += "."
    if medium:
        return f"{medium}: {lower_first(text)}" if text else f"{medium}."
    return upper_first(text)


def finalise(text: str, budget: int) -> tuple[str, bool]:
    """polish, then cut to the budget at a clause boundary. Returns (alt, was_cut)."""
    return fit(polish(text), budget)


# --- existing alt -----------------------------------------------------------------------


def alt_problems(alt: str, page: PageContext, budget: int) -> list[str]:
    """Why an alt text fails the quality rules (empty list: it passes). Applied to a
    human's existing alt and to our own output alike. ``alt`` is clean text: PageContext
    cleaned the existing alt, and the merge's own output is polished (or read text cleaned)."""
    text = alt
    bare = text.strip(" .").lower()
    if not bare:
        return ["empty"] if page.role != "decorative" else []
    problems = []
    if _FILENAME.search(text) or _CAMERA_NAME.match(text) or re.fullmatch(r"[\w-]+\.\w{2,4}", bare):
        problems.append("filename")
    if bare in PLACEHOLDERS:
        problems.append("placeholder")
    if len(text) > 2 * budget:
        problems.append("too_long")
    if not strip_credits(text)[0]:
        problems.append("credit_only")
    caption = page.caption or ""
    if caption and page.caption_visible and containment(text, caption) >= 0.9 and containment(caption, text) >= 0.9:
        problems.append("duplicates_caption")
    return problems


# --- grounding --------------------------------------------------------------------------

_ONE_PERSON = re.compile(
    r"\b(?:a|an|the|one)\s+(?:(?:young|old|older|elderly|smiling|seated|standing)\s+)?"
    r"(?:person|man|woman|boy|girl|child|gentleman|lady)\b",
    re.I,
)
_MANY_PEOPLE = re.compile(r"\b(?:people|persons|men|women|children|crowd|group|team|couple|two|three|four|several)\b", re.I)


def _people_seen(draft: Draft) -> int | None:
    """How many people the evidence shows; None when the backend does not count."""
    ev = draft.evidence
    if ev.objects or ev.faces is not None:
        people = sum(o.count for o in ev.objects if o.name == "person")
        return people or (ev.faces or 0)
    # Backends that only give text (VLMs): trust the sentence only when it is unambiguous.
    if _MANY_PEOPLE.search(draft.text):
        return None
    return 1 if len(_ONE_PERSON.findall(draft.text)) == 1 else None


def ground(text: str, draft: Draft, caption: str, nlp_mode: str) -> tuple[str, str | None]:
    """Replace a generic person noun by the caption's one named person, when exactly one
    person is seen and exactly one is named. Returns (text, name used or None)."""
    if not caption or _people_seen(draft) != 1:
        return text, None
    found = [e for e in ner.find_entities(caption, nlp_mode) if e.kind == "person"]
    if len(found) != 1 or not found[0].proper:
        return text, None  # a common noun the tagger took for a name ("Café in Leeds") is no one
    people = [found[0].text]
    if people[0].lower() in text.lower():
        return text, None
    match = _ONE_PERSON.search(text)
    if not match:
        return text, None
    grounded = text[: match.start()] + people[0] + text[match.end():]
    return upper_first(grounded), people[0]


_FIGURE_LABEL = re.compile(r"^\s*(?:fig(?:ure)?|plate|image|photo|map|table)\.?\s*\d+[a-z]?\s*[.:)–—-]\s*", re.I)


def caption_subject(caption: str, nlp_mode: str) -> str | None:
    """The caption's lead noun phrase, if short: who or what the picture is of. A figure
    number ("Fig. 3:") is a label, not a subject."""
    caption = _FIGURE_LABEL.sub("", caption) if caption else ""
    first = sentences(caption)[0].rstrip(".") if caption else ""
    return ner.subject_phrase(first, nlp_mode, max_words=8) if first else None


# After a caption's facts, a wrong object is worse than none: only confident drafts add.
APPEND_DRAFT_ABOVE = 0.6
# Beside a caption's words the draft adds value only if it is right: a wrong thing misleads a reader
# who cannot check the picture, and the caption already names the image. So the bar there is the
# calibrated confidence at which a draft is right nineteen times in twenty, derived on COCO dev, not
# on the caption sets: drafts at or above 0.85 named only things the references name 52 of 54 times
# (96%), against 89% for all drafts at the 0.6 bar (evaluation/results/coco-dev/samples.jsonl;
# tests/service/test_merge.py re-derives it from that committed run).
ADD_BESIDE_CAPTION_ABOVE = 0.85
_QUOTED_TEXT = re.compile(r",?\s*with the text “[^”]*”")
_GENERIC = frozenset({"photograph", "photo", "image", "picture", "view", "no", "objects", "could", "recognised"})


def _out_of_domain(draft: Draft) -> bool:
    """Labels from photo classifiers (ImageNet classes, COCO objects) on a kind of image they
    were not trained on: a map, chart, drawing, scan, logo or screenshot. A backend that
    reports no such labels (a VLM) describes these images in its own words."""
    return draft.evidence.kind in OUT_OF_DOMAIN and bool(draft.evidence.labels or draft.evidence.objects)


def _trusted(draft: Draft) -> bool:
    """May the draft's objects be stated beside a caption? Only when confident and not
    photo-classifier labels on a kind of image those classifiers do not know."""
    return draft.confidence >= APPEND_DRAFT_ABOVE and not _out_of_domain(draft)


# Words by which a caption says its image is not a photograph of real things: a made picture, a
# document or an object that depicts things. The photo models see what is depicted as if real (an
# engraving's figures as "a group of people", a coin's head as "a person"), and from pixels alone
# they cannot tell a print or a painting from a photograph.
_MADE_IMAGES = frozenset("""painting paintings drawing drawings engraving engravings etching etchings lithograph
lithography woodcut woodcuts illustration illustrations sketch sketches cartoon cartoons caricature watercolour
watercolor fresco frescoes mural murals mosaic mosaics tapestry miniature map maps chart charts diagram diagrams
schematic poster posters coin coins medal medals stamp stamps banknote banknotes manuscript
sculpture sculptures statue statues logo emblem screenshot rendering artwork
""".split())


def _adds_beside_caption(draft: Draft, caption: str) -> bool:
    """May a draft sentence be stated beside a caption's words? Only a photo classifier's on a photo
    (the kind its calibration was measured on) or a backend that reports no classifier labels (it
    describes any kind of image in its own words), and only above the stricter bar: see
    ADD_BESIDE_CAPTION_ABOVE. A caption that says the image is a painting, engraving, map, coin...
    (_MADE_IMAGES) outranks the pixels' "photo": the photo classifier is out of its domain there."""
    own_words = not (draft.evidence.labels or draft.evidence.objects)
    if not own_words and set(content_words(caption)) & _MADE_IMAGES:
        return False
    return (draft.evidence.kind == "photo" or own_words) and draft.confidence >= ADD_BESIDE_CAPTION_ABOVE


def _without_guessed_setting(text: str, draft: Draft) -> str:
    """A draft beside a caption, without a setting read from a whole-image class. The draft's
    confidence covers the things it names, and a setting read from them ("a toilet": "in a bathroom")
    is as sure as they are; a setting from a whole-image class ("ballplayer": "at a baseball game",
    for a cricket ground) has no confidence at all, and on COCO dev it was right 9 times in 14
    (against 41 in 47 for settings read from the things seen): far from the nineteen in twenty a
    statement beside a caption needs (ADD_BESIDE_CAPTION_ABOVE)."""
    scene = draft.evidence.scene
    if not scene or draft.evidence.scene_source != "classes":
        return text
    return re.sub(rf"\s+{re.escape(scene)}\b", "", text, count=1)


def _visual_addition(sentence: str, draft: Draft) -> str | None:
    """What a draft sentence adds after a caption: the things seen, without text read from
    a photo (the caption already says what matters; OCR in photos is mostly noise)."""
    if draft.evidence.kind not in ("text", "screenshot"):
        sentence = _QUOTED_TEXT.sub("", sentence)
    if not set(content_words(sentence)) - _GENERIC:
        return None
    return polish(sentence)


_IMAGE_KINDS = frozenset("""map chart graph diagram plot photo photograph painting drawing portrait illustration
screenshot logo poster cover print engraving sketch scan document figure image picture""".split())


def _caption_medium(medium: str | None, subject: str, draft: Draft) -> str | None:
    """The draft's medium worth saying before a caption's subject: not when the caption
    already says what kind of image it is (a person's word beats a pixel guess), not when the
    draft is unsure (a guessed kind is stated as fact no more than a guessed object), and not
    "Black-and-white photograph" (a photo's colour is seldom what a reader needs, and from pixels
    alone it calls prints, drawings and scans photographs)."""
    if not medium or medium == "Black-and-white photograph" or set(content_words(subject)) & _IMAGE_KINDS:
        return None
    return medium if _trusted(draft) else None


def _lead(medium: str | None, subject: str, draft: Draft) -> str:
    """The caption's subject as the alt's first sentence, after the draft's medium if any."""
    medium = _caption_medium(medium, subject, draft)
    return f"{medium}: {lower_first(subject)}." if medium else f"{upper_first(subject)}."


# Words that make a draft sentence more than one bare thing: a relation, a setting, a second thing.
_RELATION = frozenset("""on in at by with under over near beside behind front next holding riding sitting standing
lying carrying and or""".split())
_DETERMINER = re.compile(r"^(?:an?|the|one|two|three|four|five|six|seven|eight|nine|ten|several|many|some|"
                         r"(?:a|two|three) (?:group|pair|herd|flock|crowd|couple|row|set|pile|stack)s? of)\s+")
_PEOPLE = frozenset("person people persons man men woman women crowd".split())


def _thing_words(sentence: str) -> list[str]:
    """A draft sentence's words after its determiner or count: "Two buses on a street." ->
    ["buses", "on", "a", "street"]."""
    return re.findall(r"[\w-]+", _DETERMINER.sub("", sentence.strip().rstrip(".").lower()))


def _lone_thing(sentence: str) -> str | None:
    """The noun of a draft sentence that names one kind of thing and nothing more ("A brown
    clock.", "Three vases.", "A group of people."): no setting, relation or second thing.
    None for anything richer."""
    words = _thing_words(sentence)
    if not words or len(words) > 3 or any(w in _RELATION for w in words):
        return None
    return words[-1]


def _complements(addition: str, subject: str, nlp_mode: str) -> bool:
    """Does a draft sentence add anything to the caption's subject? A lone thing beside a
    subject that already says what kind of thing it is ("100 ruble gold coin") is the same thing
    named again, less well or wrongly ("A brown clock."); lone people only count them. A setting, a relation or a second thing adds; so does a lone thing beside a bare
    name ("Milo and Luna. Two cats."), which says what kind of thing the name is."""
    if _restates_kind(addition, subject):
        return False  # the subject's own kind named again, plainer: the caption says it better
    thing = _lone_thing(addition)
    if thing is None or thing in _GENERIC:
        return True  # richer than one thing, or about the image itself ("A mostly blue image.")
    if thing in _PEOPLE:
        return False  # "A person." says only that someone is there; the caption says who or what
    return not ner.names_a_kind(subject, nlp_mode)



# What a draft's word for a thing also covers, for the things the bundled detector and classifier
# name most beside captions: a caption names the particular kind ("trolleybus", "steamship", "jar"),
# the drafter only the general one. A compound ends with its kind ("trolleybus", "sailboat") and
# needs no entry. WordNet would say this in general, but its data does not ship in a package.
_KINDS = {
    "bus": frozenset("coach minibus omnibus".split()),
    "boat": frozenset("""ship vessel yacht ferry steamer steamship warship battleship cruiser destroyer frigate
                      submarine canoe kayak barge tug liner schooner galleon""".split()),
    "airplane": frozenset("aircraft airliner plane jet fighter bomber biplane monoplane seaplane glider".split()),
    "train": frozenset("locomotive railcar tram streetcar railway".split()),
    "car": frozenset("automobile sedan coupe convertible hatchback limousine taxi cab".split()),
    "truck": frozenset("lorry pickup".split()),
    "motorcycle": frozenset("motorbike scooter moped".split()),
    "bicycle": frozenset("bike tricycle".split()),
    "vase": frozenset("jar urn amphora pot jug".split()),
    "dog": frozenset("puppy hound terrier retriever spaniel poodle".split()),
    "cat": frozenset("kitten".split()),
    "horse": frozenset("pony stallion mare foal".split()),
    "cow": frozenset("cattle bull ox calf".split()),
    "bird": frozenset("""eagle owl parrot duck goose swan gull heron hawk falcon sparrow pigeon dove crow raven
                      penguin finch warbler woodpecker""".split()),
    "clock": frozenset("watch".split()),
    "tv": frozenset("television".split()),
    "couch": frozenset("sofa".split()),
}
_HEAD_ENDS = re.compile(r"\s(?:of|in|at|on|by|from|with|for|near|during|after|before)\s.*$", re.I)


def _first_thing(sentence: str) -> str | None:
    """The first thing a draft sentence names, singular: "A bus and a car on a street." -> "bus"."""
    head = []
    for word in _thing_words(sentence):
        if word in _RELATION:
            break
        head.append(word)
    if not head:
        return None
    return head[-1]


def _forms(word: str) -> set[str]:
    """A word and what it may be the plural of ("buses": bus, buse; "vases": vase, vas): no
    rule makes every English plural singular, so both are tried and a wrong one matches nothing."""
    forms = {word}
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        forms.add(word[:-1])
        if word.endswith("es"):
            forms.add(word[:-2])
    return {f for f in forms if len(f) >= 3}


def _restates_kind(addition: str, subject: str) -> bool:
    """Does the draft's first thing name what the caption's subject already is, only in a plainer
    word? "An SOR TNB 12 trolleybus. A bus and a car on a street." reads as two vehicles: a
    trolleybus IS a bus. The same word ("Our dog Rex. A black dog on a red sofa.") reads as the same
    thing described, so it stays. Words of the subject before its first preposition are its head."""
    thing = _first_thing(addition)
    things = _forms(thing) if thing else set()
    if not things or things & (_GENERIC | _PEOPLE):
        return False
    head = [_forms(w.lower()) for w in re.findall(r"[^\W\d_][\w-]*", _HEAD_ENDS.sub("", subject))]
    if any(forms & things for forms in head):
        return False
    kinds = frozenset().union(*(_KINDS.get(t, frozenset()) for t in things))
    return any(w.endswith(t) or w in kinds for forms in head for w in forms for t in things)


_MEDIA = ("Black-and-white photograph", "Chart", "Logo", "Illustration", "Screenshot", "Diagram", "Map", "Document")


def _split_medium(text: str) -> tuple[str | None, str]:
    """'Chart: bars.' -> ('Chart', 'bars.'); text without a medium prefix -> (None, text)."""
    head, sep, rest = text.partition(": ")
    return (head, rest) if sep and head in _MEDIA else (None, text)


# --- functional images ------------------------------------------------------------------

_DOWNLOADS = {"pdf": "PDF", "doc": "Word", "docx": "Word", "xls": "Excel", "xlsx": "Excel", "csv": "CSV",
              "ppt": "PowerPoint", "pptx": "PowerPoint", "zip": "ZIP", "epub": "EPUB", "mp3": "MP3", "mp4": "MP4"}


_LINK_SCHEMES = {"", "http", "https", "mailto", "tel"}  # "" is a relative path


def link_purpose(href: str | None) -> str | None:
    """What following a link does, from its address alone (PageContext cleaned it). Only
    http(s), mailto and tel addresses and relative paths say anything: a javascript:, data:
    or other scheme's text is code or content, never a purpose."""
    if not href:
        return None
    # As a browser reads an href: tabs, newlines and other controls inside do not count
    # (PageContext dropped them already; a direct caller's raw address gets the same reading).
    href = re.sub(r"[\x00-\x1f\x7f]", "", href)
    try:
        parts = urlsplit(href)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if parts.scheme not in _LINK_SCHEMES:
        return None
    if not parts.scheme and not parts.netloc and ":" in parts.path.split("/")[0]:
        return None  # "java script:..." or an encoded scheme: a relative path cannot have this
    if parts.scheme == "mailto":
        return f"Email {unquote(parts.path)}"
    if parts.scheme == "tel":
        return f"Call {unquote(parts.path)}"
    path = PurePosixPath(unquote(parts.path or "/"))
    if "q=" in parts.query or path.name.lower() in ("search", "find"):
        return "Search"
    if str(path) in ("/", ".", "") or path.stem.lower() in ("index", "home", "default"):
        return "Home" if not parts.netloc else f"{parts.netloc.removeprefix('www.')} home page"
    words = re.sub(r"[-_+.]+", " ", path.stem).strip()
    kind = _DOWNLOADS.get(path.suffix.lower().lstrip("."))
    if kind:
        return f"Download {words} ({kind})"
    return upper_first(words) if words else None


# --- the merge ----------------------------------------------------------------------------


@dataclass
class _Out:
    alt: str
    source: Source
    confidence: float
    warnings: list[str] = field(default_factory=list)
    long_description: str | None = None
    review: bool = False  # a rule, not the confidence, asks for review


def merge(
    draft: Draft | None, page: PageContext, *, max_chars: int = 125, review_below: float = 0.5,
    nlp_mode: str = "auto",
) -> AltResult:
    """``draft`` may be None only for a decorative image, which needs no description."""
    budget = page.max_chars or max_chars
    if page.role == "decorative":
        return AltResult(alt="", decorative=True, confidence=1.0, needs_review=False, source="human",
                         ai_generated=False, draft=draft)
    if draft is None:
        raise ValueError(f"a {page.role} image needs a draft")

    caption, medium = page.caption_split
    if page.role == "functional":
        out = _functional(draft, page, budget)
    elif page.role == "text":
        out = _text(draft, budget)
    else:
        out = _informative(draft, page, caption, medium, budget, nlp_mode)
        if page.role == "complex":
            out.long_description = _long_description(draft, caption, page.context or "")

    if not out.alt and page.role in ("informative", "complex"):
        # Never empty for an informative image: a screen reader would read the file name.
        kind = draft.evidence.kind if draft.evidence.kind not in ("unknown", "photo") else "photograph"
        out.alt, out.review = f"{kind.capitalize()}.", True
        out.warnings.append("no_description")

    if _out_of_domain(draft) and page.role in ("informative", "complex"):
        # A map, drawing or scan: the photo models' labels are guesses here, a person checks.
        out.warnings.append("out_of_domain")
        out.review = True

    # The output's language is the draft's (a chat model or remote server was asked for the page's
    # language and says so; captioners write English). Caption-only text is the page's own.
    written = out.source in ("caption", "human") or _primary(draft.lang or DRAFT_LANGUAGE) == _primary(page.lang)
    if out.alt and not written:
        out.warnings.append("language_mismatch")
        out.review = True
    if caption and page.caption_visible and out.alt and containment(out.alt, caption) >= 0.8:
        out.warnings.append("caption_duplicate")
    if out.alt and page.role in ("informative", "complex"):
        # Our own output is not page text: it is cleaned here, before the rules read it.
        own = [p for p in alt_problems(sanitise(out.alt, limit=100_000), page, budget)
               if p != "duplicates_caption"]  # reported above
        out.warnings += [f"poor_alt_{p}" for p in own]
        out.review = out.review or bool(own)
    needs_review = out.review or out.confidence < review_below
    if out.confidence < review_below:
        out.warnings.append("low_confidence")

    if page.existing_alt is not None:
        problems = [f"existing_alt_{p}" for p in alt_problems(page.existing_alt, page, budget)]
        kept = page.existing_alt
        if not problems:
            return AltResult(alt=kept, confidence=1.0, needs_review=False, source="human", ai_generated=False,
                             long_description=out.long_description, draft=draft)
        # Never replaced silently: the human's text stays until a person accepts ours.
        return AltResult(alt=kept, confidence=out.confidence, needs_review=True, source="human",
                         ai_generated=False, warnings=problems + out.warnings, proposal=out.alt,
                         long_description=out.long_description, draft=draft)

    return AltResult(
        alt=out.alt, confidence=round(out.confidence, 3), needs_review=needs_review,
        warnings=list(dict.fromkeys(out.warnings)), source=out.source, ai_generated=out.source != "human",
        long_description=out.long_description, draft=draft,
    )


def _primary(lang: str) -> str:
    return lang.replace("_", "-").split("-")[0].lower()


def _informative(draft: Draft, page: PageContext, caption: str, medium: str | None, budget: int,
                 nlp_mode: str) -> _Out:
    text = polish(_without_guessed_setting(draft.text, draft) if caption else draft.text)
    text, name = ground(text, draft, caption, nlp_mode)
    source: Source = "merged" if name else "draft"
    confidence = draft.confidence

    draft_medium, rest = _split_medium(text)
    if caption and not page.caption_visible:
        # Nobody sees the caption: the alt carries its key facts, then what the draft adds.
        labelled = _hidden_label(caption, page.context or "")
        full = polish(labelled or caption)
        facts = _lead_sentences(labelled or caption, budget)
        # The first sentence whole, even past the budget, up to twice it: with the caption hidden the
        # alt is the only route for its words, and a cut first sentence loses what the caption's writer
        # said first and most. WCAG sets no length limit for alt text (Understanding SC 1.1.1, the W3C
        # alt decision tree); 125 characters is screen-reader folklore (an old JAWS chunk size), and
        # twice the budget is where our own rules call alt too long (alt_problems). Later sentences are
        # added only while the budget holds: read one by one on Concadia dev, those that did not fit
        # were as often the article's context as a description ("The town of Atherton has backed
        # litigation against ...", "Six of the main actors appeared in all seven seasons"), and alt is
        # read in one breath; they reach the reader whole in the long description (below). A budget
        # the caller set for this image (page.max_chars, e.g. a CMS field's limit) stays a hard limit.
        def whole(text: str) -> int:
            return len(text) if not page.max_chars and budget < len(text) <= 2 * budget else budget

        room = whole(facts)
        if medium and medium not in ("photo", "photograph", "picture", "image"):
            lead = medium.capitalize()  # the page's own word for the kind of image
            lead = lead if lead.split()[-1].lower() not in facts.lower() else None
        else:
            lead = _caption_medium(draft_medium, facts, draft)  # the same rule as beside a visible caption
        if lead:
            facts = f"{lead}: {lower_first(facts)}"
            room = whole(facts)
        alt, cut = fit(facts, room)
        extra = _visual_addition(rest, draft)
        adds = (extra and containment(extra, facts) < 0.5 and _adds_beside_caption(draft, caption)
                and _complements(extra, caption_subject(caption, nlp_mode) or facts, nlp_mode))
        if adds and alt.endswith(")"):
            alt += "."  # "... (1955)" ends a sentence before the draft's own begins
        if adds and len(alt) + 1 + len(extra) <= budget:
            alt, source = f"{alt} {extra}", "merged"
        else:
            source = "caption"
        confidence = max(CAPTION_CONFIDENCE, draft.confidence)
        # What does not fit is still the caption's: the whole of it goes to the long description, which
        # a page can tie to the image (aria-describedby, a details element) for a reader who wants it.
        longer = full if len(alt) < len(full) and not alt.endswith(full) else None
        return _Out(alt, source, confidence, ["truncated"] if cut else [], long_description=longer)

    if caption and name:
        # One person seen and one named: the draft's sentence with that name in it, without
        # text read from the photo. When all it says is the name, the caption's own fuller
        # phrase ("Sir Henry Clinton in 1777") says it better.
        subject = caption_subject(caption, nlp_mode)
        sentence = _visual_addition(rest, draft)
        if subject and name.lower() in subject.lower() and (
                not sentence or _lone_thing(sentence) or not _adds_beside_caption(draft, caption)):
            # ... and a setting or relation from a draft below the bar beside a caption is not stated
            text = _lead(draft_medium, subject, draft)
        elif sentence:
            medium = _caption_medium(draft_medium, subject or "", draft)
            text = f"{medium}: {lower_first(sentence)}" if medium else upper_first(sentence)
    elif caption:
        # A visible caption: name who or what the picture is of (a whole noun phrase from the
        # caption: it is what the figure shows, so naming it is safe, even a person's name; what
        # is never done is giving that name to one of the people detected), then in a sentence of
        # its own what the draft adds, if it can be trusted and says something the subject does not.
        subject = caption_subject(caption, nlp_mode)
        addition = _visual_addition(rest, draft)
        # All the drafter can vouch for is already in the caption ("Two bears." beside "Two bears in
        # the grass"): only name the image, in the fewest words, so the caption is not read twice.
        said = bool(addition) and containment(addition, caption) >= 0.8
        if (said and subject and containment(caption, subject) >= 0.8 and len(addition) < len(subject)
                and not _drops_what_it_is(addition, subject)):
            subject = addition.rstrip(".")  # a verbless caption is all subject: the draft names it shorter
        if subject and (said or containment(subject, text) < 0.5):
            text, source = _lead(draft_medium, subject, draft), "merged"
            if addition and not said and _adds_beside_caption(draft, caption) and _complements(addition, subject, nlp_mode):
                text = f"{text} {addition}"  # an unsure object is never stated as fact beside a caption
        elif not _trusted(draft):
            # No subject to name and nothing trustworthy to add: say only what kind of image it
            # is and ask a person, rather than state a guess next to the caption.
            text, source = f"{draft_medium or 'Photograph'}.", "draft"
    alt, cut = fit(text, budget)
    return _Out(alt, source, confidence, ["truncated"] if cut else [])


def _drops_what_it_is(name: str, subject: str) -> bool:
    """Would the draft's shorter name lose what the thing is? In "A bottle of nifurtimox tablets" the
    "of" phrase after the noun says what the bottle holds, and "A bottle." says far less; "Two bears in
    the grass" loses only where the bears are (the caption beside it says so)."""
    thing = _first_thing(name)
    words = [w.lower() for w in re.findall(r"[\w-]+", subject)]
    spots = [i for i, w in enumerate(words) if thing and _forms(w) & _forms(thing)]
    return any(i + 1 < len(words) and words[i + 1] == "of" for i in spots)


def _hidden_label(caption: str, context: str) -> str:
    """A hidden caption without its figure label ("Figure 4." is a label, not a fact), unless the
    page's text cites that label: then readers meet "see Figure 1" and need the label to find the
    figure, and with the caption hidden the alt is the only place it is said ("Figure 1: ...")."""
    label = _FIGURE_LABEL.match(caption)
    if not label:
        return _label_sentence(caption.strip())
    rest = caption[label.end():].strip()
    word, number = re.match(r"\s*([A-Za-z]+)\.?\s*(\d+[a-z]?)", label.group(0)).groups()
    stem = r"fig(?:ure|\.)?" if word.lower().startswith("fig") else re.escape(word)
    if rest and context and re.search(rf"\b{stem}\s*{re.escape(number)}\b", context, re.I):
        word = "Figure" if word.lower().startswith("fig") else word.capitalize()  # "Fig." is read "fig"
        return f"{word} {number}: {rest}"
    return _label_sentence(rest)


_MONTH_DAY = re.compile(rf"^{MONTH}\s+\d{{1,2}}(?:,?\s+\d{{4}})?$|^\d{{4}}$")
_SHORT_LABEL = re.compile(r"^(?P<label>[^\s.:;,!?()“”\"]+(?:\s+[^\s.:;,!?()“”\"]+){0,2}):\s+(?P<rest>\S.*)$")


def _label_sentence(caption: str) -> str:
    """A hidden caption that opens with a short label ("BEdita: a screenshot of the dashboard",
    "September 26: Typhoon Vera storm path") is carried with the label as a sentence of its own
    ("BEdita. A screenshot of the dashboard."): the same words, in the "Subject. Description." form
    the merge writes beside a visible caption, never the "Subject: list" form. Only a name or date of
    up to three words followed by a description counts: "Star Trek: The Next Generation" is a title."""
    lead = _SHORT_LABEL.match(caption)
    if not lead:
        return caption
    label, rest = lead.group("label"), lead.group("rest")
    if re.search(r"(?i)\b(?:left|right|top|bottom|clockwise|row|above|below|inset)\b", label):
        return caption  # "Left to right: the mayor, ..." says who is where: the colon introduces a list
    if rest[:1].islower() or (_MONTH_DAY.match(label) and rest[:1].isupper()):
        return f"{label}. {upper_first(rest)}"
    return caption


def _lead_sentences(caption: str, budget: int) -> str:
    """A hidden caption's facts: as many of its sentences, from the first, as fit the budget
    whole (all of a short caption), and at least the first (cut to fit later)."""
    parts = sentences(caption)
    facts = polish(parts[0])
    for part in parts[1:]:
        longer = polish(f"{facts} {part}")
        if len(longer) > budget:
            break
        facts = longer
    return facts


def _functional(draft: Draft, page: PageContext, budget: int) -> _Out:
    if page.link_text:
        # The link already says where it goes; repeating it makes screen readers say it twice.
        return _Out("", "human", 1.0, ["redundant_with_link_text"])
    purpose = page.action or None
    source: Source = "human"
    if not purpose and draft.evidence.text:
        purpose, source = sanitise(draft.evidence.text) or None, "draft"  # a logo or icon label
    if not purpose:
        purpose, source = link_purpose(page.link_href), "merged"
    if not purpose:
        alt, _ = fit(polish(draft.text), budget)
        return _Out(alt, "draft", draft.confidence, ["functional_purpose_unknown"], review=True)
    alt, cut = fit(upper_first(purpose.rstrip(".")), budget)
    alt = alt.rstrip(".")  # a link name, not a sentence
    confidence = 0.9 if source == "human" else max(0.6, draft.confidence)
    return _Out(alt, source, confidence, ["truncated"] if cut else [])


def _text(draft: Draft, budget: int) -> _Out:
    words = sanitise(draft.evidence.text)  # read text is data too: no controls, no markup
    if not words:
        alt, _ = fit(polish(draft.text), budget)
        return _Out(alt, "draft", draft.confidence, ["no_text_found"], review=True)
    alt, cut = fit(words, budget)
    out = _Out(alt if cut else words, "draft", max(draft.confidence, 0.6))
    if cut:
        out.warnings.append("truncated")
        out.long_description = draft.evidence.text
    return out


def _long_description(draft: Draft, caption: str, context: str) -> str | None:
    parts = [caption, polish(draft.text)]
    if draft.evidence.text:
        parts.append("Text in the image: " + " / ".join(draft.evidence.text.splitlines()))
    if context:
        parts.append(fit(context, 600)[0])
    return "\n\n".join(p for p in parts if p) or None
