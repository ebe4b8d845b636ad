"""Counting tokens offline: a fast estimator, and exact BPE counters from a package that ships its encodings.

``estimate`` (the default) needs nothing: it counts word pieces and punctuation the way BPE vocabularies
tend to split English prose, Markdown and code (its error against cl100k on the sample store is in
docs/memory.md and ``benchmarks/bench_pack.py``). ``cl100k`` and ``o200k`` count exactly with the
``bpe-openai`` package (``pip install 'ctxbudget[tokens]'``), whose wheel carries the encoding files: nothing is
downloaded, ever. The index caches every count, so a counter runs once per changed file.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start (a hook is a new process)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Callable

    from typing import Any

    Counter = Callable[[str], int]  # text -> its token count

from engine.diagnostics import UsageError

# A run of letters, a run of digits, or one other visible character. BPE vocabularies hold common English
# words whole and split long or rare ones; digits go in groups of up to three (cl100k, o200k).
_PIECES = r"[^\W\d_]+|\d+|[^\w\s]|_"
_COMPILED: dict[str, Any] = {}


def compiled(pattern: str) -> Any:
    """``re.compile(pattern)``, kept: the memory packing's one way to a regular expression. ``re`` is imported
    (~4 ms of a start, with its enum) when one is first needed — a text counted, a task not in ASCII, a glob
    with wildcards, a file indexed — and a warm pack of ASCII words, such as every hook's, needs none."""
    found = _COMPILED.get(pattern)
    if found is None:
        import re

        found = _COMPILED[pattern] = re.compile(pattern)
    return found


def estimate(text: str) -> int:
    """An estimate of the BPE token count of ``text`` (no vocabulary): the sum, over the pieces ``_PIECES``
    finds, of 1 for a piece of up to 6 characters, ``(n + 2) // 3`` for a longer run of digits and
    ``1 + (n - 4) // 5`` for a longer word; plus one per 8 spaces of indentation. Text whose characters are
    ASCII, or become ASCII once each other character is replaced by an ASCII one of its class, is counted by
    byte-level scans (:func:`_estimate_ascii`, about 8× the regular expression's speed); the rest piece by
    piece (:func:`_estimate_pieces`). Both give the same count (``tests/test_pack.py`` checks it)."""
    if text.isascii():
        return _estimate_ascii(text.encode("ascii"), text)
    standin = _ascii_standin(text)
    if standin is None:
        return _estimate_pieces(text)
    return _estimate_ascii(standin.encode("ascii"), text)


def _estimate_pieces(text: str) -> int:
    """:func:`estimate` by the regular expression, one piece at a time (for any text)."""
    total = 0
    for piece in compiled(_PIECES).findall(text):
        n = len(piece)
        if n <= 6:
            total += 1
        elif piece[0].isdigit():
            total += (n + 2) // 3
        else:
            total += 1 + (n - 4) // 5
    # Runs of spaces beyond one (indentation) cost tokens too, about one per four.
    total += text.count("    ") // 2
    return total


def _byte_tables() -> tuple[bytes, bytes, bytes]:
    """256-byte tables for bytes.translate, one per class of ``_PIECES``: ASCII letters, digits, and the
    characters that are pieces of their own (punctuation, ``_``) → 1, anything else → 0. Each ASCII character
    is classified by the expression's own classes, so the scans count what it finds."""
    import re

    letters, digits, singles = bytearray(256), bytearray(256), bytearray(256)
    for code in range(128):
        char = chr(code)
        if re.fullmatch(r"[^\W\d_]", char):
            letters[code] = 1
        elif re.fullmatch(r"\d", char):
            digits[code] = 1
        elif re.fullmatch(r"[^\w\s]|_", char):
            singles[code] = 1
    return bytes(letters), bytes(digits), bytes(singles)


_TABLES: list[bytes] = []
_RUN_TABLE = bytes.maketrans(b"\0\1", b" a")


def _lengths(mask: bytes, least: int) -> list[int]:
    """The lengths of the runs of 1s in ``mask`` (bytes 0 and 1) at least ``least`` long."""
    return [len(run) for run in mask.translate(_RUN_TABLE).split() if len(run) >= least]


def _estimate_ascii(data: bytes, text: str) -> int:
    """:func:`estimate` of ``text`` from ``data``: its characters as ASCII bytes of the same classes.

    Each class becomes a bit mask, one byte a character (a big integer), and runs are counted with bitwise
    operations: a run starts where a byte is set and the one before is not; it is at least k long where the
    k bytes from its start are all set."""
    if not _TABLES:
        _TABLES.extend(_byte_tables())
    letters_table, digits_table, singles_table = _TABLES
    mask = data.translate(letters_table)
    x = int.from_bytes(mask, "little")
    starts = x & ~(x << 8)
    total = starts.bit_count()
    # a word is 1 token, and 1 more at 9, 14, 19, … letters: (n - 4) // 5 more for n > 6
    five = x & (x >> 8) & (x >> 16) & (x >> 24) & (x >> 32)  # the next 5 bytes are letters
    run = five & (five >> 32)  # the next 9
    least = 9
    while True:
        extra = (starts & run).bit_count()
        if not extra:
            break
        total += extra
        least += 5
        if least > 64:  # very long runs are rare: count what is left of each one directly
            total += sum((n - 4) // 5 - (least - 9) // 5 for n in _lengths(mask, least))
            break
        run &= five >> (8 * (least - 5))
    mask = data.translate(digits_table)
    x = int.from_bytes(mask, "little")
    starts = x & ~(x << 8)
    total += starts.bit_count()
    seven = x & (x >> 8) & (x >> 16) & (x >> 24)
    seven &= seven >> 24
    if starts & seven:  # a long number: (n + 2) // 3 tokens instead of 1
        total += sum((n + 2) // 3 - 1 for n in _lengths(mask, 7))
    total += data.translate(singles_table).count(1)
    total += text.count("    ") // 2
    return total


_STANDINS: dict[str, str] = {}
_STANDINS_MAX = 1 << 14  # characters remembered: a memory store of every code point must not grow it to ~100 MB
_OTHER = r"[^\x00-\x7f]"


def _ascii_standin(text: str) -> str | None:
    """``text`` with each character outside ASCII replaced by an ASCII character of its class for
    ``_PIECES`` (a letter by ``a``, a digit by ``0``, a piece of its own by ``!``, anything else by a space);
    None when a letter counts as a digit (``²``: a long word starting with one is counted as a number)."""
    import re

    standins = _STANDINS
    found = {}
    other = compiled(_OTHER)
    for char in set(other.findall(text)):
        standin = standins.get(char)
        if standin is None:
            if re.fullmatch(r"[^\W\d_]", char):
                standin = "a" if not char.isdigit() else ""
            elif re.fullmatch(r"\d", char):
                standin = "0"
            elif re.fullmatch(r"[^\w\s]", char):
                standin = "!"
            else:
                standin = " "
            if len(standins) < _STANDINS_MAX:
                standins[char] = standin
        if not standin:
            return None
        found[char] = standin
    return other.sub(lambda match: found[match.group()], text)


_EXACT = {"cl100k": "cl100k_base", "o200k": "o200k_base"}
_loaded: dict[str, Counter] = {}


def counter(name: str) -> Counter:
    """The counter called ``name`` (``estimate``, ``cl100k``, ``o200k``); UsageError when an exact counter's
    package is not installed."""
    if name == "estimate":
        return estimate
    found = _loaded.get(name)
    if found is not None:
        return found
    encoding_name = _EXACT.get(name)
    if encoding_name is None:
        raise UsageError(f"unknown token counter {name!r} (counters: estimate, {', '.join(_EXACT)})")
    try:
        import bpe_openai
    except ImportError:
        raise UsageError(f"the token counter {name!r} needs the bpe-openai package: "
                         "pip install 'ctxbudget[tokens]' (or set memory.counter: estimate)") from None
    encoding = bpe_openai.get_encoding(encoding_name)

    def exact(text: str) -> int:
        return len(encoding.encode_ordinary(text))

    _loaded[name] = exact
    return exact
