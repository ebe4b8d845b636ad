"""engine.expr.direct: arithmetic read without compiling gives the compiled program's values and errors."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.expr import compile as compile_expression
from engine.expr import direct
from engine.expr.direct import read
from engine.expr.errors import EvaluationError, ExprSyntaxError
from engine.model import DEFAULT_RELEVANCE, RELEVANCE_FEATURES

from conftest import DATA, ROOT

SOURCES = json.loads((DATA / "expr-direct" / "sources.json").read_text(encoding="utf-8"))

# Values a name may have: ints and doubles (zero, signs, the ends of int64, beyond 2**53, nan, infinities), bools,
# and values of the wrong type.
VALUES = [0, 1, -1, 7, 10, 2**53 + 1, -(2**53) - 1, 2**63 - 1, -(2**63), 0.0, -0.0, 0.5, 2.5, 30.0, -3.75, 1e300,
          math.inf, -math.inf, math.nan, True, False, "x", "", None, [1], [], {"a": 1}]


def outcome(program, bindings) -> tuple:
    """What evaluating gives: the value (with its type; nan by its repr), or the error's type, message and place."""
    try:
        value = program.evaluate(bindings)
    except EvaluationError as e:
        return ("error", type(e).__name__, e.message, e.offset, e.line, e.column, str(e))
    return ("value", type(value).__name__, repr(value))


def bindings_for(names, rng_values) -> list[dict]:
    """Bindings of ``names``: each value of VALUES for each name in turn (others a plain number), every name
    missing in turn, and no bindings at all."""
    names = sorted(names)
    out: list[dict] = [{}]
    base = {n: 1.5 for n in names}
    out.append(dict(base))
    for n in names:
        for value in rng_values:
            out.append({**base, n: value})
        out.append({k: v for k, v in base.items() if k != n})
    return out


def assert_same(source: str, names=None, values=VALUES) -> None:
    program = read(source, names)
    assert program is not None, source
    compiled = compile_expression(source, names=names)
    assert program.names == compiled.names
    assert program.source == source
    for bindings in bindings_for(compiled.names, values):
        assert outcome(program, bindings) == outcome(compiled, bindings), (source, bindings)


def hostile_source(case: dict) -> str:
    return case["source"] if "source" in case else "".join(text * times for text, times in case["parts"])


# --- the corpus ---------------------------------------------------------------------------------------------


def test_the_default_relevance_is_read_and_gives_the_compiled_scores() -> None:
    assert DEFAULT_RELEVANCE in SOURCES["read"]
    assert_same(DEFAULT_RELEVANCE, RELEVANCE_FEATURES)
    program = read(DEFAULT_RELEVANCE, RELEVANCE_FEATURES)
    features = {"recency_days": 3.0, "use_count": 4, "lexical": 0.5, "agent_specific": True}
    assert program.evaluate(features) == pytest.approx(0.3 - 0.03 + 0.12 + 0.2 + 0.3)


def test_the_relevance_with_the_packers_features() -> None:
    """Every combination of the feature values the packer gives (engine.pack.packer): same score."""
    program = read(DEFAULT_RELEVANCE, RELEVANCE_FEATURES)
    compiled = compile_expression(DEFAULT_RELEVANCE, names=RELEVANCE_FEATURES)
    for recency in (0.0, 0.001, 3.5, 29.999, 30.0, 400.0):
        for uses in (0, 3, 9, 10, 250):
            for lexical in (0.0, 0.25, 1.0):
                for specific in (True, False):
                    features = {"recency_days": recency, "use_count": uses, "lexical": lexical,
                                "agent_specific": specific, "scope": "global", "tokens": 120, "pinned": False,
                                "confidence": None}
                    assert outcome(program, features) == outcome(compiled, features)


@pytest.mark.parametrize("source", SOURCES["read"])
def test_sources_in_the_subset_evaluate_as_compiled(source: str) -> None:
    assert_same(source)


@pytest.mark.parametrize("source", SOURCES["compiled"])
def test_sources_outside_the_subset_are_left_to_the_compiler(source: str) -> None:
    assert read(source) is None


def test_a_name_not_allowed_is_left_to_the_compiler() -> None:
    """The compiler reports it (UnknownNameError, with its position); the reader does not try."""
    assert read("0.5 * lexical + popularity", RELEVANCE_FEATURES) is None
    with pytest.raises(ExprSyntaxError, match="unknown name 'popularity'"):
        compile_expression("0.5 * lexical + popularity", names=RELEVANCE_FEATURES)
    assert read("0.5 * lexical + popularity") is not None  # any name, without a list


@pytest.mark.parametrize("case", SOURCES["hostile"], ids=[c["why"] for c in SOURCES["hostile"]])
def test_hostile_sources_are_refused_or_read_correctly(case: dict) -> None:
    source = hostile_source(case)
    program = read(source)
    assert (program is not None) == case["read"], case["why"]
    if program is not None:
        assert_same(source, values=[0, 2.5, True, "x", None])


def test_a_long_source_is_refused_before_it_is_scanned(monkeypatch) -> None:
    def scan(source):
        raise AssertionError("scanned")

    monkeypatch.setattr(direct, "_tokens", scan)
    assert read("x + " * 25_000 + "1") is None
    assert read("(" * 100_000) is None


def test_a_caller_deep_in_the_stack_gets_none_not_recursion_error() -> None:
    """Nesting is bounded before the stack is; a caller already near Python's limit still gets an answer."""
    source = "(" * 31 + "x" + ")" * 31

    def nested(depth: int):
        return nested(depth - 1) if depth else read(source)

    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 100)  # room for `nested`, not for reading 32 levels (~10 frames each)
    try:
        found = nested(60)
    finally:
        sys.setrecursionlimit(limit)
    assert found is None
    assert read(source) is not None


def test_a_read_program_pickles_as_its_source() -> None:
    import pickle

    program = read(DEFAULT_RELEVANCE, RELEVANCE_FEATURES)
    again = pickle.loads(pickle.dumps(program))
    features = {"recency_days": 3.0, "use_count": 4, "lexical": 0.5, "agent_specific": True}
    assert isinstance(again, direct.DirectProgram) and again.evaluate(features) == program.evaluate(features)
    assert again.names == program.names


def test_names_as_one_string() -> None:
    assert read("lexical + 1", "lexical").names == {"lexical"}
    assert read("lex + 1", "lexical") is None  # not a substring test


def test_not_a_string() -> None:
    assert read(b"1 + 1") is None  # type: ignore[arg-type]
    assert read(None) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("source, bindings, where", [
    ("lexical + tokens / 1000", {"tokens": 5}, 0),
    ("lexical + tokens / 1000", {}, 0),
    ("a * (b - 1) + c", {"b": 2, "c": 1}, 0),
    ("a + -b", {"a": 1}, 5),
])
def test_the_compiler_reports_the_first_missing_name(source: str, bindings: dict, where: int) -> None:
    """A regression the comparison found: a name an outer operation reads (``lexical``) was read inside the
    inner operation's ``try`` (``tokens / 1000``), so a missing one gave "internal error: UnboundLocalError" or
    named the other variable."""
    for program in (compile_expression(source), read(source)):
        with pytest.raises(EvaluationError, match="no value for variable") as caught:
            program.evaluate(bindings)
        assert caught.value.offset == where, program


BIG_LIST = [0] * 100_000
BIG_TEXT = "x" * 600_000


@pytest.mark.parametrize("source, bindings", [
    ("a == b", {"a": BIG_LIST, "b": list(BIG_LIST)}),  # over the cost budget: LimitExceeded
    ("a != b", {"a": BIG_LIST, "b": list(BIG_LIST)}),
    ("(a == b) || true_name", {"a": BIG_LIST, "b": list(BIG_LIST), "true_name": True}),  # never absorbed
    ("a + b", {"a": BIG_TEXT, "b": BIG_TEXT}),  # a string over the length limit
    ("a + b + c", {"a": "x" * 400_000, "b": "y" * 400_000, "c": "z" * 400_000}),
    ("a + b", {"a": "x", "b": "y"}),
    ("a + b", {"a": [1], "b": [2]}),
    ("a == b", {"a": {"k": [1]}, "b": {"k": [1]}}),
    ("a == b && c", {"a": "s", "b": "s", "c": True}),
    ("a < b", {"a": "a", "b": "b"}),
    ("a < b", {"a": [1], "b": [2]}),
])
def test_limits_and_other_kinds_of_values_as_compiled(source: str, bindings: dict) -> None:
    """The cost budget and the size limits hold as in the compiled program (the reader passes the budget where
    it does), and values of other kinds take the same reference operations."""
    assert outcome(read(source), bindings) == outcome(compile_expression(source), bindings)


# --- generated expressions ----------------------------------------------------------------------------------

NAMES = ("a", "b", "c")
NUMBERS = st.one_of(
    st.integers(min_value=0, max_value=2**63 + 5).map(str),
    st.sampled_from(["0", "1", "2", "10", "0.0", "0.5", "2.5", ".5", "1e3", "1E-3", "2.5e+2", "9223372036854775807",
                     "9223372036854775808", "9007199254740993", "1e308", "1e309"]),
)
SPACE = st.sampled_from(["", " ", "  ", "\n", "\t"])


@st.composite
def expressions(draw, depth: int = 0) -> str:
    """A source of the subset (some of them beyond its limits: the reader then refuses them)."""
    if depth > 5 or draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(st.sampled_from(NAMES), NUMBERS))
    shape = draw(st.sampled_from(["binary", "binary", "binary", "unary", "paren", "cond", "logic"]))
    sp = draw(SPACE)
    if shape == "binary":
        op = draw(st.sampled_from(["+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!="]))
        return f"{draw(expressions(depth + 1))}{sp}{op}{draw(SPACE)}{draw(expressions(depth + 1))}"
    if shape == "unary":
        op = draw(st.sampled_from(["-", "!", "--", "!!", "- "]))
        return f"{op}{draw(_member(depth + 1))}"
    if shape == "paren":
        return f"({sp}{draw(expressions(depth + 1))}{draw(SPACE)})"
    if shape == "cond":
        return (f"{draw(expressions(depth + 1))} ?{sp}{draw(expressions(depth + 1))}{draw(SPACE)}:"
                f"{draw(expressions(depth + 1))}")
    op = draw(st.sampled_from(["&&", "||"]))
    parts = draw(st.lists(expressions(depth + 1), min_size=2, max_size=4))
    return f"{sp}{op}{sp}".join(parts)


@st.composite
def _member(draw, depth: int) -> str:
    """What a prefix operator applies to: a name, a number or a parenthesised expression."""
    if draw(st.booleans()):
        return draw(st.one_of(st.sampled_from(NAMES), NUMBERS))
    return f"({draw(expressions(depth))})"


SAMPLE = [0, -1, 3, 2**63 - 1, -(2**63), 2**53 + 1, 0.0, -0.0, 2.5, math.nan, math.inf, True, False, "s", None, [1]]


def _assert_same_or_refused(source: str, values) -> None:
    """The safety property: what the reader takes, the compiler compiles to a program that evaluates alike."""
    program = read(source)
    if program is None:
        return
    compiled = compile_expression(source)
    assert program.names == compiled.names, source
    for bindings in values:
        assert outcome(program, bindings) == outcome(compiled, bindings), (source, bindings)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(source=expressions(), values=st.lists(st.fixed_dictionaries({}, optional={
    n: st.sampled_from(SAMPLE) for n in NAMES}), min_size=1, max_size=6))
def test_generated_expressions_evaluate_as_compiled(source: str, values: list[dict]) -> None:
    program = read(source)
    try:
        compiled = compile_expression(source)
    except ExprSyntaxError:
        assert program is None, source  # out of range literals, nesting past the language's limit
        return
    if program is None:  # only past the reader's own limits
        assert len(source) > direct.MAX_SOURCE or _refused_for_a_limit(source), source
        return
    _assert_same_or_refused(source, values)


def _refused_for_a_limit(source: str) -> bool:
    """The reader refuses ``source`` only for its nesting and length limits: without them it reads it."""
    limits = (direct.MAX_NESTING, direct.MAX_SOURCE)
    try:
        direct.MAX_NESTING, direct.MAX_SOURCE = 60, 10_000
        return read(source) is not None
    finally:
        direct.MAX_NESTING, direct.MAX_SOURCE = limits


TOKENS = st.sampled_from(["a", "b", "1", "2.5", ".5", "1e3", "0", "(", ")", "(", ")", "+", "-", "*", "/", "%", "<",
                          "<=", ">", ">=", "==", "!=", "!", "&&", "||", "?", ":", " ", "-", "!", "=", "&", "|", ".",
                          "0x", "u", "true", "in", "//", "'", "9223372036854775808", "e", "E"])


@settings(max_examples=1500, deadline=None)
@given(parts=st.lists(TOKENS, min_size=1, max_size=14))
def test_token_soup_is_refused_or_read_as_compiled(parts: list[str]) -> None:
    """Random sequences of the subset's tokens and their neighbours: whenever the reader takes one, the compiler
    compiles it and the two agree — the reader never accepts what the grammar does not, nor parses it otherwise."""
    source = "".join(parts)
    _assert_same_or_refused(source, [{}, {"a": 2, "b": 0.5}, {"a": True, "b": False}, {"a": "s", "b": 3}])


# --- the policy's table -----------------------------------------------------------------------------------


def test_the_program_table_reads_the_relevance_and_compiles_the_rest() -> None:
    from engine.policy.programs import ProgramTable

    table = ProgramTable()
    relevance = table.get(DEFAULT_RELEVANCE, RELEVANCE_FEATURES)
    assert isinstance(relevance, direct.DirectProgram)
    assert table.get(DEFAULT_RELEVANCE, RELEVANCE_FEATURES) is relevance
    formula = table.get("min(round(profile.base * tier.multiplier), profile.max)", {"profile", "tier", "agent"})
    assert not isinstance(formula, direct.DirectProgram)
    assert table.compiled() == ["min(round(profile.base * tier.multiplier), profile.max)"]
    with pytest.raises(ExprSyntaxError, match="unknown name 'popularity'"):
        table.get("0.5 * lexical + popularity", RELEVANCE_FEATURES)


def test_a_fresh_process_reads_the_relevance_without_the_compiler(tmp_path) -> None:
    """Packing with the default policy in a new process (the policy from its cache, as in every hook after the
    first): the relevance scores items and nothing of the parser or the compiler is imported."""
    probe = (
        "import sys, engine\n"
        "policy = engine.load_policy()\n"
        f"pack = policy.pack('dbt-expert', task='Why is the orders model slow?', root={str(ROOT / 'examples' / 'memory')!r})\n"
        "assert pack.items and all(i.score > 0 for i in pack.items), pack.items\n"
        "print(sorted(m for m in ('engine.expr.compiler', 'engine.expr.syntax', 'engine.expr._tables', "
        "'engine.expr.direct') if m in sys.modules), policy.compiled_expressions())\n"
    )
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("CTXBUDGET_POLICY", None)
    for _ in range(2):  # the first fills the cache (and compiles the budget formula to work out its table)
        done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60,
                              cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "['engine.expr.direct'] []"
