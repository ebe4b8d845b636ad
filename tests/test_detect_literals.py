"""Literals: inflections, the RE2 pattern of a literal, and locators that agree with that pattern exactly."""

from __future__ import annotations

import re2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.detect.literals import inflections, literal_forms, literal_pattern, words_of
from engine.detect.matcher import literal_entry, options


@pytest.mark.parametrize(("word", "forms"), [
    ("query", ["query", "queries", "queried", "querying"]),
    ("migrate", ["migrate", "migrates", "migrated", "migrating"]),
    ("fix", ["fix", "fixes", "fixed", "fixing"]),
    ("plan", ["plan", "plans", "planed", "planing", "planned", "planning"]),  # both spellings: harmless
    ("agree", ["agree", "agrees", "agreed", "agreeing"]),
    ("delay", ["delay", "delays", "delayed", "delaying"]),
    ("crash", ["crash", "crashes", "crashed", "crashing"]),
    ("dbt", ["dbt", "dbts", "dbted", "dbting"]),
    ("s3", ["s3"]),  # not letters only: as written
    ("bi", ["bi"]),  # too short to inflect
    ("café", ["café"]),  # not ASCII
])
def test_inflections(word: str, forms: list[str]) -> None:
    assert sorted(inflections(word)) == sorted(forms)
    assert inflections(word)[0] == word


@pytest.mark.parametrize(("literal", "words"), [
    ("End-to-End", ["end", "to", "end"]),
    ("  root   cause ", ["root", "cause"]),
    ("ＳＮＯＷＦＬＡＫＥ", ["snowflake"]),  # fullwidth: NFKC
    ("Straße", ["strasse"]),  # case folding
    ("--", []),
])
def test_words_of(literal: str, words: list[str]) -> None:
    assert words_of(literal) == words


def test_only_the_last_word_of_a_phrase_is_inflected() -> None:
    assert literal_forms("root cause") == (["root"], ["cause", "causes", "caused", "causing"])
    assert literal_forms("root cause", inflect=False) == (["root"], ["cause"])


@pytest.mark.parametrize(("literal", "pattern"), [
    ("dbt", r"\b(?:dbt\b|dbts\b|dbted\b|dbting\b)"),
    ("s3", r"\bs3\b"),
    ("c++", r"\bc\+\+"),
    ("fp&a", r"\bfp\&a\b"),
])
def test_literal_pattern(literal: str, pattern: str) -> None:
    assert literal_pattern(literal) == pattern


# (literal, folded text, the span the locator must report — the RE2 pattern's leftmost match — or None)
CASES = [
    ("snowflake", "show snowflake status", (5, 14)),
    ("snowflake", "snowflakes everywhere", (0, 10)),
    ("snowflake", "snowflakey", None),  # no boundary after
    ("snowflake", "mysnowflake", None),  # no boundary before
    ("snowflake", "my_snowflake", None),  # "_" is a word character
    ("snowflake", "(snowflake)", (1, 10)),
    ("query", "queries and querying", (0, 7)),
    ("dbt", "dbt-core", (0, 3)),  # "-" is a boundary
    ("dbt", "édbt", (1, 4)),  # é is not an ASCII word character: a boundary, as for RE2
    ("end to end", "an end-to-end test", (3, 13)),
    ("end to end", "an end – to\nend test", (3, 15)),  # en dash and newline separate words
    ("end to end", "an endto end", None),
    ("end to end", "end to ending", (0, 13)),  # the last word is inflected
    ("root cause", "root  causes, root cause", (0, 12)),
    ("c++", "we use c++ a lot", (7, 10)),
    ("c++", "ac++", None),  # "c" is a word character: it needs a boundary
    ("c++", "c++x", (0, 3)),  # "+" is not: no boundary needed after it
    ("can't happen again", "make sure it can't happen again.", (13, 31)),
    ("café", "le café noir", (3, 7)),
]


@pytest.mark.parametrize(("literal", "text", "span"), CASES)
def test_locator_agrees_with_the_pattern(literal: str, text: str, span: tuple[int, int] | None) -> None:
    pattern, entry = literal_entry(0, literal, True)
    found = re2.compile(pattern, options()).search(text)
    assert (found.span() if found else None) == span
    assert entry.locate(text, text.encode()) == span


ALPHABET = st.sampled_from(list("ab -_\n") + ["ab", "ba", "a-b", "é"])


@settings(max_examples=300, deadline=None)
@given(literal=st.sampled_from(["ab", "a b", "ba", "ab ab", "b-a", "aba", "a"]),
       inflect=st.booleans(), text=st.lists(ALPHABET, max_size=12).map("".join))
def test_locators_find_exactly_what_the_set_screens(literal: str, inflect: bool, text: str) -> None:
    """Whatever the text, the locator finds the RE2 pattern's leftmost match (so the set and the spans agree)."""
    pattern, entry = literal_entry(0, literal, inflect)
    found = re2.compile(pattern, options()).search(text)
    expected = found.span() if found else None
    if found is not None:  # RE2 spans are in characters for str input
        assert text[expected[0]:expected[1]]
    assert entry.locate(text, text.encode()) == expected


def test_pattern_locators_use_re2s_own_match() -> None:
    """The fast path (the extension's RE2.Match, no match objects) is the one taken with google-re2 1.1."""
    from engine.detect.matcher import _spans_function, regex_locator

    assert getattr(_spans_function(r"\bvs\b"), "__name__", "") == "Match"
    locate = regex_locator(r"caf[eé]")
    assert locate("un café", "un café".encode()) == (3, 7)  # byte offsets come back as characters
    assert locate("none", b"none") is None
