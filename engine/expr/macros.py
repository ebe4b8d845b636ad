"""The macros ``all`` ``exists`` ``exists_one`` ``map`` ``filter``, called by generated code with their body as a
function of the macro's variable.

``all`` is false as soon as one element gives false, ``exists`` true as soon as one gives true, whatever errors
other elements raise (CEL's commutative error absorption); ``exists_one``, ``map`` and ``filter`` fail on the
first error. Each charges its iterations to the evaluation's work budget before it starts, and each error it
absorbs (see :mod:`engine.expr.limits`).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable

from engine.expr import limits
from engine.expr.errors import EvaluationError, LimitExceeded
from engine.expr.values import charge, kind, type_name


def _range(m: list, target: Any, units: int) -> Any:
    """What a macro iterates over (a list, or a map's keys), after charging the work it will do."""
    k = kind(target)
    if k == "list":
        items = target
    elif k == "map":
        items = list(target)
    else:
        raise EvaluationError(f"macros need a list or a map, not {k}")
    charge(m, len(items) * units)
    return items


def _decide(m: list, target: Any, units: int, body: Callable, absorbing: bool, macro: str) -> bool:
    """``all`` (``absorbing=False``) and ``exists`` (True): the first element whose body gives ``absorbing``
    decides; else the first error (a body that gives no bool is one); else ``not absorbing``."""
    error: EvaluationError | None = None
    for x in _range(m, target, units):
        try:
            v = body(x)
        except LimitExceeded:
            raise
        except EvaluationError as e:
            charge(m, limits.ERROR_COST)
            error = error or e
            continue
        if v is absorbing:
            return absorbing
        if v is not (not absorbing):
            error = error or _not_bool(macro, v)
    if error is not None:
        raise error
    return not absorbing


def _all(m: list, target: Any, units: int, body: Callable) -> bool:
    return _decide(m, target, units, body, False, "all")


def _exists(m: list, target: Any, units: int, body: Callable) -> bool:
    return _decide(m, target, units, body, True, "exists")


def _exists_one(m: list, target: Any, units: int, body: Callable) -> bool:
    count = 0
    for x in _range(m, target, units):
        if _predicate(body(x), "exists_one"):
            count += 1
    return count == 1


def _transform(m: list, target: Any, units: int, body: Callable) -> list:
    return [body(x) for x in _range(m, target, units)]


def _filter(m: list, target: Any, units: int, body: Callable) -> list:
    return [x for x in _range(m, target, units) if _predicate(body(x), "filter")]


def _transform_filtered(m: list, target: Any, units: int, predicate: Callable, body: Callable) -> list:
    """``map(x, predicate, body)``."""
    return [body(x) for x in _range(m, target, units) if _predicate(predicate(x), "map")]


def _predicate(value: Any, macro: str) -> bool:
    if value is True or value is False:
        return value
    raise _not_bool(macro, value)


def _not_bool(macro: str, value: Any) -> EvaluationError:
    return EvaluationError(f"the condition of {macro}() must be a bool, not {type_name(value)}")
