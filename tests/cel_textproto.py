"""A small reader for protobuf text format, enough for cel-spec's conformance data.

``parse(text)`` returns a :class:`Message`: an ordered list of ``(field, value)`` pairs where a value is a
``Message``, a ``bytes`` string (text-format strings are byte strings; decode where a string is meant), an
``int``, a ``float``, or a bare identifier (``str``: enum names, ``true``/``false``). Extension and ``Any``
field names (``[type.googleapis.com/...]``) are kept as field names with their brackets. Schemas are not
needed: the field names say everything the conformance runner uses.
"""

from __future__ import annotations

import re
from typing import Any, Iterator

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>-?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?|inf(?:inity)?\b|nan\b))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<ext>\[[A-Za-z0-9_./]+\])
  | (?P<punct>[{}<>\[\]:,;])
    """,
    re.VERBOSE,
)

_SIMPLE_ESCAPES = {
    "a": b"\a", "b": b"\b", "f": b"\f", "n": b"\n", "r": b"\r", "t": b"\t", "v": b"\v",
    "\\": b"\\", "'": b"'", '"': b'"', "?": b"?",
}
_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))", re.DOTALL)


class Message(list):
    """Ordered ``(field, value)`` pairs of one text-format message."""

    def get(self, field: str, default: Any = None) -> Any:
        for name, value in self:
            if name == field:
                return value
        return default

    def all(self, field: str) -> list:
        return [value for name, value in self if name == field]

    def __contains__(self, field: object) -> bool:  # type: ignore[override]
        return any(name == field for name, _ in self)


def unescape(body: str) -> bytes:
    """Decode the body of a text-format string literal (without quotes) to bytes."""
    out = bytearray()
    pos = 0
    for m in _ESCAPE.finditer(body):
        out += body[pos : m.start()].encode("utf-8")
        octal, hex2, u4, u8, simple = m.groups()
        if octal is not None:
            out.append(int(octal, 8) & 0xFF)
        elif hex2 is not None:
            out.append(int(hex2, 16))
        elif u4 is not None or u8 is not None:
            out += chr(int(u4 or u8, 16)).encode("utf-8", "surrogatepass")
        elif simple in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[simple]
        else:
            raise ValueError(f"unknown escape \\{simple}")
        pos = m.end()
    out += body[pos:].encode("utf-8")
    return bytes(out)


def _tokens(text: str) -> Iterator[tuple[str, str, int]]:
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            line = text.count("\n", 0, pos) + 1
            raise ValueError(f"line {line}: cannot read {text[pos:pos + 20]!r}")
        if m.lastgroup != "ws":
            yield m.lastgroup, m.group(), pos
        pos = m.end()


class _Reader:
    def __init__(self, text: str):
        self.toks = list(_tokens(text))
        self.i = 0

    def peek(self) -> tuple[str, str, int] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, expected: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None or (expected is not None and tok[1] != expected):
            raise ValueError(f"expected {expected!r}, found {tok!r}")
        self.i += 1
        return tok

    def message(self, close: str | None) -> Message:
        msg = Message()
        while True:
            tok = self.peek()
            if tok is None or tok[1] == close:
                if tok is None and close is not None:
                    raise ValueError(f"missing {close!r}")
                if tok is not None:
                    self.i += 1
                return msg
            kind, name, _ = self.take()
            if kind not in ("ident", "ext"):
                raise ValueError(f"expected a field name, found {name!r}")
            colon = self.peek() is not None and self.peek()[1] == ":"
            if colon:
                self.i += 1
            nxt = self.peek()
            if nxt is not None and nxt[1] == "[" :  # repeated field as a list: f: [a, b]
                self.i += 1
                while self.peek()[1] != "]":
                    msg.append((name, self.value()))
                    if self.peek()[1] == ",":
                        self.i += 1
                self.i += 1
            else:
                msg.append((name, self.value()))
            if self.peek() is not None and self.peek()[1] in ",;":
                self.i += 1

    def value(self) -> Any:
        kind, text, _ = self.take()
        if text in ("{", "<"):
            return self.message("}" if text == "{" else ">")
        if kind == "string":
            data = unescape(text[1:-1])
            while self.peek() is not None and self.peek()[0] == "string":  # adjacent literals concatenate
                data += unescape(self.take()[1][1:-1])
            return data
        if kind == "number":
            return _number(text)
        if kind == "ident":
            return text
        raise ValueError(f"unexpected {text!r}")


def _number(text: str) -> int | float:
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("-").lower()
    if body.startswith("inf"):
        return sign * float("inf")
    if body == "nan":
        return float("nan")
    if body.startswith("0x"):
        return sign * int(body, 16)
    if any(c in body for c in ".ef"):
        return sign * float(body.rstrip("f"))
    return sign * int(body)


def parse(text: str) -> Message:
    """Parse one text-format message (a whole file)."""
    return _Reader(text).message(None)
