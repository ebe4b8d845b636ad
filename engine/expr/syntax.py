"""Source text to syntax tree: the LALR(1) tables lark computed from ``cel.lark`` (``_tables.py``, see
:mod:`engine.expr.grammar`), run by a 40-line loop that does what lark's own ``ParserState.feed_token`` does,
with callbacks that build :mod:`engine.expr.tree`.

That keeps ``import lark`` (35 ms) and lark's standalone runtime (30 ms even with bytecode) out of a CLI call:
loading the tables takes about a millisecond. The loop runs the callbacks as it reduces, so building the tree
never recurses; nesting depth is checked as each node is made.
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
    """Callbacks named after the grammar's rules and aliases; each gets the children list of one reduction."""

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
        for tok in reversed(nots):
            node = _check_depth(Unary(tok.start_pos, "!", node))
        return node

    def neg(self, c):
        *minuses, node = c
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


class Token:
    __slots__ = ("type", "value", "start_pos")

    def __init__(self, type: str, value: str, start_pos: int):
        self.type = type
        self.value = value
        self.start_pos = start_pos

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Token({self.type}, {self.value!r})"


class _Inline(list):
    """Children of a ``_rule`` (lark's ``x+`` helpers), spliced into the parent's children."""


_BUILDER = Builder()
_tables: Any = None
_token_re: Any = None
_callbacks: list = []

# How tokens are named in messages.
_SPELLING = {"RPAR": "')'", "RSQB": "']'", "RBRACE": "'}'", "COLON": "':'", "COMMA": "','", "$END": "end of expression"}


def _load() -> None:
    global _tables, _token_re, _callbacks
    from engine.expr import _tables as tables

    _token_re = re.compile(tables.TOKEN_RE)
    _callbacks = [getattr(_BUILDER, rule[1]) if rule[1] and not rule[3] else None for rule in tables.RULES]
    _tables = tables


def _tokens(source: str):
    tables = _tables
    keywords = tables.KEYWORDS
    ignore = tables.IGNORE
    match = _token_re.match
    pos = 0
    end = len(source)
    while pos < end:
        m = match(source, pos)
        if m is None:
            if source[pos] in "'\"" or source[pos : pos + 2] in ("r'", 'r"', "R'", 'R"'):
                raise _Reject("unterminated string", pos)
            raise _Reject(f"unexpected character {source[pos]!r}", pos)
        kind = m.lastgroup
        text = m.group()
        if kind not in ignore:
            if kind == "IDENT":
                kind = keywords.get(text, kind)
            yield Token(kind, text, pos)
        pos = m.end()
    yield Token("$END", "", len(source.rstrip()))


def _reduce(rule: tuple, callback: Any, values: list) -> Any:
    _origin, _name, filtered, expand1, placeholders = rule
    children: list = []
    for i, value in enumerate(values):
        if i in placeholders:
            children.extend([None] * placeholders[i])
        if i in filtered:
            continue
        if isinstance(value, _Inline):
            children.extend(value)
        else:
            children.append(value)
    if len(values) in placeholders:
        children.extend([None] * placeholders[len(values)])
    if expand1 and len(children) == 1:
        return children[0]
    if callback is None:
        return _Inline(children)
    return callback(children)


def _unexpected(tok: Token, expected: Any) -> _Reject:
    if tok.type == "$END":
        return _Reject("unexpected end of expression", tok.start_pos)
    names = sorted(_SPELLING[t] for t in expected if t in _SPELLING and t != "$END")
    hint = f" (expected {' or '.join(names)})" if names and len(names) == len(expected) else ""
    return _Reject(f"unexpected {tok.value!r}{hint}", tok.start_pos)


def _run(source: str) -> Node:
    """The LALR(1) loop over lark's tables (as lark's own ``ParserState.feed_token`` runs it)."""
    tables = _tables
    states = tables.STATES
    rules = tables.RULES
    lengths = tables.LENGTHS
    callbacks = _callbacks
    state_stack = [tables.START]
    value_stack: list = []
    run = 0  # consecutive '!' and '-': each is a level of nesting (reject long runs before reducing them)
    for tok in _tokens(source):
        run = run + 1 if tok.type in ("NOT", "MINUS") else 0
        if run > limits.MAX_DEPTH + 1:
            raise _Reject(f"expression is nested too deeply (more than {limits.MAX_DEPTH} levels)", tok.start_pos)
        while True:
            try:
                action = states[state_stack[-1]][tok.type]
            except KeyError:
                raise _unexpected(tok, states[state_stack[-1]].keys()) from None
            if action >= 0:  # shift
                state_stack.append(action)
                value_stack.append(tok)
                break
            index = ~action  # reduce by rules[index]
            size = lengths[index]
            values = value_stack[-size:] if size else []
            if size:
                del state_stack[-size:]
                del value_stack[-size:]
            value = _reduce(rules[index], callbacks[index], values)
            state_stack.append(states[state_stack[-1]][rules[index][0]])
            value_stack.append(value)
            if tok.type == "$END" and state_stack[-1] == tables.END:
                return value_stack[-1]
    raise _Reject("unexpected end of expression", len(source.rstrip()))  # pragma: no cover - loop returns


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
    if _tables is None:
        _load()
    try:
        return _run(source)
    except _Reject as e:
        raise ExprSyntaxError(e.message, source, e.pos) from None
    except RecursionError:  # pragma: no cover - the depth limit comes first
        raise ExprSyntaxError("expression is nested too deeply", source, 0) from None
