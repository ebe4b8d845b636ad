"""Untrusted expressions: no way out to Python, and every resource limit ends in a clear error, quickly."""

from __future__ import annotations

import io
import keyword
import tokenize

import pytest

from engine.expr import EvaluationError, ExprSyntaxError, LimitExceeded, compile, functions, macros, runtime

TEN = "[0, 1, 2, 3, 4, 5, 6, 7, 8, 9]"
BIG = {"s": "x" * 10_000, "l": list(range(1000)), "aaa": "a" * 40 + "!", "p": "^(a+)+$"}


def nested(n: int, macro: str = "map", body: str = "1") -> str:
    for i in range(n):
        body = f"{TEN}.{macro}(v{i}, {body})"
    return body


def nested_filters(n: int) -> str:
    body = "true"
    for i in range(n):
        body = f"size({TEN}.filter(v{i}, {body})) > 0"
    return body


def quickly(text: str, bindings=BIG):
    """Evaluate, returning (result or error, 0). (How quickly: benchmarks/bench_expr_cost.py; unit tests
    assert no times.)"""
    try:
        result = compile(text).evaluate(bindings)
    except EvaluationError as e:
        result = e
    return result, 0


@pytest.mark.parametrize(
    "text, message",
    [
        (nested(6), "evaluation costs too much"),  # would be a million items
        (nested(6, "all", "true"), "evaluation costs too much"),
        (nested(6, "exists", "false"), "evaluation costs too much"),
        (nested_filters(6), "evaluation costs too much"),
        (nested(6, "map", "v0 > 1 ? v0 : 0"), "evaluation costs too much"),
        # strings and lists that double at each level
        ("[s].map(a, [a + a].map(b, [b + b].map(c, [c + c].map(d, [d + d].map(e, [e + e].map(f,"
         " [f + f].map(g, size(g + g))))))))", "too long"),
        ("[l].map(a, [a + a].map(b, [b + b].map(c, [c + c].map(d, [d + d].map(e, [e + e].map(f,"
         " [f + f].map(g, size(g + g))))))))", "too long"),
        # concatenation repeated in a loop, literals built in a loop
        (f"{TEN}.map(a, {TEN}.map(b, {TEN}.map(c, s + s + s + s)))", "evaluation costs too much"),
        (f"{TEN}.map(a, {TEN}.map(b, {TEN}.map(c, {TEN}.map(d, [" + ", ".join(["a"] * 200) + "]))))",
         "evaluation costs too much"),
        (f"{TEN}.map(a, {TEN}.map(b, {TEN}.map(c, {TEN}.map(d, {{" + ", ".join(f"'k{i}': a" for i in range(200))
         + "}))))", "evaluation costs too much"),
    ],
)
def test_values_built_by_macros_and_concatenation_are_limited(text, message):
    result, seconds = quickly(text)
    assert isinstance(result, LimitExceeded), result
    assert message in result.message


def test_limits_are_not_absorbed_by_logic_operators():
    result, _ = quickly(f"true || {nested(6)} == []")
    assert result is True  # never evaluated: || stops at true
    result, _ = quickly(f"{nested(6)} == [] || true")
    assert isinstance(result, LimitExceeded)  # a resource limit stops evaluation, it is not an ordinary error
    result, _ = quickly(f"[1, 2].exists(x, x == 1 || {nested(6)} == [])")
    assert result is True


def test_ordinary_work_fits_the_budget():
    assert compile(nested(4)).evaluate({})[9][9][9] == [1] * 10
    assert compile("l.filter(x, x % 2 == 0).map(x, x * 2).exists(x, x == 1996)").evaluate(BIG) is True
    assert len(compile("s + s").evaluate(BIG)) == 20_000


def test_matches_uses_a_linear_time_engine():
    for text in ("aaa.matches('^(a+)+$')", "aaa.matches(p)", "aaa.matches('^(a|aa)*(a|a)*$')"):
        result, _ = quickly(text)
        assert result is False


def test_regex_features_re2_lacks_are_errors():
    with pytest.raises(ExprSyntaxError, match="invalid regular expression"):
        compile("s.matches('(a)\\\\1')")  # backreference
    with pytest.raises(EvaluationError, match="invalid regular expression"):
        compile("s.matches(p)").evaluate({"s": "a", "p": "(?=a)"})  # lookahead
    with pytest.raises(EvaluationError, match="invalid regular expression"):
        compile("s.matches(p)").evaluate({"s": "a", "p": "a{1000}{1000}"})  # too big for RE2


@pytest.mark.parametrize(
    "text",
    [
        "__import__('os')",
        "x.__class__",
        "x.__class__.__bases__",
        "().__class__",
        "''.__class__.__mro__",
        "getattr(x, 'y')",
        "eval('1')",
        "exec('1')",
        "open('/etc/passwd')",
        "x.format(1)",
        "import os",
        "lambda: 1",
        "[x for x in l]",
        "x if y else z",
        "x; y",
        "`x`",
    ],
)
def test_python_is_out_of_reach(text):
    with pytest.raises(ExprSyntaxError):
        compile(text)


def test_python_names_are_just_variables():
    # Names that mean something in Python or in the generated code are ordinary CEL variables here.
    names = ["B", "e", "_m", "_t1", "_v1", "_f1", "_fix", "_absorb", "evaluate", "lambda", "def", "class", "True",
             "None", "eval", "exec", "open", "os", "sys", "bool", "dict", "Exception", "self", "print"]
    bindings = {n: i for i, n in enumerate(names)}
    program = compile(" + ".join(names))
    assert program.evaluate(bindings) == sum(range(len(names)))
    assert program.names == frozenset(names)
    assert compile("x['__class__']").evaluate({"x": {"__class__": 1}}) == 1  # a map key, not an attribute


# Names generated code may use: Python keywords, its own locals, the runtime's helpers, a few types.
_GENERATED = {"B", "e", "evaluate", "EvaluationError", "FORMAT", "NAMES", "_m", "m", "_SOURCE", "engine", "expr", "runtime",
              "macros", "functions", "bool", "int", "dict", "list", "str", "Exception"}
_ATTRIBUTES = {"__class__", "startswith", "endswith", "search", "expr", "runtime", "macros", "functions"}


def assert_generated_names_are_safe(python_source: str) -> None:
    helpers = {n for module in (runtime, macros, functions) for n in vars(module) if n.startswith("_")}
    previous = None
    for tok in tokenize.generate_tokens(io.StringIO(python_source).readline):
        if tok.type == tokenize.NAME:
            if previous is not None and previous.string == ".":
                assert tok.string in _ATTRIBUTES, tok
            else:
                assert (keyword.iskeyword(tok.string) or tok.string in _GENERATED or tok.string in helpers
                        or tok.string[:2] in ("_t", "_v", "_P", "_f") and tok.string[2:].isdigit()), tok
        if tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.COMMENT):
            previous = tok


@pytest.mark.parametrize(
    "text",
    [
        "stats.exceedance_rate > 0.2 && stats.samples >= 10",
        "min(profile.base * tier.multiplier, profile.max)",
        "os.system('rm -rf /') + __builtins__['x']" if False else "os.system + builtins['__import__']",
        "x['\\'); import os; (\\''] + \"\\\\\" + '''\n'''",
        "l.map(lambda, lambda.startsWith('a') ? lambda.matches('^a') : has(lambda.b))",
        "{'__class__': 1, exec: 2}[eval]",
        "[1, 2.5, 'x', true, null].exists(x, x in {'a': 1}) || -x == 1 || !y",
    ],
)
def test_generated_code_uses_only_its_own_names(text):
    assert_generated_names_are_safe(compile(text).python_source)


def test_source_and_depth_limits_answer_at_once():
    for text in ("(" * 20_000 + "1" + ")" * 20_000, "x" * 5000, "[" * 3000 + "]" * 3000):
        with pytest.raises(ExprSyntaxError):
            compile(text)


def test_recursive_values_are_an_error_not_a_crash():
    loop: list = [1]
    loop.append(loop)
    with pytest.raises(EvaluationError, match="nested too deeply"):
        compile("x == x").evaluate({"x": loop})


@pytest.mark.parametrize("text", ["0x" + "f" * 4000, "9" * 4090, "1e" + "9" * 4000, "-0x" + "F" * 4000,
                                  "1." + "0" * 4000 + "1e999"])
def test_huge_number_literals_are_syntax_errors(text):
    """issue 8 §4: a 4,000-digit hex literal (and friends) is a clear error, never a ValueError."""
    with pytest.raises(ExprSyntaxError, match="out of range|too long"):
        compile(text)


def test_programs_generated_by_another_version_are_refused():
    """What a reader of generated code relies on to compile again (the policy's programs always compile from
    source: engine/policy/programs.py)."""
    from engine.expr import ExprError, Program

    stale = compile("1 + x").python_source.replace(f"FORMAT = {runtime.FORMAT}", "FORMAT = 1")
    with pytest.raises(ExprError):
        Program.from_python("1 + x", stale)
