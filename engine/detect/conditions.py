"""Derived-signal conditions (``when:``): the one place the detector compiles expressions.

A condition sees these names (documented in docs/detection.md):

``hits``      the signals fired so far, as a map id → true (``'diagnose' in hits``)
``count``     per group, how many distinct signals of the group fired (``count.system >= 3``)
``words``     the number of words of the task
``chars``     the number of characters of the task
``question``  whether the task ends with a question mark
``text``      the normalised (NFKC, case-folded) task
``context``   the caller's context map (``has(context.agent_count) && context.agent_count > 1``)
``tiers``     tier id → rank, 0 for the smallest (``tiers[context.previous_tier] >= 2``)

A condition that fails to evaluate (a missing key, a type mismatch) counts as false.

Until the expression language (``engine.expr``) lands, conditions compile with the small interim compiler
in :mod:`engine.detect.interim_expr`; this module is the one seam to switch.
"""

from __future__ import annotations

from typing import Any, Callable, Collection, Mapping, NamedTuple, Sequence

NAMES = ("hits", "count", "words", "chars", "question", "text", "context", "tiers")


class ConditionError(Exception):
    """A condition that does not compile; ``column`` is 1-based within its source."""

    def __init__(self, message: str, column: int = 1):
        self.column = column
        super().__init__(message)


class Condition(NamedTuple):
    """A compiled condition: call :meth:`holds` with the bindings."""

    source: str
    evaluate: Callable[[Mapping[str, Any]], Any]

    def holds(self, bindings: Mapping[str, Any]) -> bool:
        try:
            return self.evaluate(bindings) is True
        except Exception:  # an evaluation error: the condition does not hold  # noqa: BLE001
            return False


def compile_condition(source: str, names: Collection[str] = NAMES) -> Condition:
    """Compile a ``when:`` condition over ``names``; :class:`ConditionError` when it does not compile."""
    from engine.detect.interim_expr import ConditionSyntaxError, compile_interim

    try:
        return Condition(source, compile_interim(source, names))
    except ConditionSyntaxError as exc:
        raise ConditionError(str(exc), exc.column) from None


def sequence_source(conditions: Sequence[tuple[str, str, str | None]]) -> str:
    """Compile the conditions ``(source, signal id, group)`` of a policy's derived signals, in order, into
    the Python source of one function (plain text, so a compiled-policy cache can keep it; see
    :func:`load_sequence`). :class:`ConditionError` when one does not compile."""
    from engine.detect.interim_expr import ConditionSyntaxError, interim_sequence_source

    try:
        return interim_sequence_source(conditions, NAMES)
    except ConditionSyntaxError as exc:
        raise ConditionError(str(exc), exc.column) from None


def load_sequence(python: str) -> Callable[..., list[int]]:
    """The function of :func:`sequence_source`: it takes the bindings positionally, in the order of
    :data:`NAMES`, and returns the indices of the conditions that hold; each one that holds is recorded in
    ``hits`` (and counted in ``count`` under its group) before the next is evaluated. It runs without
    builtins: only the language's functions are in its globals."""
    env = runtime_globals()
    exec(compile(python, "<conditions>", "exec"), env)  # noqa: S102 - generated from whitelisted trees only
    return env["run"]


# The functions conditions may call, and the helpers the generated code uses (``has(m.f)`` →
# ``__has__(m, 'f')``, ``a * b`` → ``__mul__(a, b)``).
FUNCTIONS: dict[str, Callable] = {"size": len, "min": min, "max": max, "int": int, "double": float, "string": str}


def _has(container: Any, key: str) -> bool:
    return isinstance(container, dict) and key in container


def _multiply(left: Any, right: Any) -> Any:
    """Numbers only: ``'x' * 10000000`` must not build a string."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (left, right)):
        raise TypeError("* takes numbers")
    return left * right


def runtime_globals() -> dict[str, Any]:
    """A fresh globals mapping for compiled conditions: no builtins, the language's functions."""
    return {"__builtins__": {}, "__has__": _has, "__mul__": _multiply, "__error__": Exception, **FUNCTIONS}


def compile_sequence(conditions: Sequence[tuple[str, str, str | None]]) -> Callable[..., list[int]]:
    """:func:`sequence_source` then :func:`load_sequence`."""
    return load_sequence(sequence_source(conditions))
