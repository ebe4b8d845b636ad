"""Derived-signal conditions (``when:``): the one place the detector compiles expressions.

A condition is an expression of the policy expression language (:mod:`engine.expr`, a subset of CEL) over
these names (documented in docs/detection.md):

``hits``      the signals fired so far, as a map id → true (``'diagnosis' in hits``)
``count``     per group, how many distinct signals of the group fired (``count.system >= 3``)
``words``     the number of words of the task
``chars``     the number of characters of the task
``question``  whether the task ends with a question mark
``text``      the normalised (NFKC, case-folded) task
``context``   the caller's context map (``has(context.agent_count) && context.agent_count > 1``)
``tiers``     tier id → rank, 0 for the smallest (``tiers[context.previous_tier] >= 2``)
``ask``       the ask (see :mod:`engine.detect.ask`): ``ask.count`` per group among the signals matched in it,
              ``ask.words``, ``ask.question``, and ``ask.narrowed`` (whether it is narrower than the task)

A condition holds when it evaluates to ``true``; one that fails to evaluate (a missing key, a type mismatch)
does not hold.
"""

from __future__ import annotations

from engine.records import Record

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Mapping

NAMES = ("hits", "count", "words", "chars", "question", "text", "context", "tiers", "ask")


class ConditionError(Exception):
    """A condition that does not compile; ``line`` and ``column`` are 1-based within its source."""

    def __init__(self, message: str, line: int = 1, column: int = 1):
        self.line = line
        self.column = column
        super().__init__(message)


class Condition(Record):
    """A compiled condition: ``evaluate(bindings)`` is the expression's value; :meth:`holds` whether it is
    true (False when it cannot be evaluated)."""

    source: str
    evaluate: Callable[[Mapping[str, Any]], Any]
    python_source: str

    def holds(self, bindings: Mapping[str, Any]) -> bool:
        try:
            return self.evaluate(bindings) is True
        except Exception:  # the language raises EvaluationError; nothing may escape detection  # noqa: BLE001
            return False


def compile_condition(source: str, python_source: str | None = None) -> Condition:
    """Compile a ``when:`` condition over :data:`NAMES` (from ``python_source``, the generated code a cache
    kept, when given and still loadable); :class:`ConditionError` when it does not compile."""
    from engine.expr import ExprError, ExprSyntaxError, Program, compile as compile_expression

    if python_source is not None:
        try:
            program = Program.from_python(source, python_source)
            if program.names <= set(NAMES):
                return Condition(source, program.evaluate, program.python_source)
        except ExprError:
            pass  # another version's code: compile again
    try:
        program = compile_expression(source, names=NAMES)
    except ExprSyntaxError as exc:
        raise ConditionError(exc.message, exc.line, exc.column) from None
    return Condition(source, program.evaluate, program.python_source)


#: Characters of a task the static cost bound of a condition assumes (``text``); a longer task is still
#: detected, and a condition that would then overspend does not hold.
TEXT_BOUND = 1 << 20
#: Keys of the caller's ``context`` the static cost bound assumes.
CONTEXT_BOUND = 64


def condition_variables(signals: int, groups: int, tiers: int) -> dict:
    """The types of the bindings :meth:`engine.detect.Detector._derive` gives a condition, for a policy with
    that many signals, groups and tiers (``validate`` checks each condition against them)."""
    from engine.expr.types import BOOL, DYN, INT, Map, Object, String

    return {"hits": Map(BOOL, signals), "count": Map(INT, groups), "words": INT, "chars": INT,
            "question": BOOL, "text": String(TEXT_BOUND), "context": Map(DYN, CONTEXT_BOUND),
            "tiers": Map(INT, tiers),
            "ask": Object("ask", {"count": Map(INT, groups), "words": INT, "question": BOOL, "narrowed": BOOL})}
