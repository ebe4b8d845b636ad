"""The ctxbudget expression language: a strict subset of CEL, compiled to Python.

::

    from engine.expr import compile
    prog = compile("stats.exceedance_rate > 0.2 && stats.samples >= 10", names={"stats"})
    prog.evaluate({"stats": {"exceedance_rate": 0.3, "samples": 12}})   # True

``compile`` raises :class:`ExprSyntaxError` (with ``line``, ``column`` and a caret); ``evaluate`` raises
:class:`EvaluationError` (:class:`LimitExceeded` when it would spend more than its cost budget). Both are
:class:`ExprError`. ``check(source, variables)`` type-checks an expression against declared variable types
(:mod:`engine.expr.types`) and bounds its cost (:class:`ExprTypeError`, :class:`ExprCostError`). The language is described in docs/expressions.md.
Importing this package is cheap: the parser loads on the first ``compile``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Iterable

from engine.expr.errors import (
    EvaluationError,
    ExprCostError,
    ExprError,
    ExprSyntaxError,
    ExprTypeError,
    LimitExceeded,
    UnknownNameError,
)
from engine.expr.program import Program

__all__ = [
    "compile",
    "check",
    "Program",
    "ExprError",
    "ExprSyntaxError",
    "UnknownNameError",
    "ExprTypeError",
    "ExprCostError",
    "EvaluationError",
    "LimitExceeded",
]


def compile(source: str, *, names: Iterable[str] | None = None) -> Program:  # noqa: A001 - the API's name
    """Compile a CEL expression.

    ``names``: the variables the expression may use; any other free name is an :class:`UnknownNameError`
    (a subclass of :class:`ExprSyntaxError`) pointing at it. Without ``names`` any name is accepted and a
    missing binding is an :class:`EvaluationError` when evaluated.
    """
    from engine.expr.compiler import compile_source

    if names is not None and isinstance(names, str):
        names = (names,)
    try:
        python_source, _names = compile_source(source, names)
    except RecursionError:
        raise ExprSyntaxError("expression is too complex", source if isinstance(source, str) else "", 0) from None
    try:
        return Program(source, python_source)
    except ExprError:
        raise ExprSyntaxError("expression is too complex to compile", source, 0) from None



def check(source: str, variables, *, expect=None, what: str = "the expression", budget: int | None = None):
    """Type-check ``source`` against ``variables`` (name → :class:`engine.expr.types.Type`) and bound its
    worst-case cost; see :func:`engine.expr.checker.check`."""
    from engine.expr.checker import check as check_expression

    try:
        return check_expression(source, variables, expect=expect, what=what, budget=budget)
    except RecursionError:
        raise ExprSyntaxError("expression is too complex", source if isinstance(source, str) else "", 0) from None
