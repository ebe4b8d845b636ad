"""One multi-pattern matcher for every literal and pattern of a policy, and span locators for what fired.

Every literal and every RE2 pattern becomes one entry of a single ``re2.Set``: one pass over the task's
normalised UTF-8 bytes says which entries match, in time linear in the text and nearly flat in the number of
entries (RE2 builds a DFA lazily and never backtracks). Only the entries that fired are then located, to
report the matched text and its span: literals with ``str.find`` and the same boundary and separator rules
as their RE2 pattern (no regex needed), patterns with their own RE2 regex, compiled the first time the
pattern fires; in ASCII text a one-word literal is found with one ``bytes.find`` in a copy whose non-word
bytes are spaces (:func:`word_needles`). Every locator is linear in the text.
"""

from __future__ import annotations

from collections.abc import Sequence

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable

    import re2

from engine.detect.literals import (SEPARATOR_CHARS, WORD_CHARS, entry_forms, entry_pattern, forms_pattern,
                                    literal_forms)
from engine.records import Record

# RE2's memory budgets. One pattern may compile to about 40,000 instructions (the default policy's largest
# is 2,400), so no pattern makes compilation slow; all of them together get 64 MiB, which 3,000 signals fit
# with room to spare. A larger set is refused when the policy is validated (pattern-set-too-large).
PATTERN_MAX_MEM = 1 << 20
SET_MAX_MEM = 64 << 20

Locate = "Callable[[str, bytes], tuple[int, int] | None]"  # a type alias for readers and type checkers


def _re2() -> Any:
    """The re2 module, imported when a pattern is first compiled (about 2.5 ms: a policy or a task that needs no
    RE2 — a matcher whose literals the word index screens — never imports it); sets :data:`UNANCHORED`."""
    global UNANCHORED
    import re2

    if UNANCHORED is None:
        UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    return re2


def options(max_mem: int = PATTERN_MAX_MEM) -> re2.Options:
    opts = _re2().Options()
    opts.max_mem = max_mem
    opts.log_errors = False  # errors are reported as policy problems, not on stderr
    return opts


class Entry(Record):
    """What one entry of the set stands for: the signal it belongs to and how to locate it."""

    signal: int
    locate: Locate


def plan_entry(item: Sequence[Any]) -> Entry:
    """The entry of one item of a detection plan: ``[signal, "literal", text]`` (inflected), ``[signal,
    "exact", text]`` or ``[signal, "regex", pattern]`` (see :mod:`engine.detect.plan`); a literal's forms are
    worked out here, when the entry is first located."""
    signal, kind = item[0], item[1]
    if kind == "regex":
        return Entry(signal, regex_locator(item[2]))
    forms = entry_forms(item)
    if forms is None:
        raise ValueError(f"unknown plan entry kind {kind!r}")
    lead, last = forms
    return Entry(signal, phrase_locator(lead, last) if lead else word_locator(last))


def literal_entry(signal: int, literal: str, inflect: bool) -> tuple[str, Entry]:
    """The set pattern and the entry of one literal word or phrase."""
    return forms_pattern(*literal_forms(literal, inflect)), plan_entry([signal, "literal" if inflect else "exact",
                                                                        literal])


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


# Whole words of ASCII text by one ``bytes.find``: in ``b" %s " % data.translate(WORD_BYTES)`` (every byte that is
# not a word character a space, and one space at each end) a word of only word characters occurs as a whole
# word at offset p of ``data`` exactly where ``b" " + word + b" "`` occurs at offset p of the padded copy (its
# leading space stands for the character before the word, or the text's start). RE2's ``\b`` is ASCII, so this is
# the boundary of the set's pattern. A find and a startswith (0.14 + 0.09 µs) instead of a locator's call, find,
# boundary tests and form loop (~0.45 µs); the translation is 0.2 µs for 100 characters.
WORD_BYTES = bytes(c if chr(c) in WORD_CHARS else 32 for c in range(256))


def word_needles(item: Sequence[Any]) -> tuple[bytes, bytes, int] | None:
    """For a plan's literal entry of one word whose forms are ASCII word characters (almost every literal):
    ``(head, whole, size)``, with ``head`` the space and the forms' common prefix, ``whole`` the space-framed
    first (base) form and ``size`` its length. In a padded copy (see :data:`WORD_BYTES`), the first ``head``
    is where the earliest match of any form can start; when ``whole`` is there, the entry's earliest match is
    the base form there (one form at most matches at a word's start). None for other entries: phrases,
    patterns, forms with other characters (their locators find them)."""
    forms = entry_forms(item)
    if forms is None or forms[0] or not forms[1]:
        return None
    last = forms[1]
    if not all(form.isascii() and WORD_CHARS.issuperset(form) for form in last):
        return None
    return (b" " + _common_prefix(last).encode("ascii"), b" " + last[0].encode("ascii") + b" ", len(last[0]))


# Separators of ASCII text (RE2's ``\s``, which is ASCII, and "-") as spaces, word bytes as themselves and every
# other byte as NUL: the bytes of a phrase whose words are word characters, with single separators between its
# words, translate to its words joined by single spaces (and no other bytes do).
SEPARATOR_BYTES = bytes(c if chr(c) in WORD_CHARS else 32 if chr(c) in SEPARATOR_CHARS else 0 for c in range(256))


def phrase_needles(item: Sequence[Any]) -> tuple[bytes, bytes, int, bytes, bytes] | None:
    """For a plan's literal entry of several words whose words and forms are ASCII word characters (almost every
    phrase): ``(head, whole, size, first, inner)``. In the padded copy (see :data:`WORD_BYTES`), ``first`` (the
    space-framed first word) is where the earliest match can start, since every match starts with that word as a
    whole word; ``head`` (the words joined by single spaces, up to the last word's forms' common prefix) and
    ``whole`` (the same with the base form, space-framed, ``size`` long without its frame) are the phrase with one
    non-word byte between its words. So when ``head`` first occurs where ``first`` does, ``whole`` is there and
    the ``size`` bytes of the text there, translated by :data:`SEPARATOR_BYTES`, are ``inner`` (``whole`` without
    its frame) — each byte between the words a separator — the entry's earliest match is ``size`` bytes from
    there: its base form, with single separators (at most one form ends a word there). Otherwise its locator
    decides. None for other entries."""
    forms = entry_forms(item)
    if forms is None or not forms[0] or not forms[1]:
        return None
    lead, last = forms
    if not all(word.isascii() and WORD_CHARS.issuperset(word) for word in (*lead, *last)):
        return None
    joined = " ".join(lead).encode("ascii") + b" "
    inner = joined + last[0].encode("ascii")
    return (b" " + joined + _common_prefix(last).encode("ascii"), b" " + inner + b" ", len(inner),
            b" " + lead[0].encode("ascii") + b" ", inner)


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


def regex_locator(pattern: str) -> Locate:
    """Finds the first match of an RE2 pattern in the UTF-8 bytes of the text.

    The regex is compiled the first time it is needed — when its pattern fires, once per process — so a
    one-shot command compiles the few patterns a task fires rather than all of them; the screening set is
    compiled up front. Matching calls the extension's ``RE2.Match`` directly when google-re2 exposes it (3×
    cheaper than ``search``, which builds a generator and a match object).
    """
    compiled: list = []

    def locate(text: str, data: bytes) -> tuple[int, int] | None:
        if not compiled:
            compiled.append(_spans_function(pattern))
        span = compiled[0](UNANCHORED, data, 0, len(data))[0]
        if span[0] < 0:
            return None
        return span if len(data) == len(text) else _characters(span, text, data)  # ASCII: bytes are characters

    return locate


UNANCHORED: Any = None
"""RE2's unanchored match mode (``re2._Anchor.UNANCHORED``), set by :func:`_re2` before anything matches."""


def _spans_function(pattern: str) -> Callable[[Any, bytes, int, int], list[tuple[int, int]]]:
    """``(anchor, data, pos, endpos) → [(start, end), ...]`` for ``pattern``, ``(-1, -1)`` when no match."""
    regex = _re2().compile(pattern.encode("utf-8"), options())
    low_level = getattr(regex, "_regexp", None)
    if low_level is not None and UNANCHORED is not None and hasattr(low_level, "Match"):
        return low_level.Match

    def spans(anchor: Any, data: bytes, pos: int, endpos: int) -> list[tuple[int, int]]:  # pragma: no cover
        found = regex.search(data)
        return [found.span() if found is not None else (-1, -1)]

    return spans


def _characters(span: tuple[int, int], text: str, data: bytes) -> tuple[int, int]:
    """A byte span of ``data`` (``text`` as UTF-8) as a character span of ``text``."""
    if len(data) == len(text):
        return span
    start, end = span
    return len(data[:start].decode("utf-8", "surrogatepass")), len(data[:end].decode("utf-8", "surrogatepass"))


SWITCH_AFTER = 256
"""Texts a matcher screens with its word index before it compiles one RE2 set of every entry and uses that.
The index costs nothing to build but more per text than one RE2 pass (about 10 µs more for 100 characters of
the default policy on a loaded 2-CPU machine); the set costs 2–20 ms to compile (0.3 s for 3,000 signals) and
then about 1 µs. A hook detects one task per process; ``bench``, ``accuracy`` and a long-lived process detect
many, and switch. Both answer exactly the same (tests/test_detect_words.py)."""


class Matcher:
    """A compiled set of entries: :attr:`fired` screens a text, the entries' locators find the spans.

    With ``items`` (the plan's entries, aligned with the first entries), every literal made only of word
    characters is screened by a :class:`~engine.detect.words.WordIndex` — plain data, nothing to compile — and
    only the other entries (patterns, literals with punctuation or non-ASCII letters, and entries without an
    item, such as the ask rules') go to an RE2 set, compiled the first time a text is screened. After
    :data:`SWITCH_AFTER` texts the matcher compiles one RE2 set of everything and uses it from then on. ``fired``
    answers exactly what one RE2 set of every pattern answers (``words=False`` builds that set from the start,
    for tests and benchmarks)."""

    __slots__ = ("patterns", "entries", "fired", "index")

    def __init__(self, patterns: Sequence[str], entries: Any, items: Sequence[Any] | None = None,
                 words: bool = True, index: dict[str, list[int]] | None = None,
                 gates: Sequence[Sequence[Any]] | None = None,
                 alternations: Sequence[tuple[int, Sequence[str]]] = (), forms: dict | None = None,
                 rest: Sequence[Sequence[Any]] | None = None):
        """``alternations``: ``(entry, literals)`` for entries beyond ``items`` whose pattern is the alternation
        of those literals, uninflected (the ask rules' lists; ``forms``: their literal_forms, when known): their
        literals the word index can take are screened by it, and the set gets the alternation of the others (or
        nothing of the entry). ``rest``: ``[entry, pattern]`` of the entries of ``items`` neither the index nor
        a gate screens, when a plan kept them (one read from the cache's sections: then the index is not read
        whole to work them out)."""
        from engine.detect.words import WordIndex, plan_gates, tokens

        self.patterns = patterns if isinstance(patterns, Patterns) else Patterns(patterns, items)
        self.entries = entries
        self.fired: Callable[[bytes], list[int]]
        """``fired(data)``: indices of the entries matching somewhere in ``data`` (folded text, UTF-8)."""
        if words and items is not None:
            if gates is None:  # else the plan's (see engine.detect.words.gate_literal)
                gates = plan_gates(items, self.patterns)
            self.index = WordIndex(items, index, gates, _confirmer(self.patterns))
        else:
            self.index = WordIndex(())
        kept = {}  # the patterns of `rest`, as the plan kept them
        if rest is not None and words and items is not None:
            kept = dict(rest)
            rest = [entry for entry, _ in rest] + list(range(len(items), len(self.patterns)))
        else:
            rest = sorted(set(range(len(self.patterns))) - self.index.covered - self.index.gated)
        if not self.index.words:
            self.fired = self._rebinding(_lazy_set(self.patterns))
            return
        narrowed, screen_lists = _split_alternations(alternations, forms or {})
        rest = [i for i in rest if narrowed.get(i) != ""]
        exact = [narrowed.get(i) or kept.get(i) or self.patterns[i] for i in rest]
        # The set screens with each pattern's bounded repeats opened ({0,90} -> {0,}): it compiles ~4x faster
        # (the default policy's lookup patterns: 0.8 of its 2 ms, on every start that detects), and a pattern
        # it says fired is confirmed with the exact one, compiled then — so a task that is no lookup never
        # compiles them, and what fires is what the exact patterns say.
        loose = [relaxed(pattern) for pattern in exact]
        screen_rest = _lazy_set(loose) if rest else None
        confirm_rest = _confirmer(exact)
        to_confirm = frozenset(k for k, (a, b) in enumerate(zip(exact, loose)) if a != b)
        screen_words = self.index.fired
        back = tuple(rest)
        calls = [0]

        def by_words(data: bytes) -> list[int]:
            calls[0] += 1
            if calls[0] > SWITCH_AFTER:  # from now on one RE2 set of everything, called directly
                return self._rebinding(_lazy_set(self.patterns))(data)
            words = tokens(data) if screen_lists is not None else None  # once, for both indexes
            found = screen_words(data, words)
            if screen_rest is not None:
                found.extend([back[i] for i in screen_rest(data)
                              if i not in to_confirm or confirm_rest(i, data)])
            if screen_lists is not None:  # an ask entry may be found by both the set and the index: once
                found.extend(set(screen_lists(data, words)) - set(found))
            return found

        self.fired = by_words

    def _rebinding(self, lazy: Callable[[bytes], list[int]]) -> Callable[[bytes], list[int]]:
        """``lazy`` (a :func:`_lazy_set`), which once it has compiled its set makes the set's own ``Match`` this
        matcher's :attr:`fired` (no Python frame between a detector and RE2)."""

        def first(data: bytes) -> list[int]:
            found = lazy(data)
            compiled = getattr(lazy, "compiled", None)
            self.fired = compiled[0] if compiled else lazy
            return found

        self.fired = first
        return first


def _split_alternations(alternations: Sequence[tuple[int, Sequence[str]]],
                        forms: dict | None = None) -> tuple[dict[int, str], Any]:
    """For :class:`Matcher`'s ``alternations``: each entry's pattern for the set — the alternation of its
    literals the word index cannot take, "" when it takes them all — and ``fired(data)``, the entries some
    literal of which the word index finds (None without such literals)."""
    from engine.detect.words import WordIndex, index_entries

    narrowed: dict[int, str] = {}
    items: list[list] = []
    found: list = []
    for entry, literals in alternations:
        others = []
        for literal in literals:
            split = (forms or {}).get(literal) or literal_forms(literal, False)
            if index_entries([split]):
                items.append([entry, "exact", literal])
                found.append(split)
            else:
                others.append(forms_pattern(*split))
        narrowed[entry] = "|".join(others)
    if not items:
        return narrowed, None
    index = WordIndex(items, index_entries(found))
    owners = [item[0] for item in items]

    def fired(data: bytes, words: list[str] | None = None) -> list[int]:
        return [owners[i] for i in index.fired(data, words)]

    return narrowed, fired


def _confirmer(patterns: Sequence[str]) -> Callable[[int, bytes], bool]:
    """``confirm(entry, data)``: whether the pattern of ``entry`` matches ``data``, each pattern compiled
    the first time it is asked about (for the word index's gated patterns)."""
    compiled: dict[int, Callable] = {}

    def confirm(entry: int, data: bytes) -> bool:
        match = compiled.get(entry)
        if match is None:
            match = compiled[entry] = _spans_function(patterns[entry])
        return match(UNANCHORED, data, 0, len(data))[0][0] >= 0

    return confirm


class Patterns(Sequence):
    """The set patterns of a matcher's entries. A plan keeps "" for the literals its word index covers (a
    third of a large plan's text); their patterns are made from their forms when first read — when the matcher
    switches to one set of everything, or a test compares with one."""

    __slots__ = ("_stored", "_items")

    __slots__ = ("_stored", "_items", "_extra", "_size", "_made")

    def __init__(self, stored: Sequence[str], items: Sequence[Any] | None, extra: Sequence[str] = ()):
        """``extra``: the patterns of entries after the plan's (the ask rules')."""
        self._stored = stored  # a plan's: read, never changed
        self._items = items
        self._extra = list(extra)
        self._size = len(stored)
        self._made: dict[int, str] = {}

    def __len__(self) -> int:
        return self._size + len(self._extra)

    def __getitem__(self, index: Any) -> Any:
        if type(index) is slice:
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if index >= self._size:
            return self._extra[index - self._size]
        found = self._stored[index]
        if not found:
            found = self._made.get(index)
            if found is None:
                found = self._made[index] = entry_pattern(self._items[index], "")
        return found


def relaxed(pattern: str) -> str:
    """``pattern`` with each bounded repeat ``{m,n}`` (``n > m + 3``) opened to ``{m,}``: a wider language —
    every text ``pattern`` matches, it matches — that RE2 compiles without a copy of the repeated part per
    count (``(?:[^.!?]|[.!?]\\w){0,60}`` is 60 copies). Escapes and character classes are skipped; a valid
    RE2 pattern's ``{m,n}`` outside them is a repeat."""
    if "{" not in pattern.replace("\\x{", ""):  # braces of \x{…} escapes alone (leaving one is always safe)
        return pattern
    from engine.detect.words import _class_end

    # From brace to brace, stepping over the escapes and classes before each (not character by character: the
    # screening set's patterns are relaxed on every start that detects, ~0.8 ms of it that way).
    parts, start, at = [], 0, 0
    find = pattern.find
    while (brace := find("{", at)) >= 0:
        slash, klass = find("\\", at, brace), find("[", at, brace)
        if slash >= 0 or klass >= 0:
            first = slash if klass < 0 or 0 <= slash < klass else klass
            at = first + 2 if first == slash else _class_end(pattern, first) + 1
            continue
        at = brace + 1
        close = find("}", brace)
        low, comma, high = pattern[brace + 1:close].partition(",") if close > 0 else ("", "", "")
        if comma and low.isascii() and low.isdigit() and high.isascii() and high.isdigit() and int(high) > int(low) + 3:
            parts.append(pattern[start:brace] + "{" + low + ",}")
            start = at = close + 1
    parts.append(pattern[start:])
    return "".join(parts)


def _lazy_set(patterns: Sequence[str]) -> Callable[[bytes], list[int]]:
    """``fired(data)`` of an RE2 set of ``patterns``, compiled when it first screens a text (a command that
    never detects, or a policy whose tasks never reach the set, pays nothing)."""
    patterns = tuple(patterns)
    compiled: list = []

    def fired(data: bytes) -> list[int]:
        if not compiled:
            pattern_set = _re2().Set.SearchSet(options(SET_MAX_MEM))
            for pattern in patterns:
                pattern_set.Add(pattern)
            pattern_set.Compile()
            # The extension's own Match: the wrapper's only adds a str check (we pass bytes) and turns [] into None.
            compiled.append(getattr(pattern_set, "_set", pattern_set).Match)
        return compiled[0](data)

    fired.compiled = compiled  # type: ignore[attr-defined]
    return fired


def _common_prefix(words: Sequence[str]) -> str:
    first = words[0]
    size = len(first)
    for word in words[1:]:
        while not word.startswith(first[:size]):
            size -= 1
    return first[:size]
