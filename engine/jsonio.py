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
- ``bytes`` must be UTF-8 (no other encoding is guessed), and every string text: an escaped lone UTF-16
  surrogate (``"\\ud800"``, which Python's parser takes and no UTF-8 output can hold) is refused.

Writing (:func:`dumps`) never produces ``NaN`` or ``Infinity`` (strict parsers reject them): a non-finite
float is written as ``null``, as JavaScript's ``JSON.stringify`` does. Every ``--json`` output goes through it.

Reading what ctxbudget wrote itself (:func:`loads_own`: a compiled-policy cache entry) is ``json.loads``.

**Start-up.** Importing :mod:`json` imports :mod:`re` (and enum, functools): about 6 ms of CPU of every process
here, 0.45x of ``python -c pass``, which a warm ``budget`` or ``validate`` paid for one cache entry read and one
answer written (and a Claude Code hook for the payload it reads and the session line it writes). So
:func:`loads_own` and :func:`loads` run CPython's own C scanner (``_json.make_scanner``, what ``json.loads`` runs)
directly — :func:`loads` with its strict hooks, and ``JSONDecoder.decode``'s few lines around it (the whitespace
around the value, "Expecting value", "Extra data"); an error inside the value is the scanner's own (json is
imported then, and the value scanned again: CPython 3.11's scanner only looks its error class up, and without
json.decoder imported it raised a SystemError instead) — and, until something else has imported :mod:`json`,
:func:`dumps` writes plain data (dicts with string keys, lists, tuples, strings, ints, finite floats, booleans,
None; any ``indent`` and ``separators``) itself, with ``_json.encode_basestring`` for strings — the same text,
byte for byte (tests/test_jsonio.py compares them on generated values). Anything else (another type, a
non-finite float, deep nesting, ``sort_keys``, an interpreter without ``_json``) goes to :mod:`json`.

This module imports nothing from ctxbudget (anything may use it) and only the standard library.
"""

from __future__ import annotations

import math
import sys

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
        self.msg = msg[:-len(" starting at")] if msg.endswith(" starting at") else msg  # json's, where pos says it
        self.pos = pos
        self.lineno: int | None = None
        self.colno: int | None = None
        if pos is not None and doc is not None:
            self.lineno = doc.count("\n", 0, pos) + 1
            self.colno = pos - doc.rfind("\n", 0, pos)
        where = f" at line {self.lineno} column {self.colno}" if self.lineno is not None else ""
        super().__init__(self.msg + where)


class _Refused(ValueError):
    """Raised from inside the parser's hooks; :func:`loads` turns it into JSONInputError."""


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # inf - inf is nan; faster than math.isfinite through a global lookup
        raise _Refused(f"the number {_clip(text)} is too large")
    return value


_decoders: dict = {}


def _decoder(max_int_digits: int, limit: int) -> Any:
    """A decoder with strict constants and floats; it checks integers itself only when the interpreter's own
    ``limit`` is looser than ``max_int_digits`` (the check costs a Python call per integer)."""
    found = _decoders.get((max_int_digits, limit))
    if found is None:
        found = _decoders[max_int_digits, limit] = _new_decoder(max_int_digits, limit)
    return found


def _new_decoder(max_int_digits: int, limit: int) -> Any:
    if limit and limit <= max_int_digits:
        parse_int: Any = int
    else:
        def parse_int(text: str) -> int:
            if len(text) - (text[0] == "-") > max_int_digits:
                raise _Refused(f"an integer has more than {max_int_digits:,} digits")
            return int(text)

    if _make_scanner is not None:  # json.JSONDecoder's own scanner, without importing json (the module's docs)
        return _StrictDecoder(parse_int)
    import json  # pragma: no cover - not CPython

    return json.JSONDecoder(parse_float=_float, parse_int=parse_int, parse_constant=_constant)  # pragma: no cover


_WHITESPACE = " \t\n\r"  # what json.decoder's WHITESPACE pattern skips around the value


class _StrictDecoder:
    """``json.JSONDecoder(parse_float=_float, parse_int=parse_int, parse_constant=_constant)``'s ``decode``,
    through the same C scanner, without importing json: the same values, and the same errors — the scanner
    raises ``json.JSONDecodeError`` itself (json imported first, on an error: see :meth:`decode`); before and
    after the value this class says "Expecting value" and "Extra data" as ``JSONDecoder.decode`` does, at the same
    offsets."""

    __slots__ = ("strict", "object_hook", "object_pairs_hook", "parse_float", "parse_int", "parse_constant",
                 "scan_once")

    def __init__(self, parse_int: Any):
        self.strict = True
        self.object_hook = self.object_pairs_hook = None
        self.parse_float, self.parse_int, self.parse_constant = _float, parse_int, _constant
        self.scan_once = _make_scanner(self)

    def decode(self, text: str) -> Any:
        start = len(text) - len(text.lstrip(_WHITESPACE))
        try:
            value, end = self.scan_once(text, start)
        except StopIteration as exc:
            raise JSONInputError("Expecting value", exc.value, text) from None
        except SystemError:
            # CPython 3.11's scanner finds its JSONDecodeError in sys.modules only: when json.decoder has not been
            # imported, an error inside the value ("Unterminated string", "Expecting ',' delimiter"…) comes out
            # as a SystemError. Import it and scan again: the same error, now raised as it should be.
            if "json.decoder" in sys.modules:
                raise  # pragma: no cover - not that
            import json.decoder  # noqa: F401

            value, end = self.scan_once(text, start)
        last = len(text.rstrip(_WHITESPACE))
        if end < last:
            between = text[end:last]
            raise JSONInputError("Extra data", end + len(between) - len(between.lstrip(_WHITESPACE)), text)
        return value


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
        value = _decoder(max_int_digits, sys.get_int_max_str_digits()).decode(text)
    except JSONInputError:
        raise
    except _Refused as exc:
        raise JSONInputError(str(exc)) from None
    except RecursionError:  # not expected after the depth check, unless the caller's stack is nearly full
        raise JSONInputError("nested too deeply") from None
    except ValueError as exc:  # the scanner's JSONDecodeError (json is imported by now), or the int-digits limit
        import json

        if isinstance(exc, json.JSONDecodeError):
            raise JSONInputError(exc.msg, exc.pos, text) from None
        if "digits" in str(exc):
            raise JSONInputError(f"an integer has more than {min(max_int_digits, sys.get_int_max_str_digits()):,} "
                                 f"digits") from None
        raise JSONInputError(str(exc)) from None
    if "\\u" in text and may_hold_surrogates(text):
        at = lone_surrogate_at(text)
        if at is not None:
            raise JSONInputError(LONE_SURROGATE, at, text)
    return value


LONE_SURROGATE = "a string holds a lone UTF-16 surrogate, which is not text"
_SURROGATE_ESCAPES = ("\\ud8", "\\ud9", "\\uda", "\\udb", "\\udc", "\\udd", "\\ude", "\\udf")


def may_hold_surrogates(text: str) -> bool:
    """Whether JSON ``text`` has an escape of a UTF-16 surrogate (``\\ud800``–``\\udfff``; a cheap screen: only
    then can a decoded string hold a lone one)."""
    lowered = text.lower()
    return any(escape in lowered for escape in _SURROGATE_ESCAPES)


def lone_surrogate_at(text: str) -> int | None:
    """The offset in JSON ``text`` of the first string that decodes to a lone surrogate (a pair is one character;
    no UTF-8 text can hold a lone one, so no strict reader takes it), else None. Every string counts: the values
    of a key written twice too."""
    import json
    import re

    stack = [json.loads(text, object_pairs_hook=list)]
    found = False
    while stack and not found:
        item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, str) and not item.isascii():
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                found = True
    if not found:
        return None
    # where: the first escape of a high surrogate without a low one after it, or of a low one without a high
    # one before it (an escaped backslash before "u" is not an escape; such a text is only located roughly)
    match = re.search(r"(?<!\\)(?:\\\\)*(\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])|"
                      r"(?<![0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2})", text)
    return match.start(1) if match else 0


# A JSON string (its escapes skipped), or a bracket outside strings.
_TOKENS = r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]'


def _too_deep(text: str, max_depth: int) -> int | None:
    """The offset of the first bracket that opens level ``max_depth + 1`` outside strings, or None."""
    import re

    depth = 0
    for match in re.finditer(_TOKENS, text, re.DOTALL):
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
    """``value`` as strict JSON (UTF-8 characters kept, not escaped): a non-finite float becomes ``null``, and a
    lone surrogate in a string (a file name from bytes that are not UTF-8) is written as text, ``\\xNN``."""
    text = None
    if "json" not in sys.modules and not sort_keys and _encode_str is not None:
        text = plain_dumps(value, indent, separators)  # json.dumps's text, without importing json (module docs)
    if text is None:
        import json

        try:
            text = json.dumps(value, ensure_ascii=False, allow_nan=False, indent=indent, separators=separators,
                              sort_keys=sort_keys)
        except ValueError:  # NaN or an infinity somewhere (rare): replace them, and try once more
            text = json.dumps(finite(value), ensure_ascii=False, allow_nan=False, indent=indent,
                              separators=separators, sort_keys=sort_keys)
    if not text.isascii() and not is_utf8(text):
        text = "".join(_surrogate_text(ch) if "\ud800" <= ch <= "\udfff" else ch for ch in text)
    return text


def is_utf8(text: str) -> bool:
    """Whether ``text`` can be written as UTF-8: no lone surrogate (a file name from bytes that are not UTF-8
    holds them, as os.fsdecode keeps such bytes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate_text(ch: str) -> str:
    """A lone surrogate inside a JSON string, as JSON text that decodes to ``\\xNN`` (one undecodable byte, as
    os.fsdecode keeps it) or ``\\uDXXX``: UTF-8 output cannot hold the character itself."""
    code = ord(ch)
    return "\\\\x%02x" % (code - 0xDC00) if 0xDC80 <= code <= 0xDCFF else "\\\\u%04x" % code


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


# -- without importing json (see the module's documentation) -----------------------------------------------------

try:
    from _json import encode_basestring as _encode_str
    from _json import make_scanner as _make_scanner
except ImportError:  # pragma: no cover - not CPython
    _encode_str = _make_scanner = None

_PLAIN_DEPTH = 64  # deeper values go to json (which also finds cycles)


class _NotPlain(Exception):
    """A value :func:`plain_dumps` leaves to json."""


def plain_dumps(value: Any, indent: int | None = None, separators: tuple[str, str] | None = None) -> str | None:
    """``json.dumps(value, ensure_ascii=False, allow_nan=False, indent=indent, separators=separators)`` for plain
    data (see the module's documentation), written without importing json; None for anything else (then json
    writes it, or says why it cannot)."""
    if _encode_str is None or (indent is not None and (type(indent) is not int or indent < 0)):
        return None
    if separators is None:  # json.dumps's defaults
        item, key = (", " if indent is None else ","), ": "
    elif type(separators) is tuple and len(separators) == 2 and all(type(part) is str for part in separators):
        item, key = separators
    else:
        return None
    try:
        return _plain(value, None if indent is None else "\n", " " * (indent or 0), 0, item, key)
    except (_NotPlain, ValueError, RecursionError):  # ValueError: an int past the interpreter's digit limit
        return None


def _plain(value: Any, newline: str | None, step: str, depth: int, item: str, key: str) -> str:
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        if value != value or value - value != 0.0:  # NaN, an infinity: json's finite() replacement
            raise _NotPlain
        return float.__repr__(value)
    if depth >= _PLAIN_DEPTH or (kind is not list and kind is not tuple and kind is not dict):
        raise _NotPlain
    if not value:
        return "{}" if kind is dict else "[]"
    inner = None if newline is None else newline + step
    between = item if inner is None else item + inner
    if kind is dict:
        if any(type(name) is not str for name in value):
            raise _NotPlain  # json converts other keys (and refuses some): its own rules
        body = between.join(_encode_str(name) + key + _plain(member, inner, step, depth + 1, item, key)
                            for name, member in value.items())
        opening, closing = "{", "}"
    else:
        body = between.join(_plain(member, inner, step, depth + 1, item, key) for member in value)
        opening, closing = "[", "]"
    if inner is None:
        return opening + body + closing
    return opening + inner + body + newline + closing


class _Context:
    """What ``_json.make_scanner`` reads of a decoder: ``json.loads``'s defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scanner = _make_scanner(_Context()) if _make_scanner is not None else None


def loads_own(data: str | bytes) -> Any:
    """``json.loads(data)`` for a JSON text ctxbudget wrote itself (UTF-8 bytes or text): through the C scanner
    ``json.loads`` uses, without importing json, when the text is one value from its first character to its
    last; anything else (whitespace around it, extra data, an error) is json.loads's to read or refuse."""
    text = data.decode("utf-8", "surrogatepass") if isinstance(data, (bytes, bytearray)) else data
    if _scanner is not None:
        try:
            value, end = _scanner(text, 0)
        except Exception:  # noqa: BLE001 - json.loads below gives the value or its own error
            pass
        else:
            if end == len(text):
                return value
    import json

    return json.loads(text)
