"""What compiled expressions call at run time: CEL's operators and functions on plain Python values.

Generated code (see :mod:`engine.expr.compiler`) imports only from this module. Each helper here is the
reference semantics of one operation: it returns the CEL result or raises :class:`EvaluationError`. The
generated fast path inlines the common cases and calls these for the rest; the careful path (taken when the
fast path raises) calls only these, so that errors are absorbed by ``&&``, ``||`` and the macros exactly as
CEL says and carry a position.

Values: ``int`` (64-bit, checked), ``float`` (double), ``str``, ``bool``, ``None`` (null), lists (``list`` or
``tuple``) and maps (any ``Mapping``; keys ``str``, ``int`` or ``bool``). ``bool`` is not a number here, as in
CEL, even though Python treats it as one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Callable

from engine.expr import limits
from engine.expr.errors import EvaluationError, LimitExceeded

#: Version of the generated code's contract with this module; ``Program.from_python`` refuses other versions.
FORMAT = 1

INT_MIN = -(1 << 63)
INT_MAX = (1 << 63) - 1
_INF = math.inf
_NAN = math.nan
_EMPTY: Mapping[str, Any] = {}
_MAX_WORK = limits.MAX_WORK
_len = len
_NUMS = (int, float)
_SIMPLE = (str, int, float, bool, type(None))

_KINDS = {bool: "bool", int: "int", float: "double", str: "string", type(None): "null",
          list: "list", tuple: "list", dict: "map"}
_NUMERIC = ("int", "double")


class _Fallback(Exception):
    """Raised by the fast path when it cannot be sure of the result; the careful path takes over."""


def _X() -> Any:
    raise _Fallback


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


def _type_name(value: Any) -> str:
    try:
        return kind(value)
    except EvaluationError:
        return type(value).__name__


def _no_overload(op: str, *args: Any) -> EvaluationError:
    kinds = [_type_name(a) for a in args]
    if len(args) == 2 and op in ("+", "-", "*", "/", "%", "<", "<=", ">", ">=", "in"):
        return EvaluationError(f"no such overload: {kinds[0]} {op} {kinds[1]}")
    return EvaluationError(f"no such overload: {op}({', '.join(kinds)})")


def _s(value: Any) -> str:
    """The characters of a str (subclasses such as str enums too, whose ``str()`` is their name)."""
    return value if value.__class__ is str else str.__str__(value)


def _int_result(value: int) -> int:
    if INT_MIN <= value <= INT_MAX:
        return value
    raise EvaluationError("integer overflow")


def _charge(m: list, units: int) -> None:
    m[0] -= units
    if m[0] < 0:
        raise LimitExceeded(
            f"evaluation builds too much (more than {limits.MAX_WORK} work units in macros and concatenation)"
        )


# --- positions and recovery -------------------------------------------------------------------------------


def _at(offset: int, fn: Callable, *args: Any) -> Any:
    """Call ``fn``; an EvaluationError it raises is tagged with ``offset`` (where in the source it failed)."""
    try:
        return fn(*args)
    except EvaluationError as e:
        if e.offset is None:
            e.offset = offset
        raise


def _recover(exc: BaseException, careful: Callable, bindings: Any, source: str) -> Any:
    """The fast path raised ``exc``: evaluate again with the careful path, which raises the right error."""
    if isinstance(exc, LimitExceeded):
        _place(exc, source)
        raise exc
    try:
        return careful(bindings)
    except EvaluationError as e:
        _place(e, source)
        raise
    except RecursionError:
        raise EvaluationError("evaluation nested too deeply (a value that contains itself?)") from None
    except MemoryError:
        raise LimitExceeded("evaluation ran out of memory") from None
    except Exception as e:  # pragma: no cover - a bug in a helper; still only EvaluationError escapes
        raise EvaluationError(f"internal error: {type(e).__name__}: {e}") from None


def _place(e: EvaluationError, source: str) -> None:
    if e.offset is not None and e.line is None:
        from engine.expr.errors import position

        e.source = source
        e.line, e.column = position(source, e.offset)


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
        raise EvaluationError(f"cannot select field '{field}' from a value of type {_type_name(value)}")
    try:
        return value[field]
    except KeyError:
        raise EvaluationError(f"no such key: '{field}'") from None


def _has(value: Any, field: str) -> bool:
    if kind(value) != "map":
        raise EvaluationError(f"has() needs a map, not a value of type {_type_name(value)}")
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
            raise EvaluationError(f"no such key: {_show(index)}")
        return result
    raise EvaluationError(f"cannot index a value of type {k}")


def _show(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return repr(value)


def _map(keys: list, values: list) -> dict:
    result: dict = {}
    for key, value in zip(keys, values):
        k = kind(key)
        if k not in ("string", "int", "bool"):
            raise EvaluationError(f"unsupported map key type: {k}")
        if k == "int":
            key = int(key)
        elif k == "string":
            key = _s(key)
        if key in result:
            for stored in result:
                if stored == key and stored.__class__ is not key.__class__:
                    raise EvaluationError(
                        f"map keys {_show(stored)} and {_show(key)} cannot both be used in one map"
                    )
            raise EvaluationError(f"repeated map key: {_show(key)}")
        result[key] = value
    return result


# --- equality and ordering --------------------------------------------------------------------------------


def _eq(a: Any, b: Any) -> bool:
    """CEL equality: numbers compare by value across int and double; other kinds must match; deep on
    lists and maps; values of different kinds are simply not equal."""
    ka = kind(a)
    kb = kind(b)
    if ka in _NUMERIC and kb in _NUMERIC:
        if ka != kb:  # CEL compares an int with a double as doubles
            return float(a) == float(b)
        return a == b
    if ka != kb:
        return False
    if ka == "list":
        if len(a) != len(b):
            return False
        for x, y in zip(a, b):
            if not _eq(x, y):
                return False
        return True
    if ka == "map":
        if len(a) != len(b):
            return False
        for key, value in a.items():
            found, other = _lookup(b, key)
            if not found or not _eq(value, other):
                return False
        return True
    return a == b


def _ne(a: Any, b: Any) -> bool:
    return not _eq(a, b)


def _ordered(a: Any, b: Any, op: str) -> tuple[Any, Any]:
    """The two operands as Python can order them the CEL way, or no such overload."""
    ka = kind(a)
    kb = kind(b)
    if ka in _NUMERIC and kb in _NUMERIC:
        if ka != kb:  # CEL compares an int with a double as doubles
            return float(a), float(b)
        return a, b
    if ka == kb and ka in ("string", "bool"):
        return a, b
    raise _no_overload(op, a, b)


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


def _in(item: Any, container: Any) -> bool:
    k = kind(container)
    if k == "list":
        kind(item)
        for element in container:
            if _eq(item, element):
                return True
        return False
    if k == "map":
        found, _value = _lookup(container, item)
        return found
    raise _no_overload("in", item, container)


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
        return _int_result(int(a) + int(b))
    if ka in _NUMERIC and kb in _NUMERIC:
        return float(a) + float(b)
    if ka == "string" and kb == "string":
        size = len(a) + len(b)
        if size > limits.MAX_STRING_LENGTH:
            raise LimitExceeded(f"string too long ({size} characters; the limit is {limits.MAX_STRING_LENGTH})")
        if m is not None:
            _charge(m, 1 + (size >> 6))
        return _s(a) + _s(b)
    if ka == "list" and kb == "list":
        size = len(a) + len(b)
        if size > limits.MAX_LIST_LENGTH:
            raise LimitExceeded(f"list too long ({size} elements; the limit is {limits.MAX_LIST_LENGTH})")
        if m is not None:
            _charge(m, 1 + size)
        return list(a) + list(b)
    raise _no_overload("+", a, b)


def _numbers(op: str, a: Any, b: Any) -> tuple[str, str]:
    ka = kind(a)
    kb = kind(b)
    if ka in _NUMERIC and kb in _NUMERIC:
        return ka, kb
    raise _no_overload(op, a, b)


def _sub(a: Any, b: Any) -> Any:
    ca = a.__class__
    cb = b.__class__
    if ca is float and (cb is float or cb is int) or ca is int and cb is float:
        return a - b
    ka, kb = _numbers("-", a, b)
    if ka == "int" and kb == "int":
        return _int_result(int(a) - int(b))
    return float(a) - float(b)


def _mul(a: Any, b: Any) -> Any:
    ca = a.__class__
    cb = b.__class__
    if ca is float and (cb is float or cb is int) or ca is int and cb is float:
        return a * b  # an int operand becomes a double: the documented deviation from CEL
    ka, kb = _numbers("*", a, b)
    if ka == "int" and kb == "int":
        return _int_result(int(a) * int(b))
    return float(a) * float(b)


def _div(a: Any, b: Any) -> Any:
    ka, kb = _numbers("/", a, b)
    if ka == "int" and kb == "int":
        a = int(a)
        b = int(b)
        if b == 0:
            raise EvaluationError("division by zero")
        q = abs(a) // abs(b)
        return _int_result(-q if (a < 0) != (b < 0) else q)
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
    raise _no_overload("%", a, b)


def _neg(a: Any) -> Any:
    k = kind(a)
    if k == "int":
        return _int_result(-int(a))
    if k == "double":
        return -a
    raise _no_overload("-", a)


def _not(a: Any) -> bool:
    if a is True:
        return False
    if a is False:
        return True
    raise _no_overload("!", a)


# --- logic ------------------------------------------------------------------------------------------------


def _and(*operands: Callable[[], Any]) -> bool:
    """``a && b && ...``: false if any operand is false, whatever errors the others raise."""
    error: EvaluationError | None = None
    for operand in operands:
        try:
            value = operand()
        except LimitExceeded:
            raise
        except EvaluationError as e:
            error = error or e
            continue
        if value is False:
            return False
        if value is not True:
            error = error or _no_overload("&&", value)
    if error is not None:
        raise error
    return True


def _or(*operands: Callable[[], Any]) -> bool:
    """``a || b || ...``: true if any operand is true, whatever errors the others raise."""
    error: EvaluationError | None = None
    for operand in operands:
        try:
            value = operand()
        except LimitExceeded:
            raise
        except EvaluationError as e:
            error = error or e
            continue
        if value is True:
            return True
        if value is not False:
            error = error or _no_overload("||", value)
    if error is not None:
        raise error
    return False


def _test(value: Any) -> bool:
    if value is True or value is False:
        return value
    raise EvaluationError(f"a condition (before '?') must be a bool, not {_type_name(value)}")


# --- macros -----------------------------------------------------------------------------------------------


def _range(m: list, target: Any, units: int) -> Any:
    """What a macro iterates over (a list, or a map's keys), after charging the work it will do."""
    k = kind(target)
    if k == "list":
        items = target
    elif k == "map":
        items = list(target)
    else:
        raise EvaluationError(f"macros need a list or a map, not {k}")
    _charge(m, len(items) * units)
    return items


def _all_f(m: list, target: Any, units: int, body: Callable) -> bool:
    for x in _range(m, target, units):
        v = body(x)
        if v is False:
            return False
        if v is not True:
            raise _Fallback
    return True


def _exists_f(m: list, target: Any, units: int, body: Callable) -> bool:
    for x in _range(m, target, units):
        v = body(x)
        if v is True:
            return True
        if v is not False:
            raise _Fallback
    return False


def _exists_one_f(m: list, target: Any, units: int, body: Callable) -> bool:
    count = 0
    for x in _range(m, target, units):
        v = body(x)
        if v is True:
            count += 1
        elif v is not False:
            raise _Fallback
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
            raise _Fallback
    return out


def _map3_f(m: list, target: Any, units: int, predicate: Callable, body: Callable) -> list:
    out = []
    for x in _range(m, target, units):
        v = predicate(x)
        if v is True:
            out.append(body(x))
        elif v is not False:
            raise _Fallback
    return out


def _predicate(value: Any, macro: str) -> bool:
    if value is True or value is False:
        return value
    raise EvaluationError(f"the condition of {macro}() must be a bool, not {_type_name(value)}")


def _all_c(m: list, target: Any, units: int, body: Callable) -> bool:
    error: EvaluationError | None = None
    for x in _range(m, target, units):
        try:
            v = _predicate(body(x), "all")
        except LimitExceeded:
            raise
        except EvaluationError as e:
            error = error or e
            continue
        if v is False:
            return False
    if error is not None:
        raise error
    return True


def _exists_c(m: list, target: Any, units: int, body: Callable) -> bool:
    error: EvaluationError | None = None
    for x in _range(m, target, units):
        try:
            v = _predicate(body(x), "exists")
        except LimitExceeded:
            raise
        except EvaluationError as e:
            error = error or e
            continue
        if v is True:
            return True
    if error is not None:
        raise error
    return False


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


# --- functions --------------------------------------------------------------------------------------------


def _size(value: Any) -> int:
    k = kind(value)
    if k in ("string", "list", "map"):
        return len(value)
    raise _no_overload("size", value)


def _strings(name: str, a: Any, b: Any) -> None:
    if kind(a) != "string" or kind(b) != "string":
        raise _no_overload(name, a, b)


def _contains(s: Any, sub: Any) -> bool:
    _strings("contains", s, sub)
    return _s(sub) in _s(s)


def _starts_with(s: Any, prefix: Any) -> bool:
    _strings("startsWith", s, prefix)
    return _s(s).startswith(_s(prefix))


def _ends_with(s: Any, suffix: Any) -> bool:
    _strings("endsWith", s, suffix)
    return _s(s).endswith(_s(suffix))


_regex_cache: dict[str, Any] = {}
_re2: Any = None


def _regex(pattern: str) -> Any:
    """Compile a pattern with RE2 (linear time: no catastrophic backtracking), cached."""
    global _re2
    compiled = _regex_cache.get(pattern)
    if compiled is not None:
        return compiled
    if _re2 is None:
        import re2

        _re2 = re2
    options = _re2.Options()
    options.log_errors = False  # RE2 would print parse errors to stderr
    options.max_mem = limits.REGEX_MAX_MEM
    try:
        compiled = _re2.compile(pattern, options)
    except Exception as e:
        detail = e.args[0].decode("utf-8", "replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise EvaluationError(f"invalid regular expression {pattern!r}: {detail}") from None
    if len(_regex_cache) >= limits.REGEX_CACHE_SIZE:
        _regex_cache.clear()
    _regex_cache[pattern] = compiled
    return compiled


def _matches(s: Any, pattern: Any) -> bool:
    _strings("matches", s, pattern)
    return _regex(_s(pattern)).search(_s(s)) is not None


def _matches_re(s: Any, compiled: Any) -> bool:
    """``s.matches('literal')``: the pattern was compiled with the expression."""
    if kind(s) != "string":
        raise _no_overload("matches", s, "")
    return compiled.search(_s(s)) is not None


def _to_int(value: Any) -> int:
    k = kind(value)
    if k == "int":
        return int(value)
    if k == "double":
        if not (INT_MIN < value < 2.0**63) or value != value:
            raise EvaluationError(f"int() argument out of range: {value!r}")
        return int(value)
    if k == "string":
        text = _s(value)
        if not _INT_TEXT(text):
            raise EvaluationError(f"cannot convert {text!r} to int")
        return _int_result(int(text))
    raise _no_overload("int", value)


def _to_double(value: Any) -> float:
    k = kind(value)
    if k in _NUMERIC:
        return float(value)
    if k == "string":
        text = _s(value)
        if not _FLOAT_TEXT(text):
            raise EvaluationError(f"cannot convert {text!r} to double")
        return float(text)
    raise _no_overload("double", value)


def _to_string(value: Any) -> str:
    k = kind(value)
    if k == "string":
        return _s(value)
    if k == "int":
        return str(int(value))
    if k == "double":
        return format_double(float(value))
    if k == "bool":
        return "true" if value else "false"
    raise _no_overload("string", value)


_TRUE_TEXT = frozenset(("1", "t", "true", "TRUE", "True"))
_FALSE_TEXT = frozenset(("0", "f", "false", "FALSE", "False"))


def _to_bool(value: Any) -> bool:
    k = kind(value)
    if k == "bool":
        return value
    if k == "string":
        if value in _TRUE_TEXT:
            return True
        if value in _FALSE_TEXT:
            return False
        raise EvaluationError(f"cannot convert {_s(value)!r} to bool")
    raise _no_overload("bool", value)


def format_double(x: float) -> str:
    """``string(double)``: the shortest text that reads back as ``x``, formatted like Go's ``%g`` as cel-go
    does: ``123.456``, ``-0.0045``, ``100000``, ``1e+06``, ``1.5e-05``, ``+Inf``, ``NaN``."""
    if x != x:
        return "NaN"
    if x in (_INF, -_INF):
        return "+Inf" if x > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    mantissa, _, exp_text = repr(abs(x)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    point = len(whole) + (int(exp_text) if exp_text else 0)  # decimal point position within digits
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    if not digits:
        return sign + "0"
    exp10 = point - 1
    if exp10 < -4 or exp10 >= 6:  # Go: %e when the exponent is < -4 or >= 6 (shortest precision)
        body = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{body}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _text_matcher(pattern: str) -> Callable[[str], bool]:
    """A full-match test, compiled on first use (keeps ``re`` work out of start-up)."""
    compiled = None

    def test(text: str) -> bool:
        nonlocal compiled
        if compiled is None:
            import re

            compiled = re.compile(pattern, re.IGNORECASE)
        return compiled.fullmatch(text) is not None

    return test


# The text int() and double() accept (as Go's strconv.ParseInt(s, 10, 64) and ParseFloat do, without hex).
_INT_TEXT = _text_matcher(r"[-+]?[0-9]+")
_FLOAT_TEXT = _text_matcher(r"[-+]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[-+]?[0-9]+)?|inf|infinity|nan)")


def _number_args(name: str, values: Any) -> list:
    for v in values:
        if kind(v) not in _NUMERIC:
            raise EvaluationError(f"{name}() takes numbers, not {_type_name(v)}")
    return list(values)


def _min(*args: Any) -> Any:
    return _extreme("min", args, lambda a, b: b < a)


def _max(*args: Any) -> Any:
    return _extreme("max", args, lambda a, b: b > a)


def _extreme(name: str, args: tuple, better: Callable[[Any, Any], bool]) -> Any:
    values = args
    if len(args) == 1 and kind(args[0]) == "list":
        values = args[0]
        if not values:
            raise EvaluationError(f"{name}() of an empty list")
    values = _number_args(name, values)
    best = values[0]
    for v in values:
        if v != v:
            return _NAN
    for v in values[1:]:
        if better(best, v):
            best = v
    return best


def _abs(value: Any) -> Any:
    k = kind(value)
    if k == "int":
        return _int_result(abs(int(value)))
    if k == "double":
        return abs(float(value))
    raise _no_overload("abs", value)


def _rounded(name: str, value: Any, fn: Callable[[float], Any]) -> int:
    k = kind(value)
    if k == "int":
        return int(value)
    if k == "double":
        if not math.isfinite(value):
            raise EvaluationError(f"{name}() of {format_double(value)}")
        return _int_result(int(fn(float(value))))
    raise _no_overload(name, value)


def _ceil(value: Any) -> int:
    return _rounded("ceil", value, math.ceil)


def _floor(value: Any) -> int:
    return _rounded("floor", value, math.floor)


def _half_away(x: float) -> int:
    whole = math.floor(abs(x))
    if abs(x) - whole >= 0.5:  # exact: abs(x) - floor(abs(x)) loses nothing for doubles
        whole += 1
    return int(math.copysign(whole, x)) if whole else 0


def _round(value: Any) -> int:
    """Half away from zero: round(2.5) == 3, round(-2.5) == -3."""
    return _rounded("round", value, _half_away)
