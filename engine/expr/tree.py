"""The syntax tree of an expression: small immutable-by-convention nodes built while parsing.

Every node has ``pos`` (character offset of the token that names it, for error messages) and ``depth``
(nesting, checked against :data:`engine.expr.limits.MAX_DEPTH` as the tree is built).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any


class Node:
    __slots__ = ("pos", "depth")

    def __init__(self, pos: int, *children: "Node"):
        self.pos = pos
        depth = 0
        for c in children:  # (a loop: cheaper than max() over a generator for the usual one or two children)
            if c.depth > depth:
                depth = c.depth
        self.depth = depth + 1

    def children(self) -> tuple["Node", ...]:
        return ()


class Literal(Node):
    """``kind`` is one of ``int`` ``double`` ``string`` ``bool`` ``null``."""

    __slots__ = ("value", "kind", "bare")

    def __init__(self, pos: int, value: Any, kind: str, bare: bool = True):
        super().__init__(pos)
        self.value = value
        self.kind = kind
        self.bare = bare  # written without parentheses: `-` folds into it (-9223372036854775808)


class Ident(Node):
    __slots__ = ("name",)

    def __init__(self, pos: int, name: str):
        super().__init__(pos)
        self.name = name


class Select(Node):
    """``operand.field``; ``has(operand.field)`` is a :class:`Call` to ``has`` whose argument is a Select."""

    __slots__ = ("operand", "field")

    def __init__(self, pos: int, operand: Node, field: str):
        super().__init__(pos, operand)
        self.operand = operand
        self.field = field

    def children(self):
        return (self.operand,)


class Index(Node):
    __slots__ = ("operand", "index")

    def __init__(self, pos: int, operand: Node, index: Node):
        super().__init__(pos, operand, index)
        self.operand = operand
        self.index = index

    def children(self):
        return (self.operand, self.index)


class Call(Node):
    """``function(args)`` or, with ``target``, ``target.function(args)`` (macros too, until compiled)."""

    __slots__ = ("function", "args", "target")

    def __init__(self, pos: int, function: str, args: list[Node], target: Node | None = None):
        super().__init__(pos, *args, *([target] if target is not None else []))
        self.function = function
        self.args = args
        self.target = target

    def children(self):
        return ((self.target,) if self.target is not None else ()) + tuple(self.args)


class ListExpr(Node):
    __slots__ = ("items",)

    def __init__(self, pos: int, items: list[Node]):
        super().__init__(pos, *items)
        self.items = items

    def children(self):
        return tuple(self.items)


class MapExpr(Node):
    __slots__ = ("entries",)

    def __init__(self, pos: int, entries: list[tuple[Node, Node]]):
        super().__init__(pos, *[n for e in entries for n in e])
        self.entries = entries

    def children(self):
        return tuple(n for e in self.entries for n in e)


class Unary(Node):
    """``op`` is ``!`` or ``-``."""

    __slots__ = ("op", "operand")

    def __init__(self, pos: int, op: str, operand: Node):
        super().__init__(pos, operand)
        self.op = op
        self.operand = operand

    def children(self):
        return (self.operand,)


class Binary(Node):
    """Arithmetic (``+ - * / %``) and relations (``< <= > >= == != in``)."""

    __slots__ = ("op", "left", "right")

    def __init__(self, pos: int, op: str, left: Node, right: Node):
        super().__init__(pos, left, right)
        self.op = op
        self.left = left
        self.right = right

    def children(self):
        return (self.left, self.right)


class Logic(Node):
    """``&&`` or ``||`` over two or more operands (chains are flattened, so they do not nest)."""

    __slots__ = ("op", "operands")

    def __init__(self, pos: int, op: str, operands: list[Node]):
        super().__init__(pos, *operands)
        self.op = op
        self.operands = operands

    def children(self):
        return tuple(self.operands)


class Cond(Node):
    __slots__ = ("test", "then", "orelse")

    def __init__(self, pos: int, test: Node, then: Node, orelse: Node):
        super().__init__(pos, test, then, orelse)
        self.test = test
        self.then = then
        self.orelse = orelse

    def children(self):
        return (self.test, self.then, self.orelse)
