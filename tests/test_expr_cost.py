"""The cost budget: hostile expressions stop with LimitExceeded *before* the work, and `check` bounds cost.

(How fast they stop is measured in benchmarks/bench_expr_cost.py; unit tests assert no times.)
"""

from __future__ import annotations

import pytest

from engine.expr import ExprCostError, LimitExceeded, check, compile, functions, limits
from engine.expr.types import BOOL, INT, List, Map, String

L45 = list(range(45))
MEGABYTE = "ab " * 350_000

HOSTILE = {
    # issue 8 §3: three nested all() that build a new regex each iteration (43 s for one detect before)
    "regex-per-iteration": ("l.all(a, l.all(b, l.all(c, !text.matches(string(a) + string(b) + string(c) + 'z'))))",
                            {"l": L45, "text": "hello world " * 100}),
    # ~90k contains on a 1 MB string (31 s before)
    "contains-on-1MB": ("l.all(a, l.all(b, l.all(c, !text.contains('zz' + string(a)))))", {"l": L45, "text": MEGABYTE}),
    "literal-contains-on-1MB": ("l.all(a, l.all(b, l.all(c, !text.contains('zz'))))", {"l": L45, "text": MEGABYTE}),
    "startsWith-on-1MB": ("l.all(a, l.all(b, !text.startsWith(text + 'x')))", {"l": L45, "text": MEGABYTE}),
    "errors-absorbed": ("l.all(a, l.all(b, l.all(c, x.y || x.z || x.w)))", {"l": L45, "x": 1}),
    "pathological-regex": ("text.matches('(\\\\w+\\\\s*){1000}x')", {"text": MEGABYTE}),
    "pathological-dynamic-regex": ("text.matches(p)", {"text": MEGABYTE, "p": "(\\w+\\s*){1000}x"}),
    "in-big-list": ("l.all(a, l.all(b, -1 in big))", {"l": L45, "big": list(range(100_000))}),
    "equal-big-lists": ("l.all(a, big == copy)", {"l": L45, "big": list(range(100_000)), "copy": list(range(100_000))}),
    "max-of-big-list": ("l.all(a, l.all(b, max(big) > 0))", {"l": L45, "big": list(range(100_000))}),
    "concat-in-loop": ("l.all(a, size(text + text) > 0)", {"l": L45, "text": MEGABYTE}),
}


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_expressions_exceed_the_budget(name):
    source, bindings = HOSTILE[name]
    with pytest.raises(LimitExceeded, match="costs too much|string too long"):
        compile(source).evaluate(bindings)


def test_the_budget_stops_before_the_work(monkeypatch):
    """A charge that would overspend raises before the operation runs: the pattern is never compiled, the
    text never searched."""
    compiled = []
    monkeypatch.setattr(functions, "_regex", lambda pattern: compiled.append(pattern))
    m = [functions.regex_cost("a+b") - 1, None]
    with pytest.raises(LimitExceeded):
        functions._matches("aab", "a+b", m)
    assert compiled == [] and m[0] < 0

    class Pattern:
        programsize = 10

        def search(self, text):  # pragma: no cover - must not be reached
            compiled.append(text)

    m = [functions.search_cost(3, 10) - 1, None]
    with pytest.raises(LimitExceeded):
        functions._matches_re("aab", Pattern(), m)
    assert compiled == []


def test_dynamic_patterns_compile_once_per_evaluation(monkeypatch):
    compiled = []
    real = functions._regex

    def counting(pattern):
        compiled.append(pattern)
        return real(pattern)

    monkeypatch.setattr(functions, "_regex", counting)
    program = compile("l.all(x, s.matches(p))")
    assert program.evaluate({"l": list(range(50)), "s": "abc", "p": "b+"}) is True
    assert compiled == ["b+"]  # 50 uses, one compilation (and one charge)
    compiled.clear()
    assert program.evaluate({"l": list(range(50)), "s": "abc", "p": "b+"}) is True
    assert compiled == ["b+"]  # the cache lives as long as one evaluation


def test_literal_patterns_compile_with_the_expression(monkeypatch):
    program = compile("l.all(x, s.matches('b+') && !s.matches('z'))")
    monkeypatch.setattr(functions, "_regex", lambda pattern: pytest.fail(f"compiled {pattern!r} while evaluating"))
    assert program.evaluate({"l": list(range(50)), "s": "abc"}) is True


def test_ordinary_work_fits():
    assert compile("l.filter(x, x % 2 == 0).map(x, x * 2).exists(x, x == 1996)").evaluate(
        {"l": list(range(1000))}) is True
    assert compile("text.contains('needle') && text.startsWith('ab')").evaluate({"text": MEGABYTE + "needle"}) is True
    assert compile("l.all(a, l.all(b, s.matches(string(a % 3) + 'b')))").evaluate({"l": L45, "s": "0b 1b 2b"}) is True


def test_a_limit_is_not_absorbed():
    # `||` absorbs the error of x.y, not the LimitExceeded of the second operand
    with pytest.raises(LimitExceeded):
        compile("l.exists(a, x.y) || l.all(a, l.all(b, l.all(c, x.z || x.w)))").evaluate({"l": L45, "x": 1})


# --- the static bound ---------------------------------------------------------------------------------------

VARIABLES = {"text": String(1 << 20), "hits": Map(BOOL, 200), "l": List(INT, 45), "n": INT}


@pytest.mark.parametrize("source", [source for source, _ in HOSTILE.values()
                                    if "big" not in source and "x.y" not in source and "p)" not in source])
def test_check_rejects_what_would_overspend(source):
    variables = {**VARIABLES, "x": Map(INT, 8)}
    with pytest.raises(ExprCostError, match="could cost"):
        check(source, variables)


@pytest.mark.parametrize("source", [
    "hits.exists(h, h.startsWith('dbt'))",
    "size(hits) > 3 && 'diagnosis' in hits",
    "text.contains('migration') || text.endsWith('?')",
    "size(l.map(x, x * 2).filter(y, y > n)) > 0",
])
def test_check_accepts_ordinary_conditions(source):
    checked = check(source, VARIABLES, expect=("bool",))
    assert 0 < checked.cost <= limits.MAX_COST


def test_the_static_bound_covers_what_evaluation_charges():
    """For inputs at their declared bounds, the run-time charge stays within the static bound."""
    source = "l.all(a, text.contains(string(a)) || text.startsWith('zz'))"
    bound = check(source, {"l": List(INT, 45), "text": String(10_000)}).cost
    program = compile(source)
    text = "x" * 10_000
    # evaluate with a budget we can read
    from engine.expr.runtime import _new_budget

    spent = []

    def budget():
        m = _new_budget()
        spent.append(m)
        return m

    namespace = program.evaluate.__globals__
    original = namespace["_new_budget"]
    namespace["_new_budget"] = budget
    try:
        program.evaluate({"l": list(range(45)), "text": text})
    finally:
        namespace["_new_budget"] = original
    assert spent and all(limits.MAX_COST - m[0] <= bound for m in spent), (bound, [limits.MAX_COST - m[0] for m in spent])


def test_a_detection_condition_that_overspends_does_not_hold():
    """A hostile `when:` that reached a detector without `validate` (the Python API) ends, and does not fire."""
    from engine.detect import Detector

    hostile = "hits.all(a, hits.all(b, hits.all(c, !text.matches(a + b + c + 'z'))))"
    signals = [{"id": f"s{i}", "words": [f"word{i}"], "weights": {"simple": 1}} for i in range(45)]
    signals.append({"id": "hostile", "when": hostile, "boost": 1})
    detector = Detector.from_data({"signals": signals}, ["simple", "complex"], "simple")
    text = " ".join(f"word{i}" for i in range(45))
    assert "hostile" not in {hit.signal for hit in detector.detect(text).hits}
    with pytest.raises(LimitExceeded):
        compile(hostile).evaluate({"hits": {f"s{i}": True for i in range(45)}, "text": text})
