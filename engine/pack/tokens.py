"""Counting tokens offline: a fast estimator, and exact BPE counters from a package that ships its encodings.

``estimate`` (the default) needs nothing: it counts word pieces and punctuation the way BPE vocabularies
tend to split English prose, Markdown and code (its error against cl100k on the sample store is in
docs/memory.md and ``benchmarks/bench_pack.py``). ``cl100k`` and ``o200k`` count exactly with the
``bpe-openai`` package (``pip install 'ctxbudget[tokens]'``), whose wheel carries the encoding files: nothing is
downloaded, ever. The index caches every count, so a counter runs once per changed file.
"""

from __future__ import annotations

import re

TYPE_CHECKING = False  # not typing's: importing typing costs every start (a hook is a new process)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Callable

    Counter = Callable[[str], int]  # text -> its token count

from engine.diagnostics import UsageError

# A run of letters, a run of digits, or one other visible character. BPE vocabularies hold common English
# words whole and split long or rare ones; digits go in groups of up to three (cl100k, o200k).
_PIECES = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_")


def estimate(text: str) -> int:
    """An estimate of the BPE token count of ``text`` (no vocabulary; about 20 MB/s)."""
    total = 0
    for piece in _PIECES.findall(text):
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
