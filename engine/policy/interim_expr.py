"""A stand-in for the expression language until ``engine.expr`` is merged: comparisons, ``&& || !``,
arithmetic, field selection, literals. Only :mod:`engine.policy.rule_expressions` uses it, and only when
``engine.expr`` has no ``compile``. Delete it when the language lands.
"""

from __future__ import annotations

import ast
import operator
import re
from typing import Any, Callable, Mapping

_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|&&|\|\||!(?!=)|\btrue\b|\bfalse\b|\bnull\b')
_WORDS = {"&&": " and ", "||": " or ", "!": " not ", "true": "True", "false": "False", "null": "None"}
_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.Mod: operator.mod}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}


class InterimError(ValueError):
    """An expression outside the stand-in's subset, or one that fails to evaluate."""


def compile_expression(source: str, names: tuple[str, ...] = ()) -> Callable[[Mapping[str, Any]], Any]:
    text = _TOKENS.sub(lambda m: _WORDS.get(m.group(), m.group()), source)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise InterimError(f"syntax error in {source!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub,
                                 ast.BinOp, ast.Compare, ast.Name, ast.Load, ast.Attribute, ast.Constant,
                                 ast.Subscript, *_BINARY, *_COMPARE)):
            raise InterimError(f"{type(node).__name__} is not supported in {source!r}")
        if names and isinstance(node, ast.Name) and node.id not in names:
            raise InterimError(f"undeclared reference to {node.id!r} (known: {', '.join(names)})")
    return lambda bindings: _eval(tree.body, bindings)


def _eval(node: ast.AST, env: Mapping[str, Any]) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            raise InterimError(f"undeclared reference to {node.id!r}")
        return env[node.id]
    if isinstance(node, (ast.Attribute, ast.Subscript)):
        base = _eval(node.value, env)
        key = node.attr if isinstance(node, ast.Attribute) else _eval(node.slice, env)
        if not isinstance(base, Mapping) or key not in base:
            raise InterimError(f"no such key: {key!r}")
        return base[key]
    if isinstance(node, ast.BoolOp):
        values = [_eval(v, env) for v in node.values]
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, env)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BinOp):
        try:
            return _BINARY[type(node.op)](_eval(node.left, env), _eval(node.right, env))
        except (ArithmeticError, TypeError) as exc:
            raise InterimError(str(exc)) from None
    if isinstance(node, ast.Compare):
        left = _eval(node.left, env)
        for op, right_node in zip(node.ops, node.comparators):
            right = _eval(right_node, env)
            try:
                if not _COMPARE[type(op)](left, right):
                    return False
            except TypeError as exc:
                raise InterimError(str(exc)) from None
            left = right
        return True
    raise InterimError(f"cannot evaluate {type(node).__name__}")  # pragma: no cover - rejected at compile
