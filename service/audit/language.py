"""Which language an alt text is written in: lingua (its models ship inside the package),
restricted to common web languages so it stays quick: a fast pass over all of them, then
a full-accuracy check between just the page's language and the one found. Proper nouns are not a language
change: capitalised words after the first are left out before detection, and short
texts are not judged at all."""
from __future__ import annotations

import re
from functools import lru_cache

# ISO 639-1 codes of the languages the detector chooses between.
LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "da", "pl", "tr", "ru", "ja", "zh", "ar", "ko")
MIN_WORDS = 4
MIN_CONFIDENCE = 0.6  # the detected language's share; the page's own must be a third of it or less
CONFIRM = 0.75  # the other language's share against the expected one, with full models
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)


@lru_cache(maxsize=1)
def _detector():
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, code.upper())) for code in LANGUAGES]
    return LanguageDetectorBuilder.from_languages(*languages).with_low_accuracy_mode().build()


@lru_cache(maxsize=32)
def _pair(expected: str, candidate: str):
    """A full-accuracy detector for just two languages: confirms the quick one's verdict."""
    from lingua import IsoCode639_1, Language, LanguageDetectorBuilder

    pair = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in (expected, candidate)]
    return LanguageDetectorBuilder.from_languages(*pair).build()


def _common_words(text: str) -> list[str]:
    words = _WORD.findall(text)
    if not words:
        return []
    # Keep the first word (sentence case) and every word that is not capitalised.
    return [words[0]] + [w for w in words[1:] if not w[:1].isupper()]


def detect_language(text: str, expected: str) -> tuple[str, float, str] | None:
    """(ISO 639-1 code, confidence, English name) when the text is long enough to judge and
    clearly in a language other than ``expected`` (ISO 639-1); else None. Languages outside
    the detector's set are never flagged."""
    if expected not in LANGUAGES:
        return None
    words = _common_words(text)
    cjk = re.search(r"[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af\u0600-\u06ff\u0400-\u04ff]", text)
    if len(words) < MIN_WORDS and not (cjk and len(text.strip()) >= 4):
        return None
    values = _detector().compute_language_confidence_values(" ".join(words) if not cjk else text)
    if not values:
        return None
    best = values[0]
    code = best.language.iso_code_639_1.name.lower()
    mine = next((v.value for v in values if v.language.iso_code_639_1.name.lower() == expected), 0.0)
    if code == expected or best.value < MIN_CONFIDENCE or mine * 3 > best.value:
        return None
    # The quick (trigram) pass is unreliable on a few words: confirm with full models of
    # just the two languages in question.
    sample = " ".join(words) if not cjk else text
    confirm = _pair(expected, code).compute_language_confidence_values(sample)
    value = next((v.value for v in confirm if v.language.iso_code_639_1.name.lower() == code), 0.0)
    if value < CONFIRM:
        return None
    return code, float(value), best.language.name.title()
