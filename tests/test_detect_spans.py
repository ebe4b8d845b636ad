"""Where the hits are: the word needles that locate a word entry in ASCII text with one ``bytes.find``
(engine.detect.matcher.word_needles) give exactly the spans of the entries' locators, which follow RE2's
boundaries: at the text's edges, next to digits and underscores, inside longer words, for several forms of one
entry, the same form in two signals, and for non-ASCII text (which keeps the locators), before and after the
matcher switches to one RE2 set."""

from __future__ import annotations

import random
from types import FunctionType

import pytest

import engine.detect.matcher as matcher_module
from engine.detect import Detector
from engine.detect.matcher import SEPARATOR_BYTES, WORD_BYTES, phrase_needles, word_needles

TIERS = ["simple", "medium", "complex", "multi-system"]

SIGNALS = [
    # inflected: -s, -ed, -ing; "query" and "migrate" have stems shorter than the word (queries, migrating)
    {"id": "slow", "words": ["slow", "query", "migrate"], "weights": {"complex": 1}},
    {"id": "dbt", "words": ["dbt"], "weights": {"medium": 1}, "group": "system"},
    {"id": "dbt-too", "words": ["dbt", "dbt cloud"], "weights": {"simple": 0.5}},  # the same form as "dbt"
    {"id": "exact", "words": ["run_id", "x2"], "inflect": False, "weights": {"simple": 1}},
    {"id": "edged", "words": ["c++", "café"], "weights": {"medium": 1}},  # no needles: their locators
    {"id": "phrase", "words": ["root cause"], "weights": {"complex": 2}},
    {"id": "pattern", "pattern": r"\bp\d+\b", "weights": {"simple": 1}},
    {"id": "two", "when": "count.system >= 1", "weights": {"medium": 0.5}},
]


def detector() -> Detector:
    return Detector.from_data({"signals": SIGNALS}, TIERS, "medium")


def reference(found_by: Detector, text: str) -> list[tuple[str, str, tuple[int, int] | None]]:
    """The hits as the entries' own locators place them (the earliest entry of each signal, in folded offsets,
    mapped to the text): what the detector gave before the word needles."""
    detection = found_by.detect(text)
    _, _, norm, folded, data, fired, derived = detection._pending
    earliest: dict[int, tuple[int, int]] = {}
    for i in fired:
        found = found_by._locate(i)(folded, data)
        signal = found_by._items[i][0]
        if found is not None and (signal not in earliest or found < earliest[signal]):
            earliest[signal] = found
    out = []
    for signal, found in earliest.items():
        span = found if norm is None else norm.span(*found)
        out.append((found_by._signals[signal].id, text[span[0]:span[1]], span))
    return out + [(h.signal, h.text, h.span) for h in derived]


def spans(found_by: Detector, text: str) -> list[tuple[str, str, tuple[int, int] | None]]:
    return [(h.signal, h.text, h.span) for h in found_by.detect(text).hits]


@pytest.mark.parametrize("text, expected", [
    ("slow", [("slow", "slow", (0, 4))]),  # the whole text
    ("it is SLOW", [("slow", "SLOW", (6, 10))]),  # at the very end
    ("slowly, slowest... then Slowed and slow", [("slow", "Slowed", (24, 30))]),  # a longer word first
    ("slowing then slow", [("slow", "slowing", (0, 7))]),  # another form before the base form
    ("slow then slowing", [("slow", "slow", (0, 4))]),
    ("querulous queries, then query", [("slow", "queries", (10, 17))]),  # a y-stem: prefix "quer"
    ("migrating migrate", [("slow", "migrating", (0, 9))]),  # an e-stem: prefix "migrat"
    ("x_slow 2slow slow_ slow2 slow", [("slow", "slow", (25, 29))]),  # digits and _ are word characters
    ("dbt's run", [("dbt", "dbt", (0, 3)), ("dbt-too", "dbt", (0, 3)), ("two", "", None)]),  # one form, two signals
    ("DBT cloud, then dbt", [("dbt", "DBT", (0, 3)), ("dbt-too", "DBT", (0, 3)), ("two", "", None)]),
    ("run_ids and run_id, x2x x2", [("exact", "run_id", (12, 18))]),  # not inflected: run_ids is another word
    ("c++ and c+", [("edged", "c++", (0, 3))]),
    ("the root-cause of p12", [("phrase", "root-cause", (4, 14)), ("pattern", "p12", (18, 21))]),
    ("a Café, then slow", [("slow", "slow", (13, 17)), ("edged", "Café", (2, 6))]),  # non-ASCII: the locators
    ("ＳＬＯＷ and ﬁle slow", [("slow", "ＳＬＯＷ", (0, 4))]),  # folded to ASCII from other text
])
def test_spans_of_word_entries(text: str, expected: list) -> None:
    found_by = detector()
    assert spans(found_by, text) == expected
    assert spans(found_by, text) == reference(found_by, text)


def test_word_needles() -> None:
    assert word_needles([0, "literal", "slow"]) == (b" slow", b" slow ", 4)
    assert word_needles([0, "literal", "query"]) == (b" quer", b" query ", 5)  # queries, queried, querying
    assert word_needles([0, "exact", "run_id"]) == (b" run_id", b" run_id ", 6)
    for item in ([0, "literal", "root cause"], [0, "literal", "c++"], [0, "literal", "café"], [0, "regex", "x"],
                 [0, "exact", "don't"]):
        assert word_needles(item) is None, item


def test_phrase_needles() -> None:
    assert phrase_needles([0, "literal", "root cause"]) == (b" root caus", b" root cause ", 10, b" root ",
                                                            b"root cause")
    assert phrase_needles([0, "literal", "End-to-End"]) == (b" end to end", b" end to end ", 10, b" end ",
                                                            b"end to end")
    assert phrase_needles([0, "exact", "the nightly"]) == (b" the nightly", b" the nightly ", 11, b" the ",
                                                           b"the nightly")
    for item in ([0, "literal", "root"], [0, "literal", "c++ code"], [0, "literal", "café au lait"],
                 [0, "regex", "x y"], [0, "exact", "don't panic"]):
        assert phrase_needles(item) is None, item


PHRASES = [
    {"id": "cause", "words": ["root cause"], "weights": {"complex": 2}},  # inflected: root causes, root caused
    {"id": "e2e", "words": ["end to end"], "weights": {"medium": 1}},  # three words, "end" not inflected (short)
    {"id": "nightly", "words": ["the nightly"], "inflect": False, "weights": {"simple": 1}},
    {"id": "root", "words": ["root"], "weights": {"simple": 1}},
]


@pytest.mark.parametrize("text, expected", [
    ("the root cause", [("cause", "root cause", (4, 14)), ("root", "root", (4, 8))]),
    # a non-separator between the words: the padded copy has a space there, the match is further on
    ("root.cause, root  cause", [("cause", "root  cause", (12, 23)), ("root", "root", (0, 4))]),
    ("root\vcause root cause", [("cause", "root cause", (11, 21)), ("root", "root", (0, 4))]),  # \v is no separator
    # an earlier match with a longer gap than the single-spaced one
    ("root  cause then root cause", [("cause", "root  cause", (0, 11)), ("root", "root", (0, 4))]),
    ("root\t\ncause then root cause", [("cause", "root\t\ncause", (0, 11)), ("root", "root", (0, 4))]),
    ("root-cause or root cause", [("cause", "root-cause", (0, 10)), ("root", "root", (0, 4))]),
    ("root -- cause, root cause", [("cause", "root -- cause", (0, 13)), ("root", "root", (0, 4))]),
    # another form first: the earliest match is the inflected one
    ("root causes, then the root cause", [("cause", "root causes", (0, 11)), ("root", "root", (0, 4))]),
    ("Root Caused it", [("cause", "Root Caused", (0, 11)), ("root", "Root", (0, 4))]),
    # the first word as part of longer words, or the phrase inside a longer word
    ("uproot cause; roots cause; root causeway; root cause_ root cause",
     [("cause", "root cause", (54, 64)), ("root", "roots", (14, 19))]),
    ("x_root cause root cause2 root cause", [("cause", "root cause", (25, 35)), ("root", "root", (13, 17))]),
    ("end to-end, end-to-end", [("e2e", "end to-end", (0, 10))]),
    ("end to, end to end", [("e2e", "end to end", (8, 18))]),
    ("end to ends", [("e2e", "end to ends", (0, 11))]),  # "end" is inflected
    ("end to end\u2014to\u2013end end to end", [("e2e", "end to end", (0, 10))]),  # non-ASCII: locators
    ("end to, end\u2014to\u2013end end to end", [("e2e", "end\u2014to\u2013end", (8, 18))]),
    ("The  Nightly run, the nightly", [("nightly", "The  Nightly", (0, 12))]),
    ("the nightlys the nightly", [("nightly", "the nightly", (13, 24))]),  # not inflected
])
def test_spans_of_phrases(text: str, expected: list) -> None:
    """A phrase is located in the padded copy only when its single-spaced form is where its first word first
    occurs and the bytes between its words are separators; otherwise its locator decides: the same spans."""
    found_by = Detector.from_data({"signals": PHRASES}, TIERS, "medium")
    assert spans(found_by, text) == expected
    assert spans(found_by, text) == reference(found_by, text)


def test_phrases_in_random_texts_equal_the_locators() -> None:
    found_by = Detector.from_data({"signals": PHRASES}, TIERS, "medium")
    pieces = ["root", "Root", "cause", "causes", "caused", "end", "to", "the", "nightly", "x", "uproot", "é", "\u2014"]
    glue = [" ", "  ", "-", " - ", ".", ", ", "\t", "\v", "_", "\n "]
    rng = random.Random(7)
    for _ in range(1500):
        text = "".join(rng.choice(pieces) + rng.choice(glue) for _ in range(rng.randint(2, 9)))
        assert spans(found_by, text) == reference(found_by, text), text


def test_the_separator_copy_marks_separators_and_blanks_nothing_else() -> None:
    assert b"Ab_9 x-y'z.\t\n\f\r\v\x00\x7f".translate(SEPARATOR_BYTES) == b"Ab_9 x y\x00z\x00    \x00\x00\x00"
    assert set(SEPARATOR_BYTES[128:]) == {0}


def test_the_padded_copy_keeps_word_bytes_and_blanks_the_others() -> None:
    assert b"Ab_9 x-y'z.\t\x00\x7f".translate(WORD_BYTES) == b"Ab_9 x y z    "
    assert all(WORD_BYTES[b] == (b if chr(b).isalnum() or chr(b) == "_" else 32) for b in range(128))
    assert set(WORD_BYTES[128:]) == {32}


def _texts(count: int, seed: int) -> list[str]:
    words = ["slow", "slows", "Slowed", "slowing", "slowly", "query", "queries", "querying", "quer", "migrate",
             "migrated", "dbt", "DBT", "dbt cloud", "run_id", "run_ids", "x2", "c++", "café", "root cause",
             "root-cause", "p7", "the", "and", "é", "ß", "\u2014", "_", "2", "?", ".", "'", " ", "\n"]
    rng = random.Random(seed)
    glue = ["", " ", "  ", "-", ", ", "_", "'"]
    return ["".join(rng.choice(words) + rng.choice(glue) for _ in range(rng.randint(1, 12))) for _ in range(count)]


def test_spans_equal_the_locators_before_and_after_the_switch_to_one_set(monkeypatch) -> None:
    """Random texts of the policy's words, their other forms, look-alikes and glue (non-ASCII among them):
    the spans are those of the locators while the word index screens and after the matcher has switched to
    one RE2 set (monkeypatched to switch after 20 texts, as it does after 256)."""
    monkeypatch.setattr(matcher_module, "SWITCH_AFTER", 20)
    found_by = detector()
    texts = _texts(400, 5)
    assert sum(not t.isascii() for t in texts) > 50
    for text in texts:
        assert spans(found_by, text) == reference(found_by, text), text
    assert not isinstance(found_by._matcher.fired, FunctionType)  # the set's own Match by now, not by_words


def test_a_non_ascii_text_after_many_texts_keeps_exact_spans(monkeypatch) -> None:
    monkeypatch.setattr(matcher_module, "SWITCH_AFTER", 3)
    found_by = detector()
    for _ in range(5):
        found_by.detect("slow dbt")
    text = "ß" * 3 + " Slowed café, then slow and DBT"
    assert spans(found_by, text) == [("slow", "Slowed", (4, 10)), ("dbt", "DBT", (31, 34)),
                                     ("dbt-too", "DBT", (31, 34)), ("edged", "café", (11, 15)), ("two", "", None)]
