"""Recommendation rules: the policy's expressions (compiled with the policy), evaluated per agent."""

from __future__ import annotations

from typing import Any, Mapping, Sequence


class RuleError(Exception):
    """A rule expression that fails to evaluate, or gives the wrong type."""

    def __init__(self, index: int, field: str, message: str):
        self.index, self.field = index, field
        super().__init__(message)


def first_match(rules: Sequence[Any], bindings: Mapping[str, Any]) -> tuple[int | None, float | None]:
    """The index of the first rule (a ``RecommendationRule``) whose ``when`` holds, and its own confidence
    when it has one; (None, None) when none holds."""
    from engine.expr import EvaluationError

    for index, rule in enumerate(rules):
        try:
            holds = rule.when_program.evaluate(bindings)
        except EvaluationError as exc:
            raise RuleError(index, "when", str(exc)) from None
        if not isinstance(holds, bool):
            raise RuleError(index, "when", f"gives {holds!r}, not true or false")
        if not holds:
            continue
        if rule.confidence_program is None:
            return index, None
        try:
            value = rule.confidence_program.evaluate(bindings)
        except EvaluationError as exc:
            raise RuleError(index, "confidence", str(exc)) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RuleError(index, "confidence", f"gives {value!r}, not a number")
        return index, min(max(float(value), 0.0), 1.0)
    return None, None
