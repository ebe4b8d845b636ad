"""The value model of the expression language: which Python values are which CEL types.

Values: ``int`` (64-bit, checked), ``float`` (double), ``str``, ``bool``, ``None`` (null), lists (``list`` or
``tuple``) and maps (any ``Mapping``; keys ``str``, ``int`` or ``bool``). Subclasses (an ``IntEnum``, a ``str``
enum) count as their base type. ``bool`` is not a number here, as in CEL, even though Python treats it as one.
"""

from __future__ import annotations

from collections.abc import Mapping

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

from engine.expr import limits
from engine.expr.errors import EvaluationError, LimitExceeded

INT_MIN = -(1 << 63)
INT_MAX = (1 << 63) - 1
NUMERIC = ("int", "double")

_KINDS = {bool: "bool", int: "int", float: "double", str: "string", type(None): "null",
          list: "list", tuple: "list", dict: "map"}


def kind(value: Any) -> str:
    """The CEL type name of a value: int double string bool null list map (or raise for other objects)."""
    k = _KINDS.get(value.__class__)
    if k is not None:
        return k
    if isinstance(value, bool):  # pragma: no cover - bool cannot be subclassed
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, (list, tuple)):
        return "list"
    raise EvaluationError(f"unsupported value of Python type {type(value).__name__}")


def type_name(value: Any) -> str:
    """The CEL type name, or the Python type name of an unsupported value (for messages)."""
    try:
        return kind(value)
    except EvaluationError:
        return type(value).__name__


def no_overload(op: str, *args: Any) -> EvaluationError:
    """The error for an operation applied to values of types it does not take."""
    kinds = [type_name(a) for a in args]
    if len(args) == 2 and op in ("+", "-", "*", "/", "%", "<", "<=", ">", ">=", "in"):
        return EvaluationError(f"no such overload: {kinds[0]} {op} {kinds[1]}")
    return EvaluationError(f"no such overload: {op}({', '.join(kinds)})")


def plain_str(value: Any) -> str:
    """The characters of a str (subclasses such as str enums too, whose ``str()`` is their name)."""
    return value if value.__class__ is str else str.__str__(value)


def int_result(value: int) -> int:
    """``value`` if it fits in 64 bits, else an overflow error."""
    if INT_MIN <= value <= INT_MAX:
        return value
    raise EvaluationError("integer overflow")


def new_budget() -> list:
    """An evaluation's budget: ``[cost units left, its cache of compiled patterns or None]``."""
    return [limits.MAX_COST, None]


def charge(m: list, units: int) -> None:
    """Spend ``units`` of an evaluation's cost budget ``m`` (see :func:`new_budget`), before the work they
    pay for: raise :class:`LimitExceeded` (and spend nothing) when they are more than what is left."""
    if units > m[0]:
        m[0] = -1
        raise over_budget()
    m[0] -= units


def over_budget() -> LimitExceeded:
    return LimitExceeded(f"evaluation costs too much (more than its budget of {limits.MAX_COST:,} cost units; "
                         "see 'Cost' in docs/expressions.md)")


def show(value: Any) -> str:
    """A value as an expression would write it (for messages)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return repr(value)
