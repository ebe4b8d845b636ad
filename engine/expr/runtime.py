"""What compiled expressions call at run time: CEL's operators on plain Python values (see
:mod:`engine.expr.values`), the positions of errors and what ``&&`` / ``||`` do with them.

Generated code (see :mod:`engine.expr.compiler`) imports only from this module, :mod:`engine.expr.macros` and
:mod:`engine.expr.functions`. Each helper is the reference semantics of one operation: it returns the CEL
result or raises :class:`EvaluationError`. Generated code inlines the common cases and calls a helper, with the
same operands, for the rest (:func:`_fix`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable

from engine.expr import limits
from engine.expr.errors import EvaluationError, LimitExceeded
from engine.expr.errors import position
from engine.expr.values import (
    INT_MAX,
    INT_MIN,
    NUMERIC,
    charge,
    int_result,
    kind,
    new_budget,
    over_budget,
    no_overload,
    plain_str,
    show,
    type_name,
)

#: Version of the generated code's contract with this module; ``Program.from_python`` refuses other versions.
FORMAT = 3

_INF = math.inf
_NAN = math.nan
_EMPTY: Mapping[str, Any] = {}
_MAX_COST = limits.MAX_COST
_new_budget = new_budget
_ERROR_COST = limits.ERROR_COST
_len = len
_NUMS = (int, float)
_SIMPLE = (str, int, float, bool, type(None))


# --- positions and absorbed errors ------------------------------------------------------------------------


def _fix(e: BaseException, offset: int | None, fn: Callable | None = None, /, *args: Any, **kw: Any) -> Any:
    """An operation of generated code raised ``e``: an EvaluationError gets the operation's ``offset`` (where in
    the source it failed) and goes on; anything else (Python's own TypeError, KeyError, ... from the inlined
    fast way) means the reference implementation ``fn`` decides, with the same operands (a :class:`_Read`
    operand is read again, through the reference semantics of selection): its result, or its error at
    ``offset``."""
    if isinstance(e, EvaluationError):
        if e.offset is None:
            e.offset = offset
        raise e
    if fn is not None and not isinstance(e, (RecursionError, MemoryError)):
        try:
            return fn(*[a.read() if a.__class__ is _Read else a for a in args], **kw)
        except EvaluationError as error:
            if error.offset is None:
                error.offset = offset
            raise
        except (RecursionError, MemoryError) as error:
            e = error
        except Exception as error:  # pragma: no cover - a bug in a helper; still only EvaluationError escapes
            e = error
    if isinstance(e, RecursionError):
        error = EvaluationError("evaluation nested too deeply (a value that contains itself?)")
    elif isinstance(e, MemoryError):
        error = LimitExceeded("evaluation ran out of memory")
    else:  # pragma: no cover - a bug in generated code or a helper
        error = EvaluationError(f"internal error: {type(e).__name__}: {e}")
    error.offset = offset
    raise error from None


def _at(offset: int, fn: Callable, /, *args: Any) -> Any:
    """``fn(*args)``, its EvaluationError tagged with ``offset``."""
    try:
        return fn(*args)
    except EvaluationError as e:
        if e.offset is None:
            e.offset = offset
        raise


def _absorb(e: EvaluationError, first: EvaluationError | None, m: list | None) -> EvaluationError:
    """An operand of ``&&`` / ``||`` failed: remember the first error (charged to ``m`` inside a macro's body,
    where it may repeat per element); a :class:`LimitExceeded` is never absorbed."""
    if isinstance(e, LimitExceeded):
        raise e
    if m is not None:
        charge(m, _ERROR_COST)
    return first or e


def _fix_absorb(e: BaseException, first: EvaluationError | None, m: list | None, undecided: bool,
                offset: int | None, fn: Callable | None = None, /, *args: Any, **kw: Any) -> tuple[Any, EvaluationError | None]:
    """An operation that is a whole operand of ``&&`` / ``||`` raised ``e``: (its value, ``first``) when its
    reference implementation gives one (:func:`_fix`), else (``undecided``, the first error) (:func:`_absorb`)."""
    try:
        return _fix(e, offset, fn, *args, **kw), first
    except EvaluationError as error:
        return undecided, _absorb(error, first, m)


def _not_bool(op: str, value: Any, offset: int) -> EvaluationError:
    """An operand of ``&&`` / ``||`` that is not a bool."""
    error = no_overload(op, value)
    error.offset = offset
    return error


def _placed(e: EvaluationError, source: str) -> EvaluationError:
    """``e`` with the line and column of its offset in ``source``."""
    if e.offset is not None and e.line is None:
        e.source = source
        e.line, e.column = position(source, e.offset)
    return e


# --- variables, fields, indexes ---------------------------------------------------------------------------


def _var(bindings: Any, name: str) -> Any:
    try:
        return bindings[name]
    except KeyError:
        raise EvaluationError(f"no value for variable '{name}'") from None
    except Exception:
        raise EvaluationError(f"bindings must be a mapping of names to values, not {type(bindings).__name__}") from None


def _select(value: Any, field: str) -> Any:
    if kind(value) != "map":
        raise EvaluationError(f"cannot select field '{field}' from a value of type {type_name(value)}")
    try:
        return value[field]
    except KeyError:
        raise EvaluationError(f"no such key: '{field}'") from None


class _Read:
    """A selection an operation's fallback reads again (``_path``), when the fallback runs."""

    __slots__ = ("args",)

    def __init__(self, *args: Any):
        self.args = args

    def read(self) -> Any:
        return _path(*self.args)


def _path(value: Any, var: str | None, offset: int, fields: tuple[tuple[str, int], ...]) -> Any:
    """A variable (``var`` of the bindings ``value``; ``None``: ``value`` itself) and the selections of
    ``fields`` ((field, offset), ...) after it, each error at the offset of its own step."""
    if var is not None:
        value = _at(offset, _var, value, var)
    for field, at in fields:
        value = _at(at, _select, value, field)
    return value


def _has(value: Any, field: str) -> bool:
    if kind(value) != "map":
        raise EvaluationError(f"has() needs a map, not a value of type {type_name(value)}")
    return field in value


def _map_key(key: Any) -> tuple[bool, Any]:
    """(usable, normalized key) for looking ``key`` up in a map, with CEL's numeric key equality."""
    k = kind(key)
    if k == "string":
        return True, key
    if k == "int":
        return True, int(key)
    if k == "bool":
        return True, key
    if k == "double":
        if math.isfinite(key) and key == int(key):
            return True, int(key)
        return False, None
    return False, None


def _lookup(mapping: Any, key: Any) -> tuple[bool, Any]:
    """(found, value): CEL map lookup. Python merges True/1 and False/0 as dict keys; CEL does not."""
    usable, key = _map_key(key)
    if not usable:
        return False, None
    try:
        value = mapping[key]
    except KeyError:
        return False, None
    except TypeError:
        return False, None
    if key.__class__ is bool or (key.__class__ is int and (key == 0 or key == 1)):
        want_bool = key.__class__ is bool
        for stored in mapping:
            if stored == key and not isinstance(stored, str):
                return (stored.__class__ is bool) == want_bool, value
    return True, value


def _index(value: Any, index: Any) -> Any:
    k = kind(value)
    if k == "list":
        ik = kind(index)
        if ik == "int":
            i = int(index)
        elif ik == "double" and math.isfinite(index) and index == int(index):
            i = int(index)
        else:
            raise EvaluationError(f"a list index must be an int, not {ik}")
        if 0 <= i < len(value):
            return value[i]
        raise EvaluationError(f"index {i} out of range for a list of size {len(value)}")
    if k == "map":
        ik = kind(index)
        if ik not in ("string", "int", "bool", "double"):
            raise EvaluationError(f"unsupported map key type: {ik}")
        found, result = _lookup(value, index)
        if not found:
            raise EvaluationError(f"no such key: {show(index)}")
        return result
    raise EvaluationError(f"cannot index a value of type {k}")


def _map(keys: list, values: list) -> dict:
    result: dict = {}
    for key, value in zip(keys, values):
        k = kind(key)
        if k not in ("string", "int", "bool"):
            raise EvaluationError(f"unsupported map key type: {k}")
        if k == "int":
            key = int(key)
        elif k == "string":
            key = plain_str(key)
        if key in result:
            for stored in result:
                if stored == key and stored.__class__ is not key.__class__:
                    raise EvaluationError(
                        f"map keys {show(stored)} and {show(key)} cannot both be used in one map"
                    )
            raise EvaluationError(f"repeated map key: {show(key)}")
        result[key] = value
    return result


# --- equality and ordering --------------------------------------------------------------------------------


def _eq(a: Any, b: Any, m: list | None = None) -> bool:
    """CEL equality: numbers compare by value across int and double; other kinds must match; deep on
    lists and maps; values of different kinds are simply not equal. Lists and maps are charged to ``m``
    (when given) by their size, before they are compared."""
    ka = kind(a)
    kb = kind(b)
    if ka in NUMERIC and kb in NUMERIC:
        if ka != kb:  # CEL compares an int with a double as doubles
            return float(a) == float(b)
        return a == b
    if ka != kb:
        return False
    if ka == "list":
        if len(a) != len(b):
            return False
        if m is not None:
            charge(m, len(a) * limits.COMPARE_COST)
        for x, y in zip(a, b):
            if not _eq(x, y, m):
                return False
        return True
    if ka == "map":
        if len(a) != len(b):
            return False
        if m is not None:
            charge(m, len(a) * limits.COMPARE_COST)
        for key, value in a.items():
            found, other = _lookup(b, key)
            if not found or not _eq(value, other, m):
                return False
        return True
    if ka == "string" and m is not None:
        charge(m, min(len(a), len(b)) * limits.CHAR_COST)
    return a == b


def _ne(a: Any, b: Any, m: list | None = None) -> bool:
    return not _eq(a, b, m)


def _ordered(a: Any, b: Any, op: str) -> tuple[Any, Any]:
    """The two operands as Python can order them the CEL way, or no such overload."""
    ka = kind(a)
    kb = kind(b)
    if ka in NUMERIC and kb in NUMERIC:
        if ka != kb:  # CEL compares an int with a double as doubles
            return float(a), float(b)
        return a, b
    if ka == kb and ka in ("string", "bool"):
        return a, b
    raise no_overload(op, a, b)


def _lt(a: Any, b: Any) -> bool:
    a, b = _ordered(a, b, "<")
    return a < b


def _le(a: Any, b: Any) -> bool:
    a, b = _ordered(a, b, "<=")
    return a <= b


def _gt(a: Any, b: Any) -> bool:
    a, b = _ordered(a, b, ">")
    return a > b


def _ge(a: Any, b: Any) -> bool:
    a, b = _ordered(a, b, ">=")
    return a >= b


def _in(item: Any, container: Any, m: list | None = None) -> bool:
    k = kind(container)
    if k == "list":
        if item.__class__ is str:  # a string equals only a string: Python's own search is CEL's
            if m is not None:
                charge(m, len(container) * limits.ELEMENT_COST)
            return item in container
        kind(item)
        if m is not None:
            charge(m, len(container) * limits.COMPARE_COST)
        for element in container:
            if _eq(item, element, m):
                return True
        return False
    if k == "map":
        found, _value = _lookup(container, item)
        return found
    raise no_overload("in", item, container)


# --- arithmetic -------------------------------------------------------------------------------------------


def _add(a: Any, b: Any, m: list | None = None) -> Any:
    ca = a.__class__
    cb = b.__class__
    if ca is int and cb is int:
        r = a + b
        if INT_MIN <= r <= INT_MAX:
            return r
        raise EvaluationError("integer overflow")
    if ca is float and (cb is float or cb is int) or ca is int and cb is float:
        return a + b  # an int operand becomes a double: the documented deviation from CEL
    ka = kind(a)
    kb = kind(b)
    if ka == "int" and kb == "int":
        return int_result(int(a) + int(b))
    if ka in NUMERIC and kb in NUMERIC:
        return float(a) + float(b)
    if ka == "string" and kb == "string":
        size = len(a) + len(b)
        if size > limits.MAX_STRING_LENGTH:
            raise LimitExceeded(f"string too long ({size} characters; the limit is {limits.MAX_STRING_LENGTH})")
        if m is not None:
            charge(m, size * limits.CHAR_COST)
        return plain_str(a) + plain_str(b)
    if ka == "list" and kb == "list":
        size = len(a) + len(b)
        if size > limits.MAX_LIST_LENGTH:
            raise LimitExceeded(f"list too long ({size} elements; the limit is {limits.MAX_LIST_LENGTH})")
        if m is not None:
            charge(m, size * limits.ELEMENT_COST)
        return list(a) + list(b)
    raise no_overload("+", a, b)


def _numbers(op: str, a: Any, b: Any) -> tuple[str, str]:
    ka = kind(a)
    kb = kind(b)
    if ka in NUMERIC and kb in NUMERIC:
        return ka, kb
    raise no_overload(op, a, b)


def _sub(a: Any, b: Any) -> Any:
    ca = a.__class__
    cb = b.__class__
    if ca is float and (cb is float or cb is int) or ca is int and cb is float:
        return a - b
    ka, kb = _numbers("-", a, b)
    if ka == "int" and kb == "int":
        return int_result(int(a) - int(b))
    return float(a) - float(b)


def _mul(a: Any, b: Any) -> Any:
    ca = a.__class__
    cb = b.__class__
    if ca is float and (cb is float or cb is int) or ca is int and cb is float:
        return a * b  # an int operand becomes a double: the documented deviation from CEL
    ka, kb = _numbers("*", a, b)
    if ka == "int" and kb == "int":
        return int_result(int(a) * int(b))
    return float(a) * float(b)


def _div(a: Any, b: Any) -> Any:
    ka, kb = _numbers("/", a, b)
    if ka == "int" and kb == "int":
        a = int(a)
        b = int(b)
        if b == 0:
            raise EvaluationError("division by zero")
        q = abs(a) // abs(b)
        return int_result(-q if (a < 0) != (b < 0) else q)
    a = float(a)
    b = float(b)
    if b == 0.0:
        if a == 0.0 or a != a:
            return _NAN
        return math.copysign(_INF, a) * math.copysign(1.0, b)
    return a / b


def _mod(a: Any, b: Any) -> Any:
    ka = kind(a)
    kb = kind(b)
    if ka == "int" and kb == "int":
        a = int(a)
        b = int(b)
        if b == 0:
            raise EvaluationError("modulus by zero")
        if a == INT_MIN and b == -1:
            raise EvaluationError("integer overflow")
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    raise no_overload("%", a, b)


def _neg(a: Any) -> Any:
    k = kind(a)
    if k == "int":
        return int_result(-int(a))
    if k == "double":
        return -a
    raise no_overload("-", a)


def _not(a: Any) -> bool:
    if a is True:
        return False
    if a is False:
        return True
    raise no_overload("!", a)


# --- conditions ---------------------------------------------------------------------------------------------


def _test(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise EvaluationError(f"a condition (before '?') must be a bool, not {type_name(value)}")
