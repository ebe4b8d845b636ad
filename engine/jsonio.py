"""JSON in and out, bounded and strict: the one way ctxbudget reads JSON a user wrote, and writes JSON for machines.

Reading (:func:`loads`) is for every JSON value that comes from outside — ``--context``, ``--vars``, the
lines of a ``--batch`` or ``accuracy`` file, the lines of a usage log. Whatever the input, it returns a value
or raises :class:`JSONInputError` (a ValueError) with a message, never RecursionError or another exception:

- at most ``max_bytes`` (UTF-8 bytes for ``bytes`` input, characters for ``str``), checked before parsing;
- at most ``max_depth`` nested arrays and objects, checked before parsing (Python's parser recurses, so
  30,000 brackets would otherwise raise RecursionError — or, deep enough, crash the interpreter);
- integers of at most ``max_int_digits`` digits (Python refuses more than 4,300 by default, with a bare
  ValueError, and converts long ones in quadratic time);
- strict JSON numbers: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON (Python accepts them by default),
  and a number too large for a double (``1e400``) is rejected rather than read as infinity;
- ``bytes`` must be UTF-8 (no other encoding is guessed).

Writing (:func:`dumps`) never produces ``NaN`` or ``Infinity`` (strict parsers reject them): a non-finite
float is written as ``null``, as JavaScript's ``JSON.stringify`` does. Every ``--json`` output goes through it.

This module imports nothing from ctxbudget (anything may use it) and only the standard library's ``json``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from functools import lru_cache

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_INT_DIGITS", "JSONInputError", "dumps", "finite", "loads"]

MAX_DEPTH = 64
"""Default bound on nested arrays and objects (tasks, contexts and log records use fewer than 10)."""

MAX_BYTES = 1 << 20
"""Default bound on the size of one JSON text: 1 MiB (a usage record is a few hundred bytes)."""

MAX_INT_DIGITS = 4300
"""Default bound on the digits of one integer (Python's own default limit for int-from-text conversion)."""


class JSONInputError(ValueError):
    """JSON input that was refused: ``msg`` says why; ``pos`` (0-based character offset), ``lineno`` and
    ``colno`` (1-based) say where, when known (None otherwise)."""

    def __init__(self, msg: str, pos: int | None = None, doc: str | None = None):
        self.msg = msg
        self.pos = pos
        self.lineno: int | None = None
        self.colno: int | None = None
        if pos is not None and doc is not None:
            self.lineno = doc.count("\n", 0, pos) + 1
            self.colno = pos - doc.rfind("\n", 0, pos)
        where = f" at line {self.lineno} column {self.colno}" if self.lineno is not None else ""
        super().__init__(msg + where)


class _Refused(ValueError):
    """Raised from inside the parser's hooks; :func:`loads` turns it into JSONInputError."""


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # inf - inf is nan; faster than math.isfinite through a global lookup
        raise _Refused(f"the number {_clip(text)} is too large")
    return value


@lru_cache(maxsize=8)
def _decoder(max_int_digits: int, limit: int) -> json.JSONDecoder:
    """A decoder with strict constants and floats; it checks integers itself only when the interpreter's own
    ``limit`` is looser than ``max_int_digits`` (the check costs a Python call per integer)."""
    if limit and limit <= max_int_digits:
        return json.JSONDecoder(parse_float=_float, parse_constant=_constant)

    def parse_int(text: str) -> int:
        if len(text) - (text[0] == "-") > max_int_digits:
            raise _Refused(f"an integer has more than {max_int_digits:,} digits")
        return int(text)

    return json.JSONDecoder(parse_float=_float, parse_int=parse_int, parse_constant=_constant)


def loads(data: str | bytes, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES,
          max_int_digits: int = MAX_INT_DIGITS) -> Any:
    """The JSON value of ``data``, within the bounds (see the module's documentation); JSONInputError
    otherwise. Leading and trailing whitespace is allowed, as in ``json.loads``."""
    if len(data) > max_bytes:
        unit = "bytes" if isinstance(data, (bytes, bytearray)) else "characters"
        raise JSONInputError(f"longer than {max_bytes:,} {unit} ({len(data):,})")
    if isinstance(data, (bytes, bytearray)):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONInputError(f"not UTF-8 text ({exc.reason} at byte {exc.start + 1})") from None
    elif isinstance(data, str):
        text = data
    else:
        raise TypeError(f"loads() takes str or bytes, not {type(data).__name__}")
    if text[:1] == "\ufeff":
        raise JSONInputError("starts with a byte order mark (U+FEFF): save it as UTF-8 without one", 0, text)
    if text.count("[") + text.count("{") > max_depth:  # cheap: only then can it be too deep
        deep = _too_deep(text, max_depth)
        if deep is not None:
            raise JSONInputError(f"nested more than {max_depth} levels deep", deep, text)
    try:
        return _decoder(max_int_digits, sys.get_int_max_str_digits()).decode(text)
    except json.JSONDecodeError as exc:
        raise JSONInputError(exc.msg, exc.pos, text) from None
    except _Refused as exc:
        raise JSONInputError(str(exc)) from None
    except RecursionError:  # not expected after the depth check, unless the caller's stack is nearly full
        raise JSONInputError("nested too deeply") from None
    except ValueError as exc:  # the interpreter's own int-digits limit
        if "digits" in str(exc):
            raise JSONInputError(f"an integer has more than {min(max_int_digits, sys.get_int_max_str_digits()):,} "
                                 f"digits") from None
        raise JSONInputError(str(exc)) from None


# A JSON string (its escapes skipped), or a bracket outside strings.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)


def _too_deep(text: str, max_depth: int) -> int | None:
    """The offset of the first bracket that opens level ``max_depth + 1`` outside strings, or None."""
    depth = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token == "[" or token == "{":
            depth += 1
            if depth > max_depth:
                return match.start()
        elif token == "]" or token == "}":
            depth -= 1
    return None


def _clip(text: str, width: int = 24) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def dumps(value: Any, *, indent: int | None = None, separators: tuple[str, str] | None = None,
          sort_keys: bool = False) -> str:
    """``value`` as strict JSON (UTF-8 characters kept, not escaped): a non-finite float becomes ``null``."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, indent=indent, separators=separators,
                          sort_keys=sort_keys)
    except ValueError:  # NaN or an infinity somewhere (rare): replace them, and try once more
        return json.dumps(finite(value), ensure_ascii=False, allow_nan=False, indent=indent,
                          separators=separators, sort_keys=sort_keys)


def finite(value: Any, _depth: int = 0) -> Any:
    """``value`` with every NaN and infinity (in nested dicts, lists and tuples too) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if _depth > 200:  # a cycle, or absurd nesting: leave it for json.dumps to report
        return value
    if isinstance(value, dict):
        return {k: finite(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v, _depth + 1) for v in value]
    return value
