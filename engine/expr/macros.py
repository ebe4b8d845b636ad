"""The macros ``all`` ``exists`` ``exists_one`` ``map`` ``filter``: a fast and a careful version of each.

The fast versions (``_f``) run in the generated fast path: they stop at the first result that decides and raise
on anything unexpected, handing over to the careful path. The careful versions (``_c``) absorb errors as CEL
says: ``all`` is false as soon as one element gives false, ``exists`` true as soon as one gives true, whatever
errors other elements raise; ``exists_one``, ``map`` and ``filter`` fail on the first error. Each charges its
iterations to the evaluation's work budget before it starts (see :mod:`engine.expr.limits`).
"""

from __future__ import annotations

from typing import Any, Callable

from engine.expr.errors import EvaluationError, absorb
from engine.expr.values import Fallback, charge, kind, type_name


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


def _all_f(m: list, target: Any, units: int, body: Callable) -> bool:
    for x in _range(m, target, units):
        v = body(x)
        if v is False:
            return False
        if v is not True:
            raise Fallback
    return True


def _exists_f(m: list, target: Any, units: int, body: Callable) -> bool:
    for x in _range(m, target, units):
        v = body(x)
        if v is True:
            return True
        if v is not False:
            raise Fallback
    return False


def _exists_one_f(m: list, target: Any, units: int, body: Callable) -> bool:
    count = 0
    for x in _range(m, target, units):
        v = body(x)
        if v is True:
            count += 1
        elif v is not False:
            raise Fallback
    return count == 1


def _map_f(m: list, target: Any, units: int, body: Callable) -> list:
    return [body(x) for x in _range(m, target, units)]


def _filter_f(m: list, target: Any, units: int, body: Callable) -> list:
    out = []
    for x in _range(m, target, units):
        v = body(x)
        if v is True:
            out.append(x)
        elif v is not False:
            raise Fallback
    return out


def _map3_f(m: list, target: Any, units: int, predicate: Callable, body: Callable) -> list:
    out = []
    for x in _range(m, target, units):
        v = predicate(x)
        if v is True:
            out.append(body(x))
        elif v is not False:
            raise Fallback
    return out


def _predicate(value: Any, macro: str) -> bool:
    if value is True or value is False:
        return value
    raise _not_bool(macro, value)


def _not_bool(macro: str, value: Any) -> EvaluationError:
    return EvaluationError(f"the condition of {macro}() must be a bool, not {type_name(value)}")


def _all_c(m: list, target: Any, units: int, body: Callable) -> bool:
    return absorb((lambda x=x: body(x) for x in _range(m, target, units)), False, lambda v: _not_bool("all", v))


def _exists_c(m: list, target: Any, units: int, body: Callable) -> bool:
    return absorb((lambda x=x: body(x) for x in _range(m, target, units)), True, lambda v: _not_bool("exists", v))


def _exists_one_c(m: list, target: Any, units: int, body: Callable) -> bool:
    count = 0
    for x in _range(m, target, units):
        if _predicate(body(x), "exists_one"):
            count += 1
    return count == 1


def _map_c(m: list, target: Any, units: int, body: Callable) -> list:
    return [body(x) for x in _range(m, target, units)]


def _filter_c(m: list, target: Any, units: int, body: Callable) -> list:
    return [x for x in _range(m, target, units) if _predicate(body(x), "filter")]


def _map3_c(m: list, target: Any, units: int, predicate: Callable, body: Callable) -> list:
    return [body(x) for x in _range(m, target, units) if _predicate(predicate(x), "map")]
