"""The functions of the language: how each may be called (checked when an expression is compiled) and what
implements it (called by generated code). ``docs/expressions.md`` describes each one.
"""

from __future__ import annotations

import math

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable

from engine.expr import limits
from engine.expr.errors import EvaluationError
from engine.expr.values import INT_MIN, NUMERIC, charge, int_result, kind, no_overload, plain_str, type_name

_INF = math.inf
_NAN = math.nan


class Function:
    """A function of the language: how it may be called and what implements it."""

    __slots__ = ("helper", "arities", "method_arities", "kind", "varargs", "metered")

    def __init__(self, helper: str, arities: tuple[int, ...] = (1,), method_arities: tuple[int, ...] = (),
                 kind: str = "dyn", varargs: bool = False, metered: bool = False):
        self.helper = helper  # runtime helper (reference semantics)
        self.arities = arities  # as a global function f(x, ...); () = not callable so
        self.method_arities = method_arities  # as a method x.f(...), not counting the receiver
        self.kind = kind  # static type of the result
        self.varargs = varargs  # any number >= 1 of arguments
        self.metered = metered  # the helper takes the evaluation's budget as its last argument


FUNCTIONS: dict[str, Function] = {
    "size": Function("_size", (1,), (0,), "int"),
    "contains": Function("_contains", (), (1,), "bool", metered=True),
    "startsWith": Function("_starts_with", (), (1,), "bool", metered=True),
    "endsWith": Function("_ends_with", (), (1,), "bool", metered=True),
    "matches": Function("_matches", (2,), (1,), "bool", metered=True),
    "int": Function("_to_int", kind="int"),
    "double": Function("_to_double", kind="double"),
    "string": Function("_to_string", kind="string"),
    "bool": Function("_to_bool", kind="bool"),
    "dyn": Function(""),
    "min": Function("_min", varargs=True, metered=True),
    "max": Function("_max", varargs=True, metered=True),
    "abs": Function("_abs"),
    "ceil": Function("_ceil", kind="int"),
    "floor": Function("_floor", kind="int"),
    "round": Function("_round", kind="int"),
}

# Macros: receiver-style calls whose first argument names a variable (engine.expr.macros runs them).
MACROS = {"all": (2,), "exists": (2,), "exists_one": (2,), "map": (2, 3), "filter": (2,)}


def _size(value: Any) -> int:
    k = kind(value)
    if k in ("string", "list", "map"):
        return len(value)
    raise no_overload("size", value)


def _strings(name: str, a: Any, b: Any) -> None:
    if kind(a) != "string" or kind(b) != "string":
        raise no_overload(name, a, b)


def _contains(s: Any, sub: Any, m: list) -> bool:
    _strings("contains", s, sub)
    charge(m, (len(s) + len(sub)) * limits.CHAR_COST)
    return plain_str(sub) in plain_str(s)


def _starts_with(s: Any, prefix: Any, m: list) -> bool:
    _strings("startsWith", s, prefix)
    charge(m, min(len(s), len(prefix)) * limits.CHAR_COST)
    return plain_str(s).startswith(plain_str(prefix))


def _ends_with(s: Any, suffix: Any, m: list) -> bool:
    _strings("endsWith", s, suffix)
    charge(m, min(len(s), len(suffix)) * limits.CHAR_COST)
    return plain_str(s).endswith(plain_str(suffix))


_regex_cache: dict[str, Any] = {}
_re2: Any = None


def _regex(pattern: str) -> Any:
    """Compile a pattern with RE2 (linear time: no catastrophic backtracking), cached in the process."""
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


def regex_cost(pattern: str) -> int:
    """What compiling ``pattern`` is charged (see :mod:`engine.expr.limits`)."""
    return limits.REGEX_COMPILE_COST + len(pattern) * limits.REGEX_CHAR_COST


def search_cost(length: int, program_size: int) -> int:
    """What searching ``length`` characters with a compiled pattern of ``program_size`` is charged."""
    return length * max(program_size, 1) * limits.REGEX_SEARCH_COST


def _matches(s: Any, pattern: Any, m: list) -> bool:
    """``s.matches(p)`` for a pattern made while evaluating: compiled (and charged) once per evaluation, in a
    cache of :data:`~engine.expr.limits.REGEX_CACHE_SIZE` patterns."""
    _strings("matches", s, pattern)
    pattern = plain_str(pattern)
    cache = m[1]
    if cache is None:
        cache = m[1] = {}
    compiled = cache.get(pattern)
    if compiled is None:
        charge(m, regex_cost(pattern))
        compiled = _regex(pattern)
        if len(cache) >= limits.REGEX_CACHE_SIZE:
            cache.clear()
        cache[pattern] = compiled
    return _matches_re(s, compiled, m)


def _matches_re(s: Any, compiled: Any, m: list) -> bool:
    """``s.matches('literal')``: the pattern was compiled with the expression."""
    if kind(s) != "string":
        raise no_overload("matches", s, "")
    charge(m, search_cost(len(s), compiled.programsize))
    return compiled.search(plain_str(s)) is not None


def _to_int(value: Any) -> int:
    k = kind(value)
    if k == "int":
        return int(value)
    if k == "double":
        if not (INT_MIN < value < 2.0**63) or value != value:
            raise EvaluationError(f"int() argument out of range: {value!r}")
        return int(value)
    if k == "string":
        text = plain_str(value)
        if len(text) > 40 or not _INT_TEXT(text):  # 64-bit ints have at most 20 digits (and a sign)
            raise EvaluationError(f"cannot convert {_clip(text)} to int")
        return int_result(int(text))
    raise no_overload("int", value)


def _clip(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "…"


def _to_double(value: Any) -> float:
    k = kind(value)
    if k in NUMERIC:
        return float(value)
    if k == "string":
        text = plain_str(value)
        if len(text) > 1000 or not _FLOAT_TEXT(text):
            raise EvaluationError(f"cannot convert {_clip(text)} to double")
        return float(text)
    raise no_overload("double", value)


def _to_string(value: Any) -> str:
    k = kind(value)
    if k == "string":
        return plain_str(value)
    if k == "int":
        return str(int(value))
    if k == "double":
        return format_double(float(value))
    if k == "bool":
        return "true" if value else "false"
    raise no_overload("string", value)


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
        raise EvaluationError(f"cannot convert {plain_str(value)!r} to bool")
    raise no_overload("bool", value)


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
        if kind(v) not in NUMERIC:
            raise EvaluationError(f"{name}() takes numbers, not {type_name(v)}")
    return list(values)


def _min(*args: Any, m: list | None = None) -> Any:
    return _extreme("min", args, lambda a, b: b < a, m)


def _max(*args: Any, m: list | None = None) -> Any:
    return _extreme("max", args, lambda a, b: b > a, m)


def _extreme(name: str, args: tuple, better: Callable[[Any, Any], bool], m: list | None = None) -> Any:
    values = args
    if len(args) == 1 and kind(args[0]) == "list":
        values = args[0]
        if not values:
            raise EvaluationError(f"{name}() of an empty list")
        if m is not None:
            charge(m, len(values) * limits.COMPARE_COST)
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
        return int_result(abs(int(value)))
    if k == "double":
        return abs(float(value))
    raise no_overload("abs", value)


def _rounded(name: str, value: Any, fn: Callable[[float], Any]) -> int:
    k = kind(value)
    if k == "int":
        return int(value)
    if k == "double":
        if not math.isfinite(value):
            raise EvaluationError(f"{name}() of {format_double(value)}")
        return int_result(int(fn(float(value))))
    raise no_overload(name, value)


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
