"""Arithmetic expressions read without compiling: :func:`read`.

Every Claude Code hook is a new process, and compiling one expression there costs more than the rest of its work
on it: the parser's tables, the compiler and Python's own ``compile`` of the generated module (about 5 ms; the
compiled-policy cache holds data only, never code). Most expressions a hook evaluates — the memory relevance
above all — are a few numbers and names joined by arithmetic, comparisons and ``?:``. :func:`read` parses such
a source itself, in one pass over its characters, and evaluates it with the compiled program's own operations
(:mod:`engine.expr.runtime`'s ``_add``, ``_lt``, ``_absorb``, ``_placed`` …): the same values, the same errors
with the same messages and positions, the same cost budget. Anything else — and anything it is unsure of —
gives ``None``, and the caller compiles the source as always (which also reports every syntax error).

The subset: decimal number literals (``2``, ``0.5``, ``.5``, ``1e3``), names, parentheses, unary ``-`` and
``!``, ``* / % + -``, ``< <= > >= == !=``, ``&&`` ``||`` (with CEL's absorption of errors) and ``?:``, with the
grammar's precedence and associativity (``cel.lark``). Out: strings, ``true``/``false``/``null``, selection,
indexing, calls, ``in``, lists, maps, comments, hex and unsigned literals, any character outside ASCII, sources
over :data:`MAX_SOURCE` characters or nested over :data:`MAX_NESTING` levels.

Nothing here imports the parser or the compiler; the reader is a table of closures built from the source each
time it is read (there is nothing to cache: no code, pickled or generated, runs from anywhere else).
tests/test_expr_direct.py checks it against the compiled program, value for value and error for error.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Callable, Collection

from operator import ge as _py_ge, gt as _py_gt, le as _py_le, lt as _py_lt

from engine.expr.errors import EvaluationError
from engine.expr.runtime import (
    _EMPTY,
    _absorb,
    _add,
    _at,
    _div,
    _eq,
    _fix,
    _ge,
    _gt,
    _le,
    _lt,
    _mod,
    _mul,
    _ne,
    _neg,
    _not,
    _not_bool,
    _placed,
    _sub,
    _test,
    _var,
)
from engine.expr.limits import MAX_COST
from engine.expr.values import INT_MAX, INT_MIN

#: Longest source read (longer ones are compiled; the language's own limit is 4,096 characters).
MAX_SOURCE = 1024
#: Deepest syntax tree read, counted as :class:`engine.expr.tree.Node` counts it (the language allows 64).
MAX_NESTING = 32

_DIGITS = frozenset("0123456789")
_NAME_START = frozenset("_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_NAME_CHARS = _NAME_START | _DIGITS
_SPACE = frozenset(" \t\r\n\f")  # the grammar's WS
# Words that are not names (keywords, CEL's reserved words): whatever they mean, the compiler says so.
_NOT_NAMES = frozenset(
    "true false null in as break const continue else for function if import let loop package namespace return var "
    "void while".split()
)
_OPERATORS = {"+": _add, "-": _sub, "*": _mul, "/": _div, "%": _mod,
              "<": _lt, "<=": _le, ">": _gt, ">=": _ge, "==": _eq, "!=": _ne}
_RELATIONS = frozenset(("<", "<=", ">", ">=", "==", "!="))
# Python's order of two ints or of two floats is CEL's (runtime._ordered hands such operands to it unchanged).
_ORDER = {"<": _py_lt, "<=": _py_le, ">": _py_gt, ">=": _py_ge}


class _Unsure(Exception):
    """The source is not (surely) in the subset: :func:`read` answers None."""


class DirectProgram:
    """An expression read by :func:`read`: ``source``, ``names`` (its free variables) and ``evaluate(bindings)``,
    as a compiled :class:`~engine.expr.Program` has them."""

    __slots__ = ("source", "names", "evaluate")

    source: str
    names: frozenset[str]

    def __init__(self, source: str, names: frozenset[str], evaluate: Callable[..., Any]):
        self.source = source
        self.names = names
        self.evaluate = evaluate

    def __repr__(self) -> str:
        return f"DirectProgram({self.source!r})"

    def __reduce__(self) -> tuple:  # pickled as its source and names: read again (or compiled) when loaded
        return (_program, (self.source, tuple(sorted(self.names))))


def _program(source: str, names: tuple[str, ...]) -> Any:
    """The program of ``source`` (read, else compiled): what an unpickled :class:`DirectProgram` becomes."""
    found = read(source, names)
    if found is None:
        from engine.expr import compile as compile_expression

        found = compile_expression(source, names=names)
    return found


def read(source: str, names: Collection[str] | None = None) -> DirectProgram | None:
    """The program of ``source`` when it is in the arithmetic subset (see the module) and reads only ``names``
    (any name when None), else None: compile it (``engine.expr.compile``), which gives the same program or the
    error this reader does not try to reproduce."""
    if source.__class__ is not str or len(source) > MAX_SOURCE or not source.isascii():
        return None
    if isinstance(names, str):
        names = (names,)
    try:
        tokens = _tokens(source)
        parser = _Parser(tokens, names)
        node = parser.expr()
        if parser.tokens[parser.at][0] != "end":
            return None
    except (_Unsure, RecursionError):  # (nesting is bounded before the stack is: a caller already deep in it)
        return None
    root = node[0]
    return DirectProgram(source, frozenset(parser.free), _evaluator(root, source))


def _evaluator(root: Callable[[Any, list], Any], source: str) -> Callable[..., Any]:
    def evaluate(B: Any = _EMPTY) -> Any:
        try:
            return root(B, [MAX_COST, None])  # engine.expr.values.new_budget(), without the call
        except EvaluationError as e:
            raise _placed(e, source)
        except Exception as e:  # RecursionError, MemoryError: as the compiled program's top level
            raise _placed(_fix(e, None), source)

    return evaluate


# --- tokens -----------------------------------------------------------------------------------------------


def _tokens(source: str) -> list[tuple[str, Any, int]]:
    """``(kind, value, offset)``: kinds ``num`` (value: (number, is_int)), ``name``, ``op`` (value: its text),
    ``(``, ``)``, ``?``, ``:``, then ``end``. Raises :class:`_Unsure` for anything else."""
    out: list[tuple[str, Any, int]] = []
    i, size = 0, len(source)
    while i < size:
        ch = source[i]
        if ch in _SPACE:
            i += 1
            continue
        start = i
        if ch in _DIGITS or (ch == "." and i + 1 < size and source[i + 1] in _DIGITS):
            i = _number_end(source, i)
            text = source[start:i]
            if i < size and (source[i] in _NAME_CHARS or source[i] == "."):
                raise _Unsure  # 0x1F, 5u, 1.e3, 1.5.x, 1e: the compiler decides
            if "." in text or "e" in text or "E" in text:
                value = float(text)
                if value - value != 0.0:  # inf (1e999): "double literal out of range"
                    raise _Unsure
                out.append(("num", (value, False), start))
            else:
                out.append(("num", (int(text), True), start))
            continue
        if ch in _NAME_START:
            while i < size and source[i] in _NAME_CHARS:
                i += 1
            word = source[start:i]
            if word in _NOT_NAMES or word.startswith("__"):
                raise _Unsure
            out.append(("name", word, start))
            continue
        pair = source[i:i + 2]
        if pair in ("<=", ">=", "==", "!=", "&&", "||"):
            out.append(("op", pair, start))
            i += 2
            continue
        if pair == "//":  # a comment
            raise _Unsure
        if ch in "+-*/%<>!":
            out.append(("op", ch, start))
        elif ch in "()?:":
            out.append((ch, ch, start))
        else:
            raise _Unsure
        i += 1
    out.append(("end", None, size))
    return out


def _number_end(source: str, i: int) -> int:
    """The end of the number literal at ``i`` (the grammar's FLOAT, else INT in decimal)."""
    size = len(source)
    while i < size and source[i] in _DIGITS:
        i += 1
    if i + 1 < size and source[i] == "." and source[i + 1] in _DIGITS:
        i += 1
        while i < size and source[i] in _DIGITS:
            i += 1
    if i < size and source[i] in "eE":
        j = i + 1
        if j < size and source[j] in "+-":
            j += 1
        if j < size and source[j] in _DIGITS:
            while j < size and source[j] in _DIGITS:
                j += 1
            i = j
    return i


# --- the syntax, as cel.lark has it ---------------------------------------------------------------------
#
# Each rule returns (evaluate, pos, depth, literal): ``evaluate(B, m)`` computes the node's value (or raises an
# EvaluationError placed at the operation that failed); ``pos`` and ``depth`` are those of the node the parser
# of engine.expr.syntax builds; ``literal`` is the constant of a number literal (None for anything else), with
# ``bare`` whether it is written without parentheses (a leading ``-`` folds into a bare one).


class _Parser:
    __slots__ = ("tokens", "at", "names", "free", "level")

    def __init__(self, tokens: list[tuple[str, Any, int]], names: Collection[str] | None):
        self.tokens = tokens
        self.at = 0
        self.names = names
        self.free: dict[str, None] = {}
        self.level = 0  # expressions being parsed inside one another

    def next_is(self, kind: str, values: Any = None) -> bool:
        token = self.tokens[self.at]
        return token[0] == kind and (values is None or token[1] in values)

    def take(self) -> tuple[str, Any, int]:
        token = self.tokens[self.at]
        self.at += 1
        return token

    # expr: or_expr | or_expr "?" or_expr ":" expr
    def expr(self) -> tuple:
        # Every nesting (parentheses, a conditional's else) comes back here: bounded before it recurses further.
        self.level += 1
        if self.level > MAX_NESTING:
            raise _Unsure
        test = self.logic("||")
        if not self.next_is("?"):
            self.level -= 1
            return test
        pos = self.take()[2]
        then = self.logic("||")
        if not self.next_is(":"):
            raise _Unsure
        self.take()
        orelse = self.expr()
        self.level -= 1
        return _cond(test, then, orelse, pos), pos, _depth(1 + max(test[2], then[2], orelse[2])), None, False

    # or_expr: and_expr ("||" and_expr)*, and_expr: relation ("&&" relation)*, flattened as the parser does
    def logic(self, op: str) -> tuple:
        first = self.logic("&&") if op == "||" else self.relation()
        if not self.next_is("op", (op,)):
            return first
        pos = self.tokens[self.at][2]
        operands = [first]
        while self.next_is("op", (op,)):
            self.take()
            operands.append(self.logic("&&") if op == "||" else self.relation())
        depth = _depth(1 + max(o[2] for o in operands))
        return _logic(op, operands), pos, depth, None, False

    # relation: addition (RELOP addition)*, left-associative (a < b < c parses; it fails when evaluated)
    def relation(self) -> tuple:
        return self.binary(self.addition, _RELATIONS)

    def addition(self) -> tuple:
        return self.binary(self.multiplication, ("+", "-"))

    def multiplication(self) -> tuple:
        return self.binary(self.unary, ("*", "/", "%"))

    def binary(self, operand: Callable[[], tuple], ops: Any) -> tuple:
        left = operand()
        while self.next_is("op", ops):
            _, op, pos = self.take()
            right = operand()
            left = _binary(op, left, right, pos), pos, _depth(1 + max(left[2], right[2])), None, False
        return left

    # unary: member | NOT+ member | MINUS+ member (no mixing: `-!x` and `!-x` are syntax errors)
    def unary(self) -> tuple:
        if not self.next_is("op", ("-", "!")):
            return _in_range(self.primary())
        op = self.tokens[self.at][1]
        run = []
        while self.next_is("op", (op,)):
            run.append(self.take()[2])
            if len(run) > MAX_NESTING:
                raise _Unsure
        node = self.primary()
        for i, pos in enumerate(reversed(run)):
            value, bare = node[3], node[4]
            if op == "-" and i == 0 and value is not None and bare:
                node = _literal(-value[0], value[1], pos, bare=False)  # -9223372036854775808 is in range
                continue
            node = _unary(op, _in_range(node), pos), pos, _depth(1 + node[2]), None, False
        return _in_range(node)

    # primary: IDENT | "(" expr ")" | INT | FLOAT
    def primary(self) -> tuple:
        kind, value, pos = self.take()
        if kind == "num":
            return _literal(value[0], value[1], pos, bare=True)
        if kind == "name":
            if self.next_is("("):  # a call
                raise _Unsure
            if self.names is not None and value not in self.names:
                raise _Unsure  # the compiler's UnknownNameError
            self.free.setdefault(value, None)
            return _ident(value, pos), pos, 1, None, False
        if kind == "(":
            inner = self.expr()
            if not self.next_is(")"):
                raise _Unsure
            self.take()
            evaluate, inner_pos, depth, literal, _bare = inner
            return evaluate, inner_pos, _depth(depth + 1), literal, False
        raise _Unsure


def _depth(depth: int) -> int:
    if depth > MAX_NESTING:
        raise _Unsure
    return depth


# --- the operations, each as the compiled program does it -------------------------------------------------


def _in_range(node: tuple) -> tuple:
    """``node``, unless it is an int literal out of 64-bit range (checked once a leading ``-`` has folded in)."""
    literal = node[3]
    if literal is not None and literal[1] and not INT_MIN <= literal[0] <= INT_MAX:
        raise _Unsure  # the compiler's "integer literal out of range"
    return node


def _literal(value: Any, is_int: bool, pos: int, bare: bool) -> tuple:
    def constant(B: Any, m: list) -> Any:
        return value

    return constant, pos, 1, (value, is_int), bare


def _ident(name: str, pos: int) -> Callable[[Any, list], Any]:
    def variable(B: Any, m: list) -> Any:
        try:
            return B[name]
        except Exception:  # the compiled program's fallback reads it again through _var, which says what is wrong
            return _at(pos, _var, B, name)

    return variable


def _binary(op: str, left: tuple, right: tuple, pos: int) -> Callable[[Any, list], Any]:
    a, b = left[0], right[0]
    helper = _OPERATORS[op]
    if op == "+" or ((op == "==" or op == "!=") and left[3] is None and right[3] is None):
        # _add charges the strings and lists it builds, _eq / _ne the lists, maps and strings they compare (a
        # literal operand is a number here: nothing to charge, and the compiled program passes no budget)
        def metered(B: Any, m: list) -> Any:
            x = a(B, m)
            y = b(B, m)
            try:
                return helper(x, y, m)
            except Exception as e:
                return _fix(e, pos)

        return metered
    # A comparison with a number on its right (`recency_days < 30.0`): two ints or two doubles are ordered as
    # Python orders them, which is what _lt and the others do with such operands, without the calls.
    if right[3] is not None:
        y = right[3][0]
        order = _ORDER.get(op)
        if order is not None and (y.__class__ is float or y.__class__ is int):
            number = y.__class__

            def compare_right(B: Any, m: list) -> Any:
                x = a(B, m)
                if x.__class__ is number:
                    return order(x, y)
                try:
                    return helper(x, y)
                except Exception as e:
                    return _fix(e, pos)

            return compare_right

    def operation(B: Any, m: list) -> Any:
        x = a(B, m)
        y = b(B, m)
        try:
            return helper(x, y)
        except Exception as e:
            return _fix(e, pos)

    return operation


def _unary(op: str, operand: tuple, pos: int) -> Callable[[Any, list], Any]:
    a = operand[0]
    helper = _neg if op == "-" else _not

    def operation(B: Any, m: list) -> Any:
        x = a(B, m)
        try:
            return helper(x)
        except Exception as e:
            return _fix(e, pos)

    return operation


def _logic(op: str, operands: list[tuple]) -> Callable[[Any, list], Any]:
    """``&&`` / ``||``: the first operand that decides (false for ``&&``, true for ``||``) wins over any error of
    the others; else the first error (a non-bool operand is one, at its position); else the other bool."""
    parts = tuple((o[0], o[1]) for o in operands)
    deciding = op == "||"  # the value that decides: true for ||, false for &&
    other = not deciding

    def logic(B: Any, m: list) -> bool:
        error = None
        for evaluate, pos in parts:
            try:
                value = evaluate(B, m)
            except EvaluationError as e:
                error = _absorb(e, error, None)
                continue
            if value is deciding:
                return deciding
            if value is not other:
                error = error or _not_bool(op, value, pos)
        if error:
            raise error
        return other

    return logic


def _cond(test: tuple, then: tuple, orelse: tuple, pos: int) -> Callable[[Any, list], Any]:
    t, a, b = test[0], then[0], orelse[0]
    if then[3] is not None and orelse[3] is not None:  # `agent_specific ? 0.3 : 0.0`
        x, y = then[3][0], orelse[3][0]

        def choose_constant(B: Any, m: list) -> Any:
            value = t(B, m)
            if value is True:
                return x
            if value is False:
                return y
            return _at(pos, _test, value)

        return choose_constant

    def choose(B: Any, m: list) -> Any:
        value = t(B, m)
        if value is True:
            return a(B, m)
        if value is False:
            return b(B, m)
        return _at(pos, _test, value)

    return choose
