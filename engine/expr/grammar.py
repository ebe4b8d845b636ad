"""The grammar, ``cel.lark``, and the parser generated from it (development time; needs lark).

lark's standalone generator (``lark.tools.standalone``, its public tool) turns the grammar into ``_parser.py``:
a self-contained LALR(1) parser with lark's runtime, which :mod:`engine.expr.syntax` runs through lark's
public API (``Lark_StandAlone(transformer=...)``). So a compile does not import ``lark`` (about 45 ms) or
compute the tables. After editing the grammar::

    python -m engine.expr.grammar --regen

``tests/test_expr_parser.py`` fails while ``_parser.py`` is out of date, and checks that it parses exactly as
``lark.Lark(cel.lark, parser="lalr")`` does.
"""

from __future__ import annotations

import hashlib
import io
import os
import sys

GRAMMAR = os.path.join(os.path.dirname(__file__), "cel.lark")
GENERATED = os.path.join(os.path.dirname(__file__), "_parser.py")
#: The options the parser is generated with (and a test builds lark's own parser with).
OPTIONS = {"parser": "lalr", "lexer": "basic", "maybe_placeholders": True}


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as f:
        return f.read()


def current_digest() -> str:
    return hashlib.sha256(_read(GRAMMAR).encode("utf-8")).hexdigest()


def generate() -> str:
    """The text of ``_parser.py`` for the current ``cel.lark``."""
    from lark import Lark
    from lark.tools.standalone import gen_standalone

    out = io.StringIO()
    gen_standalone(Lark(_read(GRAMMAR), **OPTIONS), out=out)
    header = (
        "# Generated from engine/expr/cel.lark by `python -m engine.expr.grammar --regen` (lark's standalone\n"
        f"# generator); do not edit.\n# grammar-sha256: {current_digest()}\n"
    )
    return header + out.getvalue()


def generated_digest() -> str | None:
    """The grammar digest recorded in ``_parser.py`` (to check it is up to date)."""
    with open(GENERATED, encoding="utf-8") as f:
        for _ in range(4):
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
