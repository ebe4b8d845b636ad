"""Recommendation rules: the policy's expressions, compiled once, evaluated per agent."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, Sequence

from engine.policy.rule_expressions import Evaluate, compile_expression, expression_errors


class RuleError(Exception):
    """A rule expression that does not compile, fails to evaluate, or gives the wrong type."""

    def __init__(self, index: int, field: str, message: str):
        self.index, self.field = index, field
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    index: int
    action: str
    when: Evaluate
    confidence: Evaluate | None
    reason: str | None


@lru_cache(maxsize=32)
def compile_rules(rules: Sequence[Any]) -> tuple[CompiledRule, ...]:
    """Compile the policy's rules (``RecommendationRule`` s); :class:`RuleError` for the first bad one."""
    errors = expression_errors()
    compiled = []
    for index, rule in enumerate(rules):
        functions: dict[str, Evaluate | None] = {"when": None, "confidence": None}
        for field in functions:
            source = getattr(rule, field)
            if source is None:
                continue
            try:
                functions[field] = compile_expression(source)
            except errors as exc:
                raise RuleError(index, field, str(exc)) from None
        assert functions["when"] is not None
        compiled.append(CompiledRule(index, rule.action, functions["when"], functions["confidence"], rule.reason))
    return tuple(compiled)


def first_match(rules: Sequence[CompiledRule], bindings: Mapping[str, Any]) -> tuple[CompiledRule | None, float | None]:
    """The first rule whose ``when`` holds, and its own confidence when it has one."""
    errors = expression_errors()
    for rule in rules:
        try:
            holds = rule.when(bindings)
        except errors as exc:
            raise RuleError(rule.index, "when", str(exc)) from None
        if not isinstance(holds, bool):
            raise RuleError(rule.index, "when", f"gives {holds!r}, not true or false")
        if not holds:
            continue
        if rule.confidence is None:
            return rule, None
        try:
            value = rule.confidence(bindings)
        except errors as exc:
            raise RuleError(rule.index, "confidence", str(exc)) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RuleError(rule.index, "confidence", f"gives {value!r}, not a number")
        return rule, min(max(float(value), 0.0), 1.0)
    return None, None
