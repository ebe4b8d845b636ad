"""Normalisation (NFKC, case folding) and spans mapped back to the original text."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.detect.normalize import fold, normalize


@pytest.mark.parametrize(("text", "folded"), [
    ("Show Snowflake", "show snowflake"),
    ("ＤＢＴ models", "dbt models"),  # fullwidth letters
    ("Straße", "strasse"),
    ("ﬁle", "file"),  # ligature
    ("Cafe\u0301", "café"),  # combining accent composes
    ("x\u00a0y", "x y"),  # no-break space
])
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded
    assert normalize(text).text == folded


@pytest.mark.parametrize(("text", "needle", "original"), [
    ("A ﬁle here", "file", "ﬁle"),
    ("Große Straße", "strasse", "Straße"),
    ("Cafe\u0301 time", "café", "Cafe\u0301"),
    ("ＤＢＴ run", "dbt", "ＤＢＴ"),
    ("plain ascii", "ascii", "ascii"),
])
def test_spans_map_back_to_the_original(text: str, needle: str, original: str) -> None:
    norm = normalize(text)
    start = norm.text.index(needle)
    begin, end = norm.span(start, start + len(needle))
    assert text[begin:end] == original


@given(st.text(max_size=40))
def test_every_normalised_span_maps_inside_the_original(text: str) -> None:
    norm = normalize(text)
    assert norm.text == "".join(unicodedata.normalize("NFKC", norm.original[a:b]).casefold()
                                for a, b in _segments(norm)) or not text
    for i in range(len(norm.text)):
        begin, end = norm.span(i, i + 1)
        assert 0 <= begin < end <= len(text)


def _segments(norm) -> list[tuple[int, int]]:
    if norm.starts is None:
        return [(0, len(norm.original))]
    return list(dict.fromkeys(zip(norm.starts, norm.ends)))
