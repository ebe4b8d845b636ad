"""Derived-signal conditions through their one seam (engine.detect.conditions) onto engine.expr."""

from __future__ import annotations

import pytest

from engine.detect.conditions import NAMES, ConditionError, compile_condition

BINDINGS = {"hits": {"diagnosis": True}, "count": {"system": 3, "team": 0}, "words": 12, "chars": 80,
            "question": False, "text": "troubleshoot it", "context": {"agent_count": 2},
            "tiers": {"simple": 0, "complex": 2}}


@pytest.mark.parametrize(("source", "value"), [
    ("count.system >= 3", True),
    ("count.system + count.team >= 4", False),
    ("'diagnosis' in hits && !question", True),
    ("'lookup' in hits || words > 10", True),
    ("has(context.agent_count) && context.agent_count > 1", True),
    ("has(context.previous_tier)", False),
    ("tiers['complex'] - tiers['simple'] == 2", True),
    ("size(text) == 15 && chars % 2 == 0", True),
    ("text.startsWith('trouble') && text.contains(' it')", True),
    ("words * 2.5 == 30.0", True),  # int and double mix
])
def test_values(source: str, value: object) -> None:
    assert compile_condition(source).evaluate(BINDINGS) == value


@pytest.mark.parametrize(("source", "message", "column"), [
    ("count.system >= ", "unexpected end", 16),
    ("count.system >= 3 && agents > 1", "agents", 22),
    ("words >= 3 &&& chars > 1", "unexpected character", 14),
])
def test_errors_say_where(source: str, message: str | None, column: int) -> None:
    with pytest.raises(ConditionError) as caught:
        compile_condition(source)
    assert caught.value.column == column and caught.value.line == 1
    if message is not None:
        assert message in str(caught.value)


@pytest.mark.parametrize("source", ["context.nothing > 1", "words / 0 > 1", "text > 3", "hits.lookup",
                                    "count.system"])  # an error, or not a bool: does not hold
def test_what_cannot_be_evaluated_does_not_hold(source: str) -> None:
    assert compile_condition(source).holds(BINDINGS) is False


def test_a_cached_program_is_reused_and_a_stale_one_recompiled() -> None:
    fresh = compile_condition("count.system >= 3")
    again = compile_condition("count.system >= 3", fresh.python_source)
    assert again.python_source == fresh.python_source and again.holds(BINDINGS)
    stale = compile_condition("count.system >= 3", "FORMAT = -1\n")
    assert stale.holds(BINDINGS)


def test_the_names_are_the_documented_ones() -> None:
    assert NAMES == ("hits", "count", "words", "chars", "question", "text", "context", "tiers", "ask")
