"""Fast fuzzing in the normal suite (hypothesis) of the image loader, the text sanitiser and the
merge step, through the same targets the long atheris run uses (scripts/fuzz.py), plus every
input a fuzzer ever crashed kept as a regression (tests/fixtures/fuzz/<target>/*)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fuzz_targets import TARGETS, image_loader, merge_step, text_sanitiser

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "fuzz"
EXAMPLES = int(os.environ.get("ALTTEXT_FUZZ_EXAMPLES", "150"))
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=not os.environ.get("ALTTEXT_FUZZ_EXAMPLES"))

_TEXTY = st.one_of(
    st.text(max_size=300).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.lists(st.sampled_from(["<script>", "</script>", "&lt;", "&gt;", "<b>", "javascript:", "\u202e", "\u200b",
                              "\0", "\ud800", "é", "\u0301", "👨‍👩‍👧", "&amp;", "<!--", "-->", " ", "PHOTO: AP",
                              "mailto:", "tel:", "http://", "/a.pdf", "\n", "\t", "\"", "'", "Image of"]),
             max_size=40).map(lambda xs: "".join(xs).encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
)


@FAST
@given(st.binary(max_size=4096))
def test_fuzz_image_loader(data):
    image_loader(data)


@FAST
@given(_TEXTY)
def test_fuzz_text_sanitiser(data):
    text_sanitiser(data)


@FAST
@given(st.lists(_TEXTY, min_size=1, max_size=8).map(lambda parts: b"\0".join(parts)))
def test_fuzz_merge_step(data):
    merge_step(data)


def _kept():
    return [(target, path) for target in TARGETS for path in sorted((CORPUS / target).glob("*"))
            if path.is_file()] if CORPUS.exists() else []


@pytest.mark.parametrize("target, path", _kept(), ids=[f"{t}/{p.name}" for t, p in _kept()])
def test_kept_crashing_inputs_stay_fixed(target, path):
    TARGETS[target](path.read_bytes())
