"""A word index: which literal entries of a detection plan occur in a text, without compiling anything.

A literal made only of word characters (ASCII letters, digits, ``_`` — almost every literal) matches exactly
where RE2's pattern for it (:func:`engine.detect.literals.forms_pattern`) matches, which is simple to say in
words: a *word* entry matches when some word of the text (a maximal run of word characters) is one of its
forms; a *phrase* entry matches when consecutive words of the text are its leading words and then one of its
last word's forms, with only separator characters (whitespace, hyphens, Unicode dashes) between them. The
boundaries of the pattern (``\\b`` on both ends) are what makes "a whole word of the text" exact, and a run of
separators between two words is the whole gap between them, because a separator is not a word character.

So the index is a dict from a word form to the entries that start with it, built from the plan (plain JSON
data, which the compiled-policy cache keeps) in a few hundred microseconds; per text, one ``re.split`` into
words and gaps and one dict look-up per word find every matching entry. Literals with other characters
(``c++``, ``don't``, ``café``) and patterns are left to an RE2 set (see :class:`~engine.detect.matcher.Matcher`).
"""

from __future__ import annotations

from itertools import chain
TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Sequence

from engine.detect.literals import SEPARATOR_CHARS, WORD_CHARS, entry_forms

# A text's words, with a mark between two words that something other than separators parts, in a few C calls
# (no `re`): each byte of the folded text's UTF-8 becomes itself (a word character), a space (an ASCII
# separator) or a mark (anything else, every byte of a non-ASCII character included; the Unicode dashes, which
# are separators, become spaces first), and the marks are set apart, so `split()` gives words and marks.
_MARK = "\x00"
_BYTE_CLASSES = bytes(c if chr(c) in WORD_CHARS else 32 if chr(c) in SEPARATOR_CHARS else 0 for c in range(256))
_DASHES = tuple(chr(c).encode("utf-8") for c in range(0x2010, 0x2016))  # E2 80 90..95: no other character's bytes


def _plain(word: str) -> bool:
    """Whether ``word`` is one or more word characters."""
    return bool(word) and WORD_CHARS.issuperset(word)


def tokens(data: bytes) -> list[str]:
    """The words of ``data`` (folded text, UTF-8) in order, with :data:`_MARK` between two words whose gap has
    a character that is not a separator (whitespace, a hyphen, a Unicode dash): two words are consecutive here
    exactly when only separators part them in the text."""
    if not data.isascii():
        for dash in _DASHES:
            if dash in data:
                data = data.replace(dash, b" ")
    return data.translate(_BYTE_CLASSES).replace(b"\x00", b" \x00 ").decode("ascii").split()


def index_entries(forms: Sequence[tuple[list[str], list[str]] | None]) -> dict[str, list[int]]:
    """The word index of a plan's entries, given each entry's :func:`~engine.detect.literals.entry_forms`:
    each word form → the entries made only of word characters that start with it (a word under each of its
    forms, a phrase under its first word), in entry order. Plain data: the plan keeps it (``index``), so a warm
    start builds nothing."""
    starts: dict[str, list[int]] = {}
    for index, found in enumerate(forms):
        if found is None:
            continue
        lead, last = found
        if not lead:
            if last and all(last) and _plain("".join(last)):
                for form in dict.fromkeys(last):
                    starts.setdefault(form, []).append(index)
        elif last and all(lead) and all(last) and _plain("".join(lead) + "".join(last)):
            starts.setdefault(lead[0], []).append(index)
    return starts


GATE = 3  # the shortest literal that gates a pattern
_RUN = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def gate_literal(pattern: str) -> str | None:
    """A literal every match of ``pattern`` (a set pattern, for folded text) starts a word of the text with,
    when it is plain to see: the pattern starts with ``\\b`` and then at least :data:`GATE` lower-case word
    characters that no quantifier follows, and has no ``|`` outside parentheses (nor ``\\Q`` quoting or a
    ``[:class:]``, which this reading does not follow). None otherwise.

    RE2's ``\\b`` is an ASCII word boundary, so a match starts a maximal run of ASCII word characters —
    a word, as :func:`tokens` cuts the text — and the literal's characters are that word's first ones: a text
    none of whose words starts with the literal cannot match (the matcher then neither compiles nor runs the
    pattern)."""
    if not pattern.startswith("\\b") or "\\Q" in pattern or "[:" in pattern:
        return None
    end = 2
    while end < len(pattern) and pattern[end] in _RUN:
        end += 1
    literal = pattern[2:end]
    if end < len(pattern) and pattern[end] in "?*+{":  # the last character is optional or repeated
        literal = literal[:-1]
    if len(literal) < GATE:
        return None
    depth, at, size = 0, 0, len(pattern)
    while at < size:
        char = pattern[at]
        if char == "\\":
            at += 2
            continue
        if char == "[":  # a class: skip to its end ("]" first, or after "^", is a member)
            at = _class_end(pattern, at)
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth <= 0:
            return None
        at += 1
    return literal


def gate_literals(pattern: str) -> tuple[str, ...] | None:
    """The literals one of which every match of ``pattern`` starts a word of the text with: its
    :func:`gate_literal`, or for a pattern that starts with ``\\b`` and a group of alternatives
    (``\\b(?:across|spanning|between)\\b…``, no quantifier after the group, no ``|`` outside parentheses), the
    :func:`gate_literal` of each alternative — when every one has one. None otherwise."""
    single = gate_literal(pattern)
    if single is not None:
        return (single,)
    if not pattern.startswith("\\b(?:") or "\\Q" in pattern or "[:" in pattern:
        return None
    bars, close, _ = _scan(pattern, 5)
    if close is None:
        return None
    alternatives = [pattern[start:end] for start, end in zip([5, *(bar + 1 for bar in bars)], [*bars, close])]
    rest = pattern[close + 1:]
    if rest[:1] in ("?", "*", "+", "{"):
        return None
    bars, close, left_open = _scan(rest)
    if bars or close is not None or left_open:  # an alternative, or unbalanced parentheses, past the group
        return None
    found = tuple(gate_literal("\\b" + alternative) for alternative in alternatives)
    return found if all(found) else None


def _class_end(pattern: str, at: int) -> int:
    """Where the character class that starts at ``pattern[at]`` ("[") ends (its "]")."""
    size = len(pattern)
    at += 1
    if at < size and pattern[at] == "^":
        at += 1
    if at < size and pattern[at] == "]":
        at += 1
    while at < size and pattern[at] != "]":
        at += 2 if pattern[at] == "\\" else 1
    return at


def unescaped(text: str, at: int = 0):  # -> Iterator[int]
    """The offsets of ``text``'s characters from ``at`` on that are neither escaped nor in a character class
    (a backslash and the character after it, and a class from its "[" to its "]", are skipped): where a
    pattern's own syntax is (groups, bars, repeats)."""
    size = len(text)
    while at < size:
        char = text[at]
        if char == "\\":
            at += 2
            continue
        if char == "[":
            at = _class_end(text, at) + 1
            continue
        yield at
        at += 1


def _scan(text: str, at: int = 0) -> tuple[list[int], int | None, int]:
    """From ``text[at]`` on: the offsets of the "|" outside parentheses, the offset of the first ")" that closes a
    parenthesis opened before ``at`` (the scan ends there; None when there is none), and how many parentheses
    are left open at the end. Escapes and character classes are skipped."""
    bars, depth = [], 0
    for at in unescaped(text, at):
        char = text[at]
        if char == "(":
            depth += 1
        elif char == ")":
            if depth == 0:
                return bars, at, 0
            depth -= 1
        elif char == "|" and depth == 0:
            bars.append(at)
    return bars, None, depth


def plan_gates(items: Sequence[Any], patterns: Sequence[str]) -> list[list]:
    """``[entry, literal]`` for each of the :func:`gate_literals` of each pattern entry of a plan (``items``):
    the plan keeps them (``gates``)."""
    return [[i, literal] for i, item in enumerate(items)
            if item[1] == "regex" and (literals := gate_literals(patterns[i])) is not None
            for literal in dict.fromkeys(literals)]


class WordIndex:
    """The word and phrase entries of a plan made only of word characters (``covered``: their indices).

    ``index`` is :func:`index_entries` of ``items`` when a plan kept it (else it is worked out here). A form's
    entries become ``(entry, later leading words or None, last word's forms or None)`` the first time a text
    has that form: a policy of thousands of literals expands the few its tasks reach."""

    __slots__ = ("covered", "gated", "words", "_starts", "_items", "_gates", "_lengths", "_confirm", "_stored",
                 "_seen")

    def __init__(self, items: Sequence[Any], index: Any = None, gates: Sequence[Sequence[Any]] = (),
                 confirm: Any = None):
        """``index``: a dict, or an index stored in buckets (engine.policy.sections.Buckets: ``find(forms)``
        gives the entries of the forms it holds, decoding only their buckets), which is then looked up a text's
        new words at a time (its forms are kept; so are the words it does not hold: each word is looked up once)
        and ``covered`` is not known (a matcher given the plan's ``rest`` does not need it)."""
        if index is None:
            index = index_entries([entry_forms(item) for item in items])
        self._items = items
        self.words = len(index) > 0
        """Whether any entry is screened by words."""
        self._stored = self._seen = None
        if type(index) is dict:
            self.covered = frozenset(chain.from_iterable(index.values()))
            self._starts = dict(index)  # its values are replaced as they are expanded
        else:
            self.covered = frozenset()
            self._starts = {}
            self._stored, self._seen = index, set()
        # Gated entries (``gates``: [entry, literal], see gate_literal): a text some word of which starts with
        # the literal is a candidate, which ``confirm(entry, data)`` (its own RE2 pattern) decides. Looked up by
        # each word's first n characters, for each length n of a literal.
        self._gates: dict[str, list[int]] = {}
        if confirm is not None:
            for entry, literal in gates:
                self._gates.setdefault(literal, []).append(entry)
        self._lengths = sorted(set(map(len, self._gates)))
        self.gated = frozenset(chain.from_iterable(self._gates.values()))
        self._confirm = confirm

    def _expand(self, form: str) -> tuple:
        """The entries under ``form``, expanded (see the class docstring) and kept."""
        items = self._items
        found = []
        for index in self._starts[form]:
            forms = entry_forms(items[index])
            if forms is not None:
                lead, last = forms
                found.append((index, tuple(lead[1:]), frozenset(last)) if lead else (index, None, None))
        expanded = self._starts[form] = tuple(found)
        return expanded

    def fired(self, data: bytes, words: list[str] | None = None) -> list[int]:
        """The covered and gated entries that match somewhere in ``data`` (folded text, UTF-8), in no particular
        order, each once; ``words``: its :func:`tokens`, when the caller has them."""
        if not self.words and not self._gates:
            return []
        if words is None:
            words = tokens(data)
        starts = self._starts
        found: dict[int, None] = {}
        distinct = set(words)
        distinct.discard(_MARK)
        if self._seen is not None:
            new = distinct - self._seen
            if new:
                self._look_up(new)
        if self._gates:
            gates, confirm = self._gates, self._confirm
            # Each word's first n characters for each length n of a literal (a shorter word has none), looked
            # up at once; an entry gated by several literals (alternatives) is confirmed once.
            prefixes = {word[:size] for size in self._lengths for word in distinct if len(word) >= size}
            asked = set()
            for literal in gates.keys() & prefixes:
                for entry in gates[literal]:
                    if entry not in asked:
                        asked.add(entry)
                        if confirm(entry, data):
                            found[entry] = None
        for form in filter(starts.__contains__, distinct):  # in C: no Python loop over the text's words
            entries = starts[form]
            if type(entries) is list:  # the first text with this form
                entries = self._expand(form)
            for index, lead, last in entries:
                if lead is None:
                    found[index] = None
                elif index not in found:
                    at = words.index(form)
                    while True:
                        if _phrase_at(words, at, lead, last):
                            found[index] = None
                            break
                        try:
                            at = words.index(form, at + 1)
                        except ValueError:
                            break
        return list(found)


    def _look_up(self, new: set[str]) -> None:
        """Look ``new`` words up in the stored index; once it has been read whole (or this process has seen
        :data:`SEEN_MAX` words), the index is a plain dict and nothing is looked up any more."""
        stored = self._stored
        for form, entries in stored.find(new).items():
            self._starts.setdefault(form, entries)
        self._seen |= new
        if stored.complete or len(self._seen) > SEEN_MAX:
            for form, entries in stored.whole().items():
                self._starts.setdefault(form, entries)
            self._stored = self._seen = None


SEEN_MAX = 1 << 16
"""Words a stored index is looked up by before it is read whole."""


def _phrase_at(words: list[str], k: int, lead: tuple[str, ...], last: frozenset[str]) -> bool:
    """Whether the words from ``words[k]`` on (its first leading word) continue with ``lead`` and then one of
    ``last``, with only separators between them (no :data:`_MARK` between them in :func:`tokens`)."""
    end = k + 1 + len(lead)
    return end < len(words) and words[end] in last and (not lead or tuple(words[k + 1:end]) == lead)
