"""The parts of a condition that can be decided without evaluating it: its top-level conjuncts, and what each reads.

A ``when:`` condition ``a && b && c`` holds only when each of ``a``, ``b`` and ``c`` evaluates to true (CEL's
``&&`` gives true for true operands only; false or an error, which does not hold, otherwise). So a conjunct
that does not hold decides the whole condition: it does not hold either, whatever the other conjuncts and the
cost limit would do. A conjunct that reads only group counts (``count.G``, ``ask.count.G``), signals that fired
(``hits.ID``, ``has(hits.ID)``, ``'ID' in hits``) and the task's scalar facts (``words``, ``chars``,
``question``, ``ask.words``, ``ask.question``, ``ask.narrowed``), with numbers, comparisons and logic, is a
function of those few values: the detector remembers its value per those values instead of evaluating it
(``count.lookup == 0 && ask.question && ask.words <= 12`` is decided by ``ask.question`` on most tasks without
building the bindings a condition sees).

This is plain text analysis of the condition's source, deliberately conservative: a condition with a string
escape, a comment, a top-level ``||`` or ``?:`` is not split, and a conjunct that reads anything else is not
remembered.
"""

from __future__ import annotations

from engine.records import Record

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Mapping

# What a remembered conjunct may read (see the module's docstring), each reference replaced by a number; compiled
# (and `re` imported) when a conjunct is first read that the cheap tests below do not settle.
_REGEXES = (r"(?<![\w.'\"])(?:(?:ask\.)?count\.([A-Za-z_]\w*)|hits\.([A-Za-z_]\w*)"
            r"|'([^'\\]*)'\s+in\s+hits|\"([^\"\\]*)\"\s+in\s+hits"
            r"|(ask\.(?:words|question|narrowed)|words|chars|question))(?![\w.(\[])",
            r"\b(?:true|false|has)\b|\b\d+(?:\.\d+)?\b",  # constants
            r"[\s<>=!&|+\-*/%()?:]*")  # operators
_compiled: list = []
# The names a remembered conjunct's top level may have (besides those inside quotes).
_NAMES = frozenset({"count", "ask", "hits", "words", "chars", "question", "true", "false", "has", "in"})
_OPEN, _CLOSE = "([{", ")]}"

#: The task's scalar facts a remembered conjunct may read.
FACTS = ("words", "chars", "question", "ask.words", "ask.question", "ask.narrowed")


class Inputs(Record):
    """What a conjunct reads: group names, signal ids, and scalar facts (names of :data:`FACTS`)."""

    groups: tuple[str, ...]
    ids: tuple[str, ...]
    facts: tuple[str, ...]


def conjuncts(source: str) -> list[str] | None:
    """The top-level conjuncts of a condition (``a && (b || c) && d`` → ``["a", "(b || c)", "d"]``), or None
    when it is not a conjunction of two or more, or has what this scan does not follow (escapes, comments,
    triple quotes), or a top-level ``||`` or ``?:`` (which bind more loosely than ``&&``)."""
    if "\\" in source or "//" in source or "'''" in source or '"""' in source:
        return None
    parts: list[str] = []
    depth, start, i, size = 0, 0, 0, len(source)
    while i < size:
        ch = source[i]
        if ch in "'\"":
            end = source.find(ch, i + 1)
            if end < 0:
                return None
            i = end + 1
            continue
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth < 0:
                return None
        elif depth == 0:
            pair = source[i:i + 2]
            if pair == "||" or ch == "?":
                return None
            if pair == "&&":
                parts.append(source[start:i].strip())
                i += 2
                start = i
                continue
        i += 1
    if depth != 0:
        return None
    parts.append(source[start:].strip())
    return parts if len(parts) > 1 and all(parts) else None


def inputs(source: str) -> Inputs | None:
    """What ``source`` reads when it reads only counts, hits and scalar facts (see the module's docstring);
    else None."""
    groups: list[str] = []
    ids: list[str] = []
    facts: list[str] = []

    def note(match: re.Match) -> str:
        group, hit, quoted, double, fact = match.groups()
        if group is not None:
            groups.append(group)
        elif fact is not None:
            facts.append(fact)
        else:
            ids.append(hit if hit is not None else quoted if quoted is not None else double)
        return " 0 "

    if "'" not in source and '"' not in source and _other_name(source):
        return None  # settled without the regexes: `context`, `text`, `tiers` and the like are never remembered
    if not _compiled:
        import re

        _compiled.extend(map(re.compile, _REGEXES))
    reference, constant, operators = _compiled
    rest = constant.sub(" ", reference.sub(note, source))
    if not operators.fullmatch(rest) or not (groups or ids or facts):
        return None
    return Inputs(tuple(sorted(set(groups))), tuple(sorted(set(ids))), tuple(f for f in FACTS if f in facts))


def _other_name(source: str) -> bool:
    """Whether ``source`` (without quotes) names at its top level (not after a ".") something other than
    :data:`_NAMES`; such a name survives every substitution of :func:`inputs`, which then answers None."""
    at, size = 0, len(source)
    while at < size:
        ch = source[at]
        if ch.isalpha() or ch == "_":
            end = at + 1
            while end < size and (source[end].isalnum() or source[end] == "_"):
                end += 1
            if (at == 0 or source[at - 1] != ".") and source[at:end] not in _NAMES:
                return True
            at = end
        elif ch.isalnum():  # a number (or a digit before letters: 1e5): skip the run
            while at < size and (source[at].isalnum() or source[at] == "_"):
                at += 1
        else:
            at += 1
    return False


# What direct_conjunct reads: a scalar fact or a group count, and whether its value is a number or a boolean.
_INT_FACTS = frozenset({"words", "chars", "ask.words"})
_BOOL_FACTS = frozenset({"question", "ask.question", "ask.narrowed"})
_COMPARE = {"==": int.__eq__, "!=": int.__ne__, "<": int.__lt__, "<=": int.__le__, ">": int.__gt__, ">=": int.__ge__}
_CEL_SPACE = frozenset(" \t\n\r\f")


def direct_conjunct(part: str) -> tuple[Callable[[Mapping[str, Any]], Any], Inputs] | None:
    """``(read, inputs)``: ``read(bindings)`` is the value of a conjunct of the simplest shapes, read from the bindings a condition
    sees without compiling it: a boolean fact alone (``ask.question``, ``question``, ``ask.narrowed``), or a
    number — ``words``, ``chars``, ``ask.words``, ``count.G``, ``ask.count.G`` — compared with a decimal integer
    literal (``ask.words <= 12``, ``count.lookup == 0``), tokens apart. Both sides are integers, so Python's
    comparison is CEL's; ``inputs`` is what :func:`inputs` answers for it. None for anything else (it is
    compiled): this is how a one-shot process decides
    ``count.lookup == 0 && ask.question && ask.words <= 12`` without importing the expression compiler."""
    if not part.isascii() or not all(ch.isprintable() or ch in _CEL_SPACE for ch in part):
        return None
    tokens = part.split()
    if len(tokens) == 1 and tokens[0] in _BOOL_FACTS:
        return _reader(tokens[0]), Inputs((), (), (tokens[0],))
    if len(tokens) != 3 or tokens[1] not in _COMPARE:
        return None
    name, operator, literal = tokens
    if not (literal == "0" or (literal.isdigit() and literal[0] != "0" and len(literal) <= 18)):
        return None
    if name not in _INT_FACTS and not _is_count(name):
        return None
    read, compare, bound = _reader(name), _COMPARE[operator], int(literal)
    found = Inputs((), (), (name,)) if name in _INT_FACTS else Inputs((name.rpartition(".")[2],), (), ())
    return (lambda bindings: compare(read(bindings), bound)), found


def direct_condition(source: str) -> Callable[[Mapping[str, Any]], bool] | None:
    """``read(bindings)`` of a whole condition built only of shapes read without compiling it: the
    :func:`direct_conjunct` shapes, a sum of numbers compared with a decimal integer
    (``ask.count.system + ask.count.layer >= 3``) and ``has(hits.ID)``, joined by ``&&``, with ``||`` inside
    parentheses. An error (a name the bindings lack) goes where CEL sends it: ``true || error`` holds, and a
    condition that ends in an error does not (the detector's callers treat a raise as "does not hold"). None
    for anything else (it is compiled). A one-shot process then decides the count conditions a task that
    names a system reaches (six for the default policy) without importing the expression compiler (~14 ms)."""
    parts = conjuncts(source) or [source]
    readers = []
    for part in parts:
        part = part.strip()
        if part.startswith("(") and part.endswith(")") and _balanced(part[1:-1]):
            read = _direct_either(part[1:-1])
        else:
            read = _direct_part(part)
        if read is None:
            return None
        readers.append(read)
    if len(readers) == 1:
        return readers[0]

    def every(bindings: Mapping[str, Any]) -> bool:
        for read in readers:
            if not read(bindings):
                return False
        return True

    return every


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += (ch in _OPEN) - (ch in _CLOSE)
        if depth < 0:
            return False
    return depth == 0


def _direct_either(source: str) -> Callable[[Mapping[str, Any]], bool] | None:
    """The disjunction ``a || b || …`` of direct parts (a top-level ``||`` only; no parentheses inside)."""
    if any(ch in _OPEN or ch in _CLOSE or ch in "'\"?" for ch in source) or "&&" in source:
        return None
    readers = [_direct_part(part.strip()) for part in source.split("||")]
    if len(readers) < 2 or any(read is None for read in readers):
        return None

    def either(bindings: Mapping[str, Any]) -> bool:
        failed = None
        for read in readers:
            try:
                if read(bindings):
                    return True
            except Exception as exc:  # noqa: BLE001 - CEL: true || error is true; false || error is the error
                failed = exc
        if failed is not None:
            raise failed
        return False

    return either


def _direct_part(part: str) -> Callable[[Mapping[str, Any]], bool] | None:
    found = direct_conjunct(part)
    if found is not None:
        return found[0]
    if not part.isascii() or not all(ch.isprintable() or ch in _CEL_SPACE for ch in part):
        return None
    if part.startswith("has(hits.") and part.endswith(")") and part[9:-1].isidentifier():
        signal = part[9:-1]
        return lambda bindings: signal in bindings["hits"]
    tokens = part.split()
    if len(tokens) < 5 or len(tokens) % 2 == 0 or tokens[-2] not in _COMPARE:
        return None
    names, literal = tokens[:-2:2], tokens[-1]
    if any(plus != "+" for plus in tokens[1:-2:2]):
        return None
    if not (literal == "0" or (literal.isdigit() and literal[0] != "0" and len(literal) <= 18)):
        return None
    if not all(name in _INT_FACTS or _is_count(name) for name in names):
        return None
    reads, compare, bound = [_reader(name) for name in names], _COMPARE[tokens[-2]], int(literal)

    def total(bindings: Mapping[str, Any]) -> bool:
        value = 0
        for read in reads:
            value += read(bindings)
        return compare(value, bound)

    return total


def _is_count(name: str) -> bool:
    group = name[6:] if name.startswith("count.") else name[10:] if name.startswith("ask.count.") else ""
    return group.isidentifier() and "." not in group


def _reader(name: str) -> Callable[[Mapping[str, Any]], Any]:
    """``bindings → value`` of a dotted name, as the compiled condition would select it."""
    keys = name.split(".")
    if len(keys) == 1:
        key = keys[0]
        return lambda bindings: bindings[key]
    if len(keys) == 2:
        first, second = keys
        return lambda bindings: bindings[first][second]
    first, second, third = keys
    return lambda bindings: bindings[first][second][third]
