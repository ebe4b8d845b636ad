"""Generated expressions and bindings: nothing but ExprSyntaxError or EvaluationError ever escapes, a program
gives the same outcome each time, and generated code names only what it should."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.expr import EvaluationError, ExprSyntaxError, compile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_expr_safety import assert_generated_names_are_safe  # noqa: E402

# Moderate by default to keep the suite fast; hunt for bugs with e.g. EXPR_HYPOTHESIS_EXAMPLES=5000.
EXAMPLES = int(os.environ.get("EXPR_HYPOTHESIS_EXAMPLES", "100"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = ["x", "y", "m", "l", "s", "n", "v", "f"]


def cel_string(text: str) -> str:
    out = []
    for c in text:
        if c in "\\\"":
            out.append("\\" + c)
        elif c.isprintable() and c not in "\n\r":
            out.append(c)
        else:
            out.append(f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


atoms = st.one_of(
    st.sampled_from(NAMES),
    st.integers(-(2**63) + 1, 2**63 - 1).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: repr(abs(v))),  # 1.5, 1e+16, 5e-324
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=6).map(cel_string),
    st.sampled_from(["true", "false", "null", "[]", "{}", "0", "1", "-1", "0.0", "''"]),
)

BINARY = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in", "&&", "||"]
FUNCTIONS = ["size", "int", "double", "string", "bool", "dyn", "abs", "ceil", "floor", "round", "min", "max"]
METHODS = ["contains", "startsWith", "endsWith", "matches"]
MACROS = ["all", "exists", "exists_one", "map", "filter"]


def compound(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(BINARY), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["!", "-"]), children).map(lambda t: f"{t[0]}{t[1]}"),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        st.tuples(children, st.sampled_from(["f", "a", "size"])).map(lambda t: f"{t[0]}.{t[1]}"),
        st.tuples(children, children).map(lambda t: f"{t[0]}[{t[1]}]"),
        st.lists(children, max_size=3).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(st.tuples(children, children), max_size=3).map(
            lambda kv: "{" + ", ".join(f"{k}: {v}" for k, v in kv) + "}"),
        st.tuples(st.sampled_from(FUNCTIONS), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["min", "max", "matches"]), children, children).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(children, st.sampled_from(METHODS), children).map(lambda t: f"{t[0]}.{t[1]}({t[2]})"),
        st.tuples(children, st.sampled_from(MACROS), children).map(lambda t: f"{t[0]}.{t[1]}(v, {t[2]})"),
        st.tuples(children, children, children).map(lambda t: f"{t[0]}.map(v, {t[1]}, {t[2]})"),
        children.map(lambda c: f"has({c}.f)"),
        children.map(lambda c: f"({c})"),
    )


expressions = st.recursive(atoms, compound, max_leaves=10)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0, 1, -1, 2, 10, 2**63 - 1, -(2**63)]),
    st.floats(),
    st.text(max_size=5),
)
values = st.recursive(
    scalars,
    lambda c: st.one_of(
        st.lists(c, max_size=4),
        st.lists(c, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from(["f", "a", "b"]), c, max_size=3),
        st.dictionaries(st.integers(-2, 3), c, max_size=3),
    ),
    max_leaves=8,
)
bindings = st.fixed_dictionaries({}, optional={name: values for name in NAMES})


def same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return len(a) == len(b) and all(k in b and same(v, b[k]) for k, v in a.items())
    return a == b


def outcome(fn, values):
    try:
        return ("value", fn(values))
    except EvaluationError as e:
        return ("error", type(e).__name__)


@SETTINGS
@given(expressions, bindings)
def test_generated_expressions_raise_only_the_two_errors(text, values):
    try:
        program = compile(text)
    except ExprSyntaxError:
        return
    first = outcome(program.evaluate, values)
    again = outcome(program.evaluate, values)  # a program keeps no state between evaluations
    assert first[0] == again[0] and (first[0] == "error" or same(first[1], again[1])), (first, again)
    assert_generated_names_are_safe(program.python_source)


TOKENS = ["x", "1", "2.5", "'s'", "(", ")", "[", "]", "{", "}", ".", ",", ":", "?", "+", "-", "*", "/", "%", "!",
          "&&", "||", "==", "<", "in", "true", "null", "has", "size", "map", "all", "v", "`a b`", "\\", "\"", "#",
          "u", "b'", " ", "\n", "//", "__x", "0x", "e5", "r'", "'''"]


@SETTINGS
@given(st.lists(st.sampled_from(TOKENS), max_size=25).map("".join), bindings)
def test_token_soup_raises_only_the_two_errors(text, values):
    try:
        program = compile(text)
    except ExprSyntaxError as e:
        assert e.line >= 1 and e.column >= 1 and isinstance(e.message, str)
        return
    try:
        program.evaluate(values)
    except EvaluationError:
        pass


@settings(max_examples=2 * EXAMPLES, deadline=None)
@given(st.text(max_size=40))
def test_arbitrary_text_raises_only_syntax_errors(text):
    try:
        compile(text).evaluate({})
    except (ExprSyntaxError, EvaluationError):
        pass
