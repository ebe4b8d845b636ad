"""Source text to syntax tree: lark's LALR(1) parser for ``cel.lark`` with :class:`Builder` as its transformer.

The parser is the one lark's standalone generator wrote to ``_parser.py`` (see :mod:`engine.expr.grammar`),
driven through lark's public API: ``Lark_StandAlone(transformer=Builder())``. lark calls the Builder's method
named after each rule or ``-> alias`` as it reduces, so building the tree never recurses; nesting depth is
checked as each node is made. Each method unpacks the fixed children of its rule: a grammar change that adds or
drops a child fails loudly there (and in tests/test_expr_parser.py), it cannot shift silently.
"""

from __future__ import annotations

import re
from typing import Any

from engine.expr import limits
from engine.expr.errors import ExprSyntaxError
from engine.expr.tree import (
    Binary,
    Call,
    Cond,
    Ident,
    Index,
    ListExpr,
    Literal,
    Logic,
    MapExpr,
    Node,
    Select,
    Unary,
)

# Words CEL reserves: not usable as identifiers or function names (they are fine as map field selectors).
RESERVED = frozenset(
    "as break const continue else for function if import let loop package namespace return var void while".split()
)

_INT_MAX = 2**63 - 1


class _Reject(Exception):
    """Raised inside a callback; turned into ExprSyntaxError with the source text by :func:`parse`."""

    def __init__(self, message: str, pos: int):
        super().__init__(message)
        self.message = message
        self.pos = pos


def _check_depth(node: Node) -> Node:
    if node.depth > limits.MAX_DEPTH:
        raise _Reject(f"expression is nested too deeply (more than {limits.MAX_DEPTH} levels)", node.pos)
    return node


def _check_name(tok: Any) -> str:
    name = str(tok)
    if name in RESERVED:
        raise _Reject(f"'{name}' is a reserved word", tok.start_pos)
    if name.startswith("__"):
        raise _Reject(f"names starting with '__' are not allowed: '{name}'", tok.start_pos)
    return name


def _check_run(tokens: list) -> None:
    """A run of prefix operators (``!!!x``, ``--x``): each is a level of nesting."""
    if len(tokens) > limits.MAX_DEPTH + 1:
        raise _Reject(f"expression is nested too deeply (more than {limits.MAX_DEPTH} levels)",
                      tokens[limits.MAX_DEPTH + 1].start_pos)


# --- string literals --------------------------------------------------------------------------------------

_ESCAPE = re.compile(r"\\(?:([0-3][0-7]{2})|[xX]([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|(.))", re.S)
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
           "\\": "\\", "'": "'", '"': '"', "`": "`", "?": "?"}


def decode_string(token: str, pos: int) -> str:
    """The value of a CEL string literal token (quotes, ``r`` prefix and escapes as the CEL spec says)."""
    raw = token[0] in "rR"
    body = token[1:] if raw else token
    quote = 3 if body[:3] in ('"""', "'''") else 1
    start = pos + (1 if raw else 0) + quote
    body = body[quote:-quote]
    if raw:
        return body
    out = []
    last = 0
    for m in _ESCAPE.finditer(body):
        out.append(body[last : m.start()])
        octal, hex2, u4, u8, simple = m.groups()
        if simple is not None:
            if simple not in _SIMPLE:
                raise _Reject(f"invalid escape sequence '\\{simple}' in string", start + m.start())
            out.append(_SIMPLE[simple])
        else:
            code = int(octal, 8) if octal else int(hex2 or u4 or u8, 16)
            if 0xD800 <= code <= 0xDFFF or code > 0x10FFFF:
                raise _Reject(f"invalid code point in escape '{m.group()}'", start + m.start())
            out.append(chr(code))
        last = m.end()
    out.append(body[last:])
    return "".join(out)


# --- callbacks --------------------------------------------------------------------------------------------


class Builder:
    """lark's callbacks, one per rule or alias of ``cel.lark`` (lark finds them by name); each gets the children
    of one reduction, with ``None`` for an absent ``[optional]`` part."""

    def cond(self, c):
        test, q, then, orelse = c
        return _check_depth(Cond(q.start_pos, test, then, orelse))

    def logic(self, c):
        left, op, right = c
        # Chains are flattened (the operators are associative, also in how they absorb errors), so a long
        # chain of conditions does not count as nesting.
        if isinstance(left, Logic) and left.op == str(op):
            return _check_depth(Logic(left.pos, left.op, left.operands + [right]))
        return _check_depth(Logic(op.start_pos, str(op), [left, right]))

    def binary(self, c):
        left, op, right = c
        return _check_depth(Binary(op.start_pos, str(op), left, right))

    def not_(self, c):
        *nots, node = c
        _check_run(nots)
        for tok in reversed(nots):
            node = _check_depth(Unary(tok.start_pos, "!", node))
        return node

    def neg(self, c):
        *minuses, node = c
        _check_run(minuses)
        for i, tok in enumerate(reversed(minuses)):
            if i == 0 and isinstance(node, Literal) and node.bare and node.kind in ("int", "double"):
                node = Literal(tok.start_pos, -node.value, node.kind, bare=False)
                continue
            node = _check_depth(Unary(tok.start_pos, "-", node))
        return node

    def select(self, c):
        member, _dot, (name, pos) = c
        return _check_depth(Select(pos, member, name))

    def method(self, c):
        member, _dot, (name, pos), _lpar, args = c
        return _check_depth(Call(pos, name, args or [], target=member))

    def index(self, c):
        member, bracket, expr = c
        return _check_depth(Index(bracket.start_pos, member, expr))

    def ident(self, c):
        tok = c[-1]
        return Ident(tok.start_pos, _check_name(tok))

    def call(self, c):
        if len(c) == 4:
            c = c[1:]
        tok, _lpar, args = c
        return _check_depth(Call(tok.start_pos, _check_name(tok), args or []))

    def paren(self, c):
        _lpar, node = c
        if isinstance(node, Literal):
            node.bare = False
        node.depth += 1
        return _check_depth(node)

    def list(self, c):
        bracket, *rest = c
        items = rest[0] if rest else []
        return _check_depth(ListExpr(bracket.start_pos, items))

    def map(self, c):
        brace, *rest = c
        entries = rest[0] if rest else []
        return _check_depth(MapExpr(brace.start_pos, entries))

    def exprs(self, c):
        if len(c) == 1:
            return [c[0]]
        c[0].append(c[1])
        return c[0]

    def entries(self, c):
        if len(c) == 1:
            return [c[0]]
        c[0].append(c[1])
        return c[0]

    def entry(self, c):
        return (c[0], c[1])

    def selector(self, c):
        tok = c[0]
        name = str(tok)
        if tok.type == "QUOTED_IDENT":
            name = name[1:-1]
        elif name.startswith("__"):  # harmless (a map lookup) but confusing: refuse as for other names
            raise _Reject(f"names starting with '__' are not allowed: '{name}'", tok.start_pos)
        return (name, tok.start_pos)

    def int_lit(self, c):
        tok = c[0]
        text = str(tok)
        value = int(text[2:], 16) if text[:2] in ("0x", "0X") else int(text)
        return Literal(tok.start_pos, value, "int")

    def float_lit(self, c):
        tok = c[0]
        return Literal(tok.start_pos, float(str(tok)), "double")

    def string_lit(self, c):
        tok = c[0]
        return Literal(tok.start_pos, decode_string(str(tok), tok.start_pos), "string")

    def true_lit(self, c):
        return Literal(c[0].start_pos, True, "bool")

    def false_lit(self, c):
        return Literal(c[0].start_pos, False, "bool")

    def null_lit(self, c):
        return Literal(c[0].start_pos, None, "null")

    def unsupported(self, c):
        tok = c[0]
        if tok.type == "UINT":
            raise _Reject("unsigned integers (the 'u' suffix) are not supported; write a plain integer", tok.start_pos)
        raise _Reject("bytes literals are not supported", tok.start_pos)


# --- the parser -----------------------------------------------------------------------------------------

_parser: Any = None
_errors: Any = None

# How tokens are named in messages.
_SPELLING = {"RPAR": "')'", "RSQB": "']'", "RBRACE": "'}'", "COLON": "':'", "COMMA": "','", "$END": "end of expression"}


def _load() -> None:
    global _parser, _errors
    from engine.expr import _parser as generated

    _errors = (generated.UnexpectedCharacters, generated.UnexpectedToken, generated.UnexpectedEOF)
    _parser = generated.Lark_StandAlone(transformer=Builder())


def _reject(error: Any, source: str) -> _Reject:
    """lark's UnexpectedInput as our message and position."""
    end = len(source.rstrip())
    token = getattr(error, "token", None)
    if token is None:  # UnexpectedCharacters (or UnexpectedEOF)
        pos = getattr(error, "pos_in_stream", None)
        if pos is None or pos >= len(source):
            return _Reject("unexpected end of expression", end)
        if source[pos] in "'\"" or source[pos : pos + 2] in ("r'", 'r"', "R'", 'R"'):
            return _Reject("unterminated string", pos)
        return _Reject(f"unexpected character {source[pos]!r}", pos)
    if token.type == "$END":
        return _Reject("unexpected end of expression", end)
    expected = set(getattr(error, "expected", ()) or ())
    names = sorted(_SPELLING[t] for t in expected if t in _SPELLING and t != "$END")
    hint = f" (expected {' or '.join(names)})" if names and len(names) == len(expected) else ""
    return _Reject(f"unexpected {str(token)!r}{hint}", token.start_pos)


def parse(source: str) -> Node:
    """Parse an expression; raise :class:`ExprSyntaxError` with a position for anything wrong."""
    if not isinstance(source, str):
        raise ExprSyntaxError(f"an expression must be a string, not {type(source).__name__}", "", 0)
    if len(source) > limits.MAX_SOURCE_LENGTH:
        raise ExprSyntaxError(
            f"expression is too long ({len(source)} characters; the limit is {limits.MAX_SOURCE_LENGTH})",
            source,
            limits.MAX_SOURCE_LENGTH,
        )
    if not source.strip():
        raise ExprSyntaxError("empty expression", source, 0)
    if _parser is None:
        _load()
    try:
        try:
            return _parser.parse(source)
        except _errors as e:
            raise _reject(e, source) from None
    except _Reject as e:
        raise ExprSyntaxError(e.message, source, e.pos) from None
    except RecursionError:  # pragma: no cover - the depth limit comes first
        raise ExprSyntaxError("expression is nested too deeply", source, 0) from None
