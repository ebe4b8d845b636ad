"""One multi-pattern matcher for every literal and pattern of a policy, and span locators for what fired.

Every literal and every RE2 pattern becomes one entry of a single ``re2.Set``: one pass over the task's
normalised UTF-8 bytes says which entries match, in time linear in the text and nearly flat in the number of
entries (RE2 builds a DFA lazily and never backtracks). Only the entries that fired are then located, to
report the matched text and its span: literals with ``str.find`` and the same boundary and separator rules
as their RE2 pattern (no regex needed), patterns with their own compiled RE2 regex. Every locator is linear
in the text. Nothing here compiles anything after construction.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import re2

from engine.detect.literals import SEPARATOR_CHARS, WORD_CHARS, forms_pattern, literal_forms

# RE2's memory budget for the set's and each regex's DFA; 3,000 signals fit with room to spare.
MAX_MEM = 64 << 20

Locate = Callable[[str, bytes], "tuple[int, int] | None"]


def options() -> re2.Options:
    opts = re2.Options()
    opts.max_mem = MAX_MEM
    opts.log_errors = False  # errors are reported as policy problems, not on stderr
    return opts


def user_pattern(pattern: str) -> str:
    """A policy's RE2 pattern as matched: case-insensitive, over the folded text."""
    return "(?i:" + pattern + ")"


class Entry(NamedTuple):
    """What one entry of the set stands for: the signal it belongs to and how to locate it."""

    signal: int
    locate: Locate


def literal_entry(signal: int, literal: str, inflect: bool) -> tuple[str, Entry]:
    """The set pattern and the entry of one literal word or phrase."""
    lead, last = literal_forms(literal, inflect)
    locate = phrase_locator(lead, last) if lead else word_locator(last)
    return forms_pattern(lead, last), Entry(signal, locate)


def pattern_entry(signal: int, pattern: str) -> tuple[str, Entry]:
    """The set pattern and the entry of one RE2 pattern of the policy."""
    wrapped = user_pattern(pattern)
    return wrapped, Entry(signal, regex_locator(re2.compile(wrapped, options())))


def word_locator(forms: Sequence[str]) -> Locate:
    """Finds the first occurrence of one of ``forms`` (one word and its inflections) on word boundaries.

    Scans with ``str.find`` for the forms' common prefix. When every form starts and ends with a word
    character (almost always), at most one form can match at a position, so the base form is tried first and
    the boundary tests are plain.
    """
    prefix = _common_prefix(forms)
    if all(f[0] in WORD_CHARS and f[-1] in WORD_CHARS for f in forms):
        plain = tuple((form, len(form)) for form in forms)

        def locate(text: str, data: bytes) -> tuple[int, int] | None:
            start = text.find(prefix)
            while start >= 0:
                if start == 0 or text[start - 1] not in WORD_CHARS:
                    for form, length in plain:
                        if text.startswith(form, start):
                            end = start + length
                            if end == len(text) or text[end] not in WORD_CHARS:
                                return start, end
                start = text.find(prefix, start + 1)
            return None

        return locate

    longest_first = sorted(forms, key=len, reverse=True)  # edged forms can nest: "c++" before "c+"

    def locate_edged(text: str, data: bytes) -> tuple[int, int] | None:
        start = text.find(prefix)
        while start >= 0:
            end = _word_at(text, start, longest_first)
            if end is not None:
                return start, end
            start = text.find(prefix, start + 1)
        return None

    return locate_edged


def phrase_locator(lead: Sequence[str], last: Sequence[str]) -> Locate:
    """Finds the first occurrence of the words ``lead`` then one of ``last``, separated by separator runs."""
    head = lead[0]
    longest_first = sorted(last, key=len, reverse=True)

    def locate(text: str, data: bytes) -> tuple[int, int] | None:
        start = text.find(head)
        while start >= 0:
            end = _phrase_at(text, start, lead, longest_first)
            if end is not None:
                return start, end
            start = text.find(head, start + 1)
        return None

    return locate


def _word_at(text: str, start: int, forms: Sequence[str], boundary_before: bool = True) -> int | None:
    """Where one of ``forms`` (longest first) ends when it starts at ``start`` with its word boundaries."""
    if boundary_before and forms[0][0] in WORD_CHARS and start and text[start - 1] in WORD_CHARS:
        return None
    for form in forms:
        end = start + len(form)
        if text.startswith(form, start) and not (
                form[-1] in WORD_CHARS and end < len(text) and text[end] in WORD_CHARS):
            return end
    return None


def _phrase_at(text: str, start: int, lead: Sequence[str], last: Sequence[str]) -> int | None:
    """Where the phrase ends when it starts at ``start``, else None (no boundaries inside a phrase)."""
    if lead[0][0] in WORD_CHARS and start and text[start - 1] in WORD_CHARS:
        return None
    at = start
    for word in lead:
        if not text.startswith(word, at):
            return None
        at += len(word)
        gap = at
        while at < len(text) and text[at] in SEPARATOR_CHARS:
            at += 1
        if at == gap:
            return None
    return _word_at(text, at, last, boundary_before=False)


def regex_locator(regex: Any) -> Locate:
    """Finds the first match of a compiled RE2 regex in the UTF-8 bytes of the text.

    Calls the extension's ``RE2.Match`` directly when google-re2 exposes it (3× cheaper than ``search``,
    which builds a generator and a match object); a test checks that this path is the one taken.
    """
    low_level = getattr(regex, "_regexp", None)
    anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    if low_level is None or anchor is None or not hasattr(low_level, "Match"):  # pragma: no cover
        search = regex.search

        def locate_portably(text: str, data: bytes) -> tuple[int, int] | None:
            found = search(data)
            return None if found is None else _characters(found.span(), text, data)

        return locate_portably
    match = low_level.Match

    def locate(text: str, data: bytes) -> tuple[int, int] | None:
        span = match(anchor, data, 0, len(data))[0]
        if span[0] < 0:
            return None
        return span if len(data) == len(text) else _characters(span, text, data)  # ASCII: bytes are characters

    return locate


def _characters(span: tuple[int, int], text: str, data: bytes) -> tuple[int, int]:
    """A byte span of ``data`` (``text`` as UTF-8) as a character span of ``text``."""
    if len(data) == len(text):
        return span
    start, end = span
    return len(data[:start].decode("utf-8", "surrogatepass")), len(data[:end].decode("utf-8", "surrogatepass"))


class Matcher:
    """A compiled set of entries: :attr:`fired` screens a text, the entries' locators find the spans."""

    __slots__ = ("entries", "fired")

    def __init__(self, patterns: Sequence[str], entries: Sequence[Entry]):
        self.entries = tuple(entries)
        self.fired: Callable[[bytes], list[int]]
        """``fired(data)``: indices of the entries matching somewhere in ``data`` (folded text, UTF-8)."""
        if not patterns:
            self.fired = _no_match
            return
        pattern_set = re2.Set.SearchSet(options())
        for pattern in patterns:
            pattern_set.Add(pattern)
        pattern_set.Compile()
        # The extension's own Match: the wrapper's only adds a str check (we pass bytes) and turns [] into None.
        self.fired = getattr(pattern_set, "_set", pattern_set).Match


def _no_match(data: bytes) -> list[int]:
    return []


def _common_prefix(words: Sequence[str]) -> str:
    first = words[0]
    size = len(first)
    for word in words[1:]:
        while not word.startswith(first[:size]):
            size -= 1
    return first[:size]
