"""Literal words and phrases: their inflected forms and the RE2 pattern that finds them.

A literal is matched case-insensitively (both sides are normalised with :func:`fold`), on word boundaries,
and — unless the signal says ``inflect: false`` — in its simple English inflections: ``query`` also matches
``queries``, ``queried`` and ``querying``; ``migrate`` matches ``migrates``, ``migrated``, ``migrating``.
Only a phrase's last word is inflected (``root cause`` → ``root causes``). Inside a phrase, any run of spaces
or hyphens matches any run of separators (ASCII whitespace, hyphens and Unicode dashes), so ``end to end``
finds ``end-to-end``.

Word boundaries are ASCII ones, the same as RE2's ``\\b``: a literal edge that is a letter, digit or ``_``
must not touch another one; an edge that is anything else (``c++``, ``é``) needs no boundary.
"""

from __future__ import annotations

from engine.detect.normalize import fold

# RE2's \b counts ASCII letters, digits and "_" as word characters; so does everything here.
WORD_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
# What separates the words of a phrase in a task: RE2's \s (ASCII whitespace), "-" and the Unicode dashes
# U+2010..U+2015 (NFKC keeps them).
SEPARATOR_CHARS = frozenset("\t\n\f\r -" + "".join(chr(c) for c in range(0x2010, 0x2016)))
SEPARATOR = r"[\t\n\f\r \-\x{2010}-\x{2015}]+"
# What splits a literal into words besides whitespace (str.split's, which is re's \s): "-" and the Unicode dashes.
_DASHES_TO_SPACE = str.maketrans(dict.fromkeys("-" + "".join(chr(c) for c in range(0x2010, 0x2016)), " "))
_RE2_SPECIAL = frozenset(chr(c) for c in (*range(0x21, 0x30), *range(0x3a, 0x41), *range(0x5b, 0x61), *range(0x7b, 0x7f)))  # ASCII punctuation
_VOWELS = frozenset("aeiou")
_SIBILANT_ENDINGS = ("s", "x", "z", "ch", "sh")


def words_of(literal: str) -> list[str]:
    """The folded words of a literal (``"End-to-End"`` → ``["end", "to", "end"]``)."""
    return fold(literal).translate(_DASHES_TO_SPACE).split()


def inflections(word: str) -> list[str]:
    """``word`` and its simple inflections (plural or 3rd person, past, gerund), the word itself first.

    Only ASCII words of three or more letters are inflected; others stand as written.
    """
    if len(word) < 3 or not (word.isascii() and word.isalpha()):
        return [word]
    forms = [word]
    last, before = word[-1], word[-2]
    if last == "y" and before not in _VOWELS:
        stem = word[:-1]
        forms += [stem + "ies", stem + "ied", word + "ing"]
    elif last == "e":
        forms += [word + "s", word + "d"]
        forms.append(word + "ing" if word.endswith(("ee", "ye", "oe")) else word[:-1] + "ing")
    else:
        forms.append(word + ("es" if word.endswith(_SIBILANT_ENDINGS) else "s"))
        forms += [word + "ed", word + "ing"]
        if last not in _VOWELS and last not in "wxy" and before in _VOWELS and word[-3] not in _VOWELS:
            forms += [word + last + "ed", word + last + "ing"]  # plan → planned, planning
    return list(dict.fromkeys(forms))


def literal_forms(literal: str, inflect: bool = True) -> tuple[list[str], list[str]]:
    """The fixed leading words of a literal and the alternatives of its last word."""
    words = words_of(literal)
    if not words:
        return [], []
    last = inflections(words[-1]) if inflect else [words[-1]]
    return words[:-1], last


def literal_pattern(literal: str, inflect: bool = True) -> str:
    """The RE2 pattern (for folded text) that finds ``literal``."""
    lead, last = literal_forms(literal, inflect)
    if not last:
        raise ValueError(f"literal {literal!r} has no words")
    return forms_pattern(lead, last)


def forms_pattern(lead: list[str], last: list[str]) -> str:
    """The RE2 pattern of the words ``lead`` followed by one of ``last`` (see :func:`literal_forms`)."""
    first = (lead or last)[0][0]
    body = "".join(quote(w) + SEPARATOR for w in lead)
    ends = [quote(w) + (r"\b" if w[-1] in WORD_CHARS else "") for w in last]
    body += ends[0] if len(ends) == 1 else "(?:" + "|".join(ends) + ")"
    return (r"\b" if first in WORD_CHARS else "") + body


def entry_forms(item: list) -> tuple[list[str], list[str]] | None:
    """The leading words and the last word's forms (:func:`literal_forms`) of a detection plan's literal entry
    ``[signal, "literal" or "exact", text]`` ("exact": not inflected); None for a ``"regex"`` entry."""
    kind = item[1]
    if kind == "literal" or kind == "exact":
        return literal_forms(item[2], kind == "literal")
    return None


def entry_pattern(item: list, stored: str) -> str:
    """The set pattern of a detection plan's entry ``item``: ``stored``, the pattern the plan keeps, or when
    that is "" (a literal the plan's word index covers) the pattern of its forms."""
    if stored:
        return stored
    forms = entry_forms(item)
    if forms is None:
        raise ValueError(f"a plan entry of kind {item[1]!r} without its pattern")
    return forms_pattern(*forms)


def quote(word: str) -> str:
    """``word`` (no whitespace) as an RE2 literal: ASCII punctuation escaped, everything else as is."""
    return word if word.isalnum() else "".join("\\" + ch if ch in _RE2_SPECIAL else ch for ch in word)
