"""The grammar, ``cel.lark``, and the parse tables generated from it (development time; needs lark).

lark analyses the grammar; its serialisation tool (``lark.tools.serialize``, the public way to hand lark's LALR(1)
analysis to another program) gives the terminals, rules and parse table as JSON data. :func:`generate` turns that
into ``_tables.py``: plain tuples and dicts (one regular expression for the terminals, the rules with the names of
the children they keep, the states), which :mod:`engine.expr.syntax` runs with a short LALR(1) loop. So a
compile imports neither lark (about 45 ms) nor lark's standalone runtime (about 25 ms to load its tables). After
editing the grammar::

    python -m engine.expr.grammar --regen

``tests/test_expr_parser.py`` fails while ``_tables.py`` differs from what this module generates, when a
Builder method does not take exactly the children of its rules, and when the loop parses anything differently
from ``lark.Lark(cel.lark, parser="lalr")``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sys

GRAMMAR = os.path.join(os.path.dirname(__file__), "cel.lark")
GENERATED = os.path.join(os.path.dirname(__file__), "_tables.py")
#: The options lark analyses the grammar with (a test builds lark's own parser with them too). No placeholders:
#: an absent ``[optional]`` child is an absent keyword argument.
OPTIONS = {"parser": "lalr", "lexer": "basic", "maybe_placeholders": False}


class GrammarError(Exception):
    """The grammar uses something the tables or the loop in syntax.py do not support."""


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def current_digest() -> str:
    return _digest(_read(GRAMMAR))


def lark_parser(text: str | None = None, **options):
    """lark's own parser for ``text`` (default: ``cel.lark``), for the generator and the tests."""
    from lark import Lark

    return Lark(_read(GRAMMAR) if text is None else text, **{**OPTIONS, **options})


def analysis(parser) -> tuple[dict, dict]:
    """lark's analysis of the grammar as data, through ``lark.tools.serialize``: ``(data, memo)``."""
    from lark.tools.serialize import serialize

    out = io.StringIO()
    serialize(parser, out)
    document = json.loads(out.getvalue())
    return document["data"], document["memo"]


def _resolve(value, memo: dict):
    if isinstance(value, dict) and set(value) == {"@"}:
        return memo[str(value["@"])]
    return value


def _rule_key(rule: dict) -> tuple:
    return (rule["origin"]["name"], [s["name"] for s in rule["expansion"]], rule["alias"] or "")


def _rules(data: dict, memo: dict) -> tuple[list[dict], dict[int, int]]:
    """The rules in a stable order, and the memo number of each → its index in that order."""
    refs = [r["@"] for r in data["rules"]]
    rules = sorted(((memo[str(ref)], ref) for ref in refs), key=lambda pair: _rule_key(pair[0]))
    return [r for r, _ in rules], {ref: i for i, (_r, ref) in enumerate(rules)}


def _rule_row(rule: dict) -> tuple:
    """``(origin, callback, names)``: ``names`` has one entry per symbol of the expansion, the symbol's name
    when the child is kept, ``None`` when lark drops it (anonymous punctuation); ``callback`` is ``None`` when the
    rule hands its one kept child up unchanged (a ``?rule`` without an alias)."""
    origin = rule["origin"]["name"]
    options = rule["options"]
    if origin.startswith("_"):
        raise GrammarError(f"rule {origin!r}: inline rules (and `x+`, `x*`) are not supported; write a named list "
                           "rule (`items: item | items item`)")
    if options["keep_all_tokens"]:
        raise GrammarError(f"rule {origin!r}: `!` rules (keep all tokens) are not supported")
    names = tuple(None if s.get("filter_out") else s["name"] for s in rule["expansion"])
    kept = [n for n in names if n is not None]
    if len(set(kept)) != len(kept):
        raise GrammarError(f"rule {origin!r} ({' '.join(kept)}): children must have distinct names; "
                           "name one through a `?name: symbol` rule")
    if options["expand1"] and not rule["alias"]:
        if len(kept) != 1:
            raise GrammarError(f"rule {origin!r}: an alternative of a `?rule` with other than one kept child needs "
                               "an `-> alias`")
        return (origin, None, names)
    return (origin, rule["alias"] or origin, names)


QUOTED_TERMINALS = ("STRING", "BYTES")
"""Terminals that match nothing without a quote character (``'`` or ``"``): the lexer of a source without one
leaves them out of its regular expression, which then compiles in a tenth of the time (tests/test_expr_parser.py
checks both claims: these need a quote, and the two lexers agree on quote-free sources)."""


def _lexer(parser, data: dict, memo: dict) -> tuple[str, str, dict, list[str]]:
    """One regular expression for the terminals, alternatives in the order lark's basic lexer tries them, and the
    same without :data:`QUOTED_TERMINALS`; the keywords (string terminals that a regular-expression terminal of
    the same priority also matches whole, which lark's lexer retypes after matching); the terminals it
    ignores."""
    conf = data["parser"]["lexer_conf"]
    terminals = [parser.get_terminal(_resolve(t, memo)["name"]) for t in conf["terminals"]]
    for t in terminals:
        if t.pattern.flags:
            raise GrammarError(f"terminal {t.name}: regular-expression flags are not supported")
    strings = [t for t in terminals if t.pattern.type == "str"]
    keywords: dict[str, dict[str, str]] = {}
    embedded = set()
    for regex in (t for t in terminals if t.pattern.type == "re"):
        compiled = re.compile(regex.pattern.to_regexp())
        for s in strings:
            m = compiled.match(s.pattern.value)
            if s.priority == regex.priority and m and m.group() == s.pattern.value:
                keywords.setdefault(regex.name, {})[s.pattern.value] = s.name
                embedded.add(s.name)
    rest = [t for t in terminals if t.name not in embedded]
    rest.sort(key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name))
    token_re = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in rest)
    unquoted = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in rest if t.name not in QUOTED_TERMINALS)
    return token_re, unquoted, keywords, sorted(conf["ignore"])


def generate(text: str | None = None) -> str:
    """The text of ``_tables.py`` for the current ``cel.lark`` (or for the grammar ``text``); raises
    :class:`GrammarError` for what the loop in syntax.py does not support."""
    text = _read(GRAMMAR) if text is None else text
    parser = lark_parser(text)
    data, memo = analysis(parser)
    table = data["parser"]["parser"]
    tokens = table["tokens"]  # symbol number → name
    rules, rule_index = _rules(data, memo)
    rule_rows = [_rule_row(r) for r in rules]

    # States numbered in the order a breadth-first walk from the start state meets them (lark's own numbering
    # follows set iteration order, which changes from run to run).
    states = table["states"]
    start, end = str(table["start_states"]["start"]), str(table["end_states"]["start"])
    renumber: dict[str, int] = {}
    queue = [start]
    while queue:
        old = queue.pop(0)
        if old in renumber:
            continue
        renumber[old] = len(renumber)
        for symbol, (action, arg) in sorted(states[old].items(), key=lambda item: tokens[item[0]]):
            if action == 0 and str(arg) not in renumber:  # 0: shift (or go to), 1: reduce
                queue.append(str(arg))
    if len(renumber) != len(states):
        raise GrammarError("unreachable parser states")
    rows = []
    for old in sorted(renumber, key=renumber.__getitem__):
        row = {}
        for symbol, (action, arg) in sorted(states[old].items(), key=lambda item: tokens[item[0]]):
            row[tokens[symbol]] = renumber[str(arg)] if action == 0 else ~rule_index[arg["@"]]
        rows.append(row)

    token_re, unquoted_re, keywords, ignore = _lexer(parser, data, memo)
    lines = [
        "# Generated from engine/expr/cel.lark by `python -m engine.expr.grammar --regen`; do not edit.",
        f"# grammar-sha256: {_digest(text)}",
        "# lark's LALR(1) analysis (lark.tools.serialize) as plain data; engine/expr/syntax.py runs it.",
        "# fmt: off",
        f"TOKEN_RE = {token_re!r}",
        "# the same without the terminals that need a quote character (for a source without ' or \")",
        f"UNQUOTED_TOKEN_RE = {unquoted_re!r}",
        "# terminal → {text: keyword terminal}: retyped after matching, as lark's lexer does",
        f"KEYWORDS = {dict(sorted((k, dict(sorted(v.items()))) for k, v in keywords.items()))!r}",
        f"IGNORE = frozenset({ignore!r})",
        f"START = {renumber[start]!r}",
        f"END = {renumber[end]!r}",
        "# (symbol it reduces to, Builder method or None to hand up its one child, each child's name or None: dropped)",
        "RULES = (",
        *[f"    {row!r}," for row in rule_rows],
        ")",
        "# state → {symbol: shift to (or go to) state n >= 0, or reduce by RULES[~n] when n < 0}",
        "STATES = (",
        *[f"    {row!r}," for row in rows],
        ")",
        "",
    ]
    return "\n".join(lines)


def generated_digest() -> str | None:
    """The grammar digest recorded in ``_tables.py`` (to check it is up to date)."""
    with open(GENERATED, encoding="utf-8") as f:
        for _ in range(3):
            line = f.readline()
            if line.startswith("# grammar-sha256: "):
                return line.split(":", 1)[1].strip()
    return None


if __name__ == "__main__":  # pragma: no cover - developer tool
    if sys.argv[1:] == ["--regen"]:
        with open(GENERATED, "w", encoding="utf-8") as f:
            f.write(generate())
        print(f"wrote {GENERATED}")
    else:
        print(__doc__)
