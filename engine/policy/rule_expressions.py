"""The expressions of the policy's recommendation rules: compiling them (the one seam to the expression
language), and checking them when a policy is validated."""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping

from engine.diagnostics import Problem
from engine.policy.yamlsource import Document, json_path

NAMES = ("agent", "stats", "params", "profile", "confidence")
"""What a rule's expressions may refer to (see docs/usage.md)."""

FIELDS = ("when", "confidence")

Evaluate = Callable[[Mapping[str, Any]], Any]


def compile_expression(source: str) -> Evaluate:
    """``source`` compiled to a function of the bindings; raises one of :func:`expression_errors`."""
    try:
        from engine.expr import compile as compile_expr
    except ImportError:  # the expression language is not merged yet
        from engine.policy.interim_expr import compile_expression as interim

        return interim(source, NAMES)
    return compile_expr(source, names=NAMES).evaluate


def expression_errors() -> tuple[type[Exception], ...]:
    try:
        from engine.expr import EvaluationError, ExprSyntaxError
    except ImportError:
        from engine.policy.interim_expr import InterimError

        return (InterimError,)
    return (ExprSyntaxError, EvaluationError)


def rule_problems(data: dict, doc: Document) -> Iterator[Problem]:
    """A ``recommendation-rule`` problem for each rule expression that does not compile."""
    errors = expression_errors()
    for i, rule in enumerate(data.get("recommendations", {}).get("rules") or ()):
        for field in FIELDS:
            source = rule.get(field)
            if not isinstance(source, str):
                continue
            try:
                compile_expression(source)
            except errors as exc:
                path = ("recommendations", "rules", i, field)
                pos = doc.pos(path)
                yield Problem(pos.file, pos.line, pos.col, "recommendation-rule",
                              f"{json_path(path)}: {str(exc).splitlines()[0]}", json_path(path))
