"""The grammar, ``cel.lark``, and the parse tables generated from it (development time; needs lark).

lark reads the grammar and computes its LALR(1) parse table; :func:`generate` writes it, with one regular
expression for the terminals, to ``_tables.py``, which :mod:`engine.expr.syntax` runs. After editing the
grammar::

    python -m engine.expr.grammar --regen

``tests/test_expr_parser.py`` fails while the tables are out of date, and checks that the tables parse exactly
as lark's own parser does.
"""

from __future__ import annotations

import os
import re
import sys

GRAMMAR = os.path.join(os.path.dirname(__file__), "cel.lark")
GENERATED = os.path.join(os.path.dirname(__file__), "_tables.py")


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def generate() -> str:
    """The text of ``_tables.py`` for the current ``cel.lark``: lark's LALR(1) tables and terminals."""
    import hashlib

    from lark import Lark

    grammar = _read(GRAMMAR)
    lark_inst = Lark(grammar, parser="lalr", lexer="basic", maybe_placeholders=True)
    table = lark_inst.parser.parser.parser.parse_table

    # Rules, numbered in a stable order; reduce actions refer to them by number.
    rules = list(lark_inst.rules)
    rules.sort(key=lambda r: (str(r.origin.name), [str(s.name) for s in r.expansion], str(r.alias or "")))
    number = {id(r): i for i, r in enumerate(rules)}
    rule_rows = []
    for r in rules:
        origin = str(r.origin.name)
        callback = str(r.alias) if r.alias else (None if origin.startswith("_") else origin)
        filtered = tuple(i for i, s in enumerate(r.expansion) if s.is_term and s.filter_out)
        placeholders: dict[int, int] = {}
        if r.options.empty_indices:
            position = 0
            for flag in r.options.empty_indices:
                if flag:
                    placeholders[position] = placeholders.get(position, 0) + 1
                else:
                    position += 1
        expand1 = bool(r.options.expand1 and not r.alias)
        rule_rows.append((origin, callback, frozenset(filtered), expand1, placeholders, len(r.expansion)))

    # States numbered in the order a breadth-first walk from the start state meets them (lark's own
    # numbering follows set iteration order, which changes from run to run).
    renumber: dict[int, int] = {}
    queue = [table.start_states["start"]]
    while queue:
        old = queue.pop(0)
        if old in renumber:
            continue
        renumber[old] = len(renumber)
        for sym, (action, arg) in sorted(table.states[old].items(), key=lambda item: str(item[0])):
            if action.name == "Shift" and arg not in renumber:
                queue.append(arg)
    assert len(renumber) == len(table.states)
    states = []
    for old in sorted(renumber, key=renumber.get):
        row = {}
        for sym, (action, arg) in sorted(table.states[old].items(), key=lambda item: str(item[0])):
            row[str(sym)] = renumber[arg] if action.name == "Shift" else ~number[id(arg)]
        states.append(row)

    # One regular expression for the lexer, alternatives ordered as lark's basic lexer orders terminals.
    # Keywords (strings the IDENT pattern also matches) are recognised after matching IDENT.
    ident = re.compile(next(t.pattern.to_regexp() for t in lark_inst.terminals if t.name == "IDENT"))
    keywords = {}
    terminals = []
    for t in lark_inst.terminals:
        if t.pattern.type == "str" and ident.fullmatch(t.pattern.value):
            keywords[t.pattern.value] = str(t.name)
        else:
            terminals.append(t)
    terminals.sort(key=lambda t: (-t.priority, -t.pattern.max_width, -len(t.pattern.value), t.name))
    token_re = "|".join(f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in terminals)

    lines = [
        "# Generated from engine/expr/cel.lark by `python -m engine.expr.grammar --regen`; do not edit.",
        f"# grammar-sha256: {hashlib.sha256(grammar.encode('utf-8')).hexdigest()}",
        "# lark computed these LALR(1) tables; engine/expr/syntax.py runs them.",
        "# fmt: off",
        f"TOKEN_RE = {token_re!r}",
        f"KEYWORDS = {dict(sorted(keywords.items()))!r}",
        f"IGNORE = frozenset({sorted(lark_inst.ignore_tokens)!r})",
        f"START = {renumber[table.start_states['start']]!r}",
        f"END = {renumber[table.end_states['start']]!r}",
        "# (origin, callback, filtered child positions, expand a single child, placeholders before position)",
        "RULES = (",
        *[f"    {(o, c, tuple(sorted(f)), e, p)!r}," for o, c, f, e, p, _n in rule_rows],
        ")",
        f"LENGTHS = {tuple(n for *_rest, n in rule_rows)!r}",
        "# state -> {symbol: shift to state (>= 0) or reduce by rule ~n (< 0)}",
        "STATES = (",
        *[f"    {row!r}," for row in states],
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


def current_digest() -> str:
    import hashlib

    return hashlib.sha256(_read(GRAMMAR).encode("utf-8")).hexdigest()


if __name__ == "__main__":  # pragma: no cover - developer tool
    if sys.argv[1:] == ["--regen"]:
        with open(GENERATED, "w", encoding="utf-8") as f:
            f.write(generate())
        print(f"wrote {GENERATED}")
    else:
        print(__doc__)
