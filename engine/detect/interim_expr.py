"""A minimal CEL-like condition compiler, used only until the expression language (``engine.expr``) lands.

It covers what the default policy's ``when`` conditions need: int, double, string, bool and null literals,
names, field selection (``count.system``) and indexing on maps, ``== != < <= > >=``, ``in``, ``&& || !``,
``+ - * / %``, ``size(x)`` and ``has(m.f)``. Expressions are translated to a Python expression tree, checked
against a whitelist of node types and names (no attribute access reaches Python objects: ``a.b`` becomes a
map lookup), and compiled once. :mod:`engine.detect.conditions` is the only user.
"""

from __future__ import annotations

import ast
import functools
import re
from typing import Any, Callable, Collection, Sequence

from engine.detect.conditions import FUNCTIONS as _FUNCTIONS
from engine.detect.conditions import runtime_globals

_TOKEN = re.compile(r"""\s+|"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|&&|\|\||!=|!|[A-Za-z_][A-Za-z0-9_]*|.""")
_WORDS = {"true": "True", "false": "False", "null": "None"}
_PY_KEYWORDS = {"and", "or", "not", "if", "else", "is", "lambda", "for", "None", "True", "False", "import"}
_ALLOWED = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.BinOp, ast.Add,
            ast.Sub, ast.Mult, ast.Div, ast.Mod, ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt,
            ast.GtE, ast.In, ast.Name, ast.Load, ast.Constant, ast.Attribute, ast.Subscript, ast.Call, ast.List)


class ConditionSyntaxError(Exception):
    """A condition that does not compile; ``column`` is 1-based within the source."""

    def __init__(self, message: str, column: int = 1):
        self.column = column
        super().__init__(message)


def compile_interim(source: str, names: Collection[str]) -> Callable[[dict], Any]:
    """Compile ``source`` over the top-level ``names`` into a function of a bindings mapping."""
    code = compile(ast.Expression(_checked(source, names)), "<condition>", "eval")
    # eval(code, env, bindings): a whitelisted tree and no builtins; partial keeps the call in C.
    return functools.partial(eval, code, runtime_globals())


def interim_sequence_source(conditions: Sequence[tuple[str, str, str | None]], names: Collection[str]) -> str:
    """The Python source of one function evaluating conditions ``(source, signal id, group)`` in order.

    The function takes the bindings as positional arguments in the order of ``names``, returns the indices
    of the conditions that held, and records each in ``hits`` (and its group in ``count``) before
    evaluating the next. A condition that raises does not hold. One function for all the conditions, with
    the names as its local variables, saves a call per condition and a dict lookup per name. Only
    whitelisted expression trees reach the source (see :func:`_checked`).
    """
    lines = [f"def run({', '.join(names)}):", "    __held = []"]
    for index, (source, signal, group) in enumerate(conditions):
        expression = ast.unparse(_checked(source, names))
        lines += ["    try:", f"        if ({expression}) is True:", f"            __held.append({index})",
                  f"            hits[{signal!r}] = True"]
        if group is not None:
            lines.append(f"            count[{group!r}] += 1")
        lines += ["    except __error__:", "        pass"]
    lines.append("    return __held")
    return "\n".join(lines) + "\n"


def _checked(source: str, names: Collection[str]) -> ast.expr:
    """The whitelisted, rewritten expression tree of ``source``."""
    python, columns = _translate(source)
    try:
        tree = ast.parse(python, mode="eval")
    except SyntaxError as exc:
        offset = (exc.offset or 0) - 1
        at_end = offset < 0 or offset >= len(columns)  # Python reports "unexpected end" at offset 0
        raise ConditionSyntaxError("syntax error" + (" (the condition ends too early)" if at_end else ""),
                                   len(source) + 1 if at_end else columns[offset]) from None
    for node in ast.walk(tree):
        column = columns[min(getattr(node, "col_offset", 0), len(columns) - 1)] if columns else 1
        if not isinstance(node, _ALLOWED):
            raise ConditionSyntaxError(f"{type(node).__name__.lower()} is not supported here", column)
        if isinstance(node, ast.Name) and node.id not in names and node.id not in _FUNCTIONS and node.id != "has":
            raise ConditionSyntaxError(f"unknown name {node.id!r} (known: {', '.join(sorted(names))})", column)
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and not node.keywords
                                               and (node.func.id in _FUNCTIONS or node.func.id == "has")):
            raise ConditionSyntaxError("only size(), has(), min(), max(), int(), double(), string() can be called",
                                       column)
        if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float, str, bool, type(None))):
            raise ConditionSyntaxError("unsupported literal", column)
    return ast.fix_missing_locations(_Rewrite().visit(tree)).body


def _translate(source: str) -> tuple[str, list[int]]:
    """CEL spelling → Python spelling, and for each output character the 1-based source column."""
    out: list[str] = []
    columns: list[int] = []
    for match in _TOKEN.finditer(source):
        token = match.group()
        if token in _PY_KEYWORDS:
            raise ConditionSyntaxError(f"{token!r} is not a word of the language", match.start() + 1)
        text = {"&&": " and ", "||": " or ", "!": " not "}.get(token, _WORDS.get(token, token))
        out.append(text)
        columns.extend([match.start() + 1] * len(text))
    return "".join(out), columns


class _Rewrite(ast.NodeTransformer):
    """``a.b`` → ``a['b']``; ``has(a.b)`` → ``__has__(a, 'b')``; ``a * b`` → ``__mul__(a, b)``."""

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node = self.generic_visit(node)  # type: ignore[assignment]
        if isinstance(node.op, ast.Mult):
            return ast.Call(ast.Name("__mul__", ast.Load()), [node.left, node.right], [])
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        if isinstance(node.func, ast.Name) and node.func.id == "has":
            if len(node.args) != 1 or not isinstance(node.args[0], ast.Attribute):
                raise ConditionSyntaxError("has() takes one field selection, as in has(context.agent_count)",
                                           node.col_offset + 1)
            target = node.args[0]
            return ast.Call(ast.Name("__has__", ast.Load()), [self.visit(target.value), ast.Constant(target.attr)], [])
        return self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        return ast.Subscript(self.visit(node.value), ast.Constant(node.attr), ast.Load())
