"""Derived-signal conditions through their one seam (engine.detect.conditions): values, errors, safety."""

from __future__ import annotations

import pytest

from engine.detect.conditions import ConditionError, compile_condition, compile_sequence

BINDINGS = {"hits": {"diagnosis": True}, "count": {"system": 3, "team": 0}, "words": 12, "chars": 80,
            "question": False, "text": "troubleshoot it", "context": {"agent_count": 2}, "tiers": {"simple": 0,
                                                                                                  "complex": 2}}


@pytest.mark.parametrize(("source", "value"), [
    ("count.system >= 3", True),
    ("count.system + count.team >= 4", False),
    ("'diagnosis' in hits && !question", True),
    ("'lookup' in hits || words > 10", True),
    ("has(context.agent_count) && context.agent_count > 1", True),
    ("has(context.previous_tier)", False),
    ("tiers['complex'] - tiers['simple'] == 2", True),
    ("size(text) == 15 && chars % 2 == 0", True),
    ("max(words, chars) / 2 == 40", True),
    ("words * 2 == 24", True),
    ("text == 'troubleshoot it' && true != false && null == null", True),
])
def test_values(source: str, value: object) -> None:
    assert compile_condition(source).evaluate(BINDINGS) == value


@pytest.mark.parametrize(("source", "message", "column"), [  # column: 1-based, in the condition
    ("count.system >= ", "syntax error", 17),
    ("count.system >= 3 && agents > 1", "unknown name 'agents'", 22),
    ("[x for x in hits]", "'for' is not a word of the language", 4),
    ("{1: 2}", "dict is not supported", 1),
    ("lambda: 1", "not a word of the language", 1),
    ("open('x')", "can be called", 1),
    ("words(1)", "can be called", 1),
    ("import os", "not a word of the language", 1),
])
def test_errors_say_where(source: str, message: str, column: int) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition(source)
    assert message in str(caught.value)
    assert caught.value.column == column


def test_attribute_access_never_reaches_python_objects() -> None:
    """``a.b`` is a map lookup: there is no way to an object's attributes."""
    for source in ("text.upper == 1", "context.__class__ == 1", "hits.__len__ == 1"):
        assert compile_condition(source).holds(BINDINGS) is False


@pytest.mark.parametrize("source", ["text * 100000000 == ''", "'x' * 100000000 == ''", "words / 0 > 1",
                                    "context.nothing > 1", "hits.lookup"])
def test_evaluation_errors_mean_the_condition_does_not_hold(source: str) -> None:
    assert compile_condition(source).holds(BINDINGS) is False


def test_a_sequence_records_what_holds_before_the_next_condition() -> None:
    run = compile_sequence([("count.system >= 3", "many", "breadth"), ("'many' in hits", "then", None),
                            ("1 / 0 > 1", "broken", None), ("count.breadth == 1", "counted", None)])
    hits, count = {}, {"system": 3, "breadth": 0}
    held = run(hits, count, 1, 1, False, "", {}, {})
    assert held == [0, 1, 3] and hits == {"many": True, "then": True, "counted": True}


def test_a_sequence_reports_the_condition_that_does_not_compile() -> None:
    with pytest.raises(ConditionError, match="unknown name"):
        compile_sequence([("words > 1", "a", None), ("nope > 1", "b", None)])
