"""Checking an expression before it runs: its type against declared variables, and a bound on its cost.

:func:`check` walks the syntax tree once, as CEL's checker and cost estimator do for Kubernetes admission
policies. Each node gets a :class:`~engine.expr.types.Type` (with a bound on its size) and a bound on the cost
units evaluating it may be charged (the figures :mod:`engine.expr.limits` charges at run time, with a margin
per operation and per error that evaluation charges less of). Values of type ``dyn`` are not
checked; sizes nothing declares are assumed to be :data:`~engine.expr.limits.UNKNOWN_SIZE`.

Not modelled (they cannot fail a declared expression): integer overflow, which needs values near 2**63.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Iterable, Mapping

from engine.diagnostics import did_you_mean
from engine.expr import limits
from engine.expr.errors import ExprCostError, ExprTypeError
from engine.expr.functions import MACROS, regex_cost, search_cost
from engine.expr.tree import Binary, Call, Cond, Ident, Index, ListExpr, Literal, Logic, MapExpr, Node, Select, Unary
from engine.expr.types import BOOL, DOUBLE, DYN, INT, NULL, STRING, Type
from engine.records import Record

NUMERIC = ("int", "double")
_LITERAL = {"int": INT, "double": DOUBLE, "string": STRING, "bool": BOOL, "null": NULL}
#: Program size assumed for a pattern made at run time (RE2's memory limit allows about this many).
DYNAMIC_PROGRAM_SIZE = limits.REGEX_MAX_MEM // 16


class Checked(Record):
    """What :func:`check` found: the expression's type and a bound on its cost in units."""

    type: Type
    cost: int


def size_of(t: Type) -> int:
    """The bound on a value's size (characters, elements); 1 for a number, a bool or null."""
    if t.kind in ("int", "double", "bool", "null"):
        return 1
    return limits.UNKNOWN_SIZE if t.size is None else t.size


def _join(a: Type, b: Type) -> Type:
    """The type of a value that is one of two types (branches of ``?:``, items of a list literal)."""
    if a.kind == b.kind and a.item == b.item and a.fields == b.fields:
        return a._replace(size=None if a.size is None or b.size is None else max(a.size, b.size))
    return DYN


class Checker:
    def __init__(self, source: str, variables: Mapping[str, Type]):
        self.source = source
        self.variables = dict(variables)

    def error(self, message: str, node: Node) -> ExprTypeError:
        return ExprTypeError(message, self.source, node.pos)

    def visit(self, node: Node, scope: Mapping[str, Type]) -> tuple[Type, int]:
        return getattr(self, "visit_" + type(node).__name__)(node, scope)

    # each visit returns (type, cost bound); STEP is the margin per operation
    def visit_Literal(self, node: Literal, scope):
        t = _LITERAL[node.kind]
        return (t._replace(size=len(node.value)) if node.kind == "string" else t), 0

    def visit_Ident(self, node: Ident, scope):
        if node.name in scope:
            return scope[node.name], 0
        return self.variables.get(node.name, DYN), limits.STEP_COST

    def select(self, t: Type, field: str, node: Node) -> tuple[Type, int]:
        """The type of ``field`` of a value of type ``t``, and the errors it may raise (as cost)."""
        if t.kind == "object":
            if field not in t.fields:
                hint = did_you_mean(field, t.fields, otherwise=f" (fields: {', '.join(sorted(t.fields))})")
                raise self.error(f"{t.name or 'this map'} has no field '{field}'" + hint, node)
            return t.fields[field], 0
        if t.kind in ("map", "dyn"):
            return (t.item or DYN) if t.kind == "map" else DYN, limits.ERROR_COST
        raise self.error(f"cannot select field '{field}' from a value of type {t}", node)

    def visit_Select(self, node: Select, scope):
        t, cost = self.visit(node.operand, scope)
        field_type, errors = self.select(t, node.field, node)
        return field_type, cost + limits.STEP_COST + errors

    def visit_Index(self, node: Index, scope):
        t, cost = self.visit(node.operand, scope)
        it, icost = self.visit(node.index, scope)
        cost += icost + limits.STEP_COST + limits.ERROR_COST
        if t.kind == "object" and isinstance(node.index, Literal) and node.index.kind == "string":
            return self.select(t, node.index.value, node.index)[0], cost
        if t.kind == "list":
            if it.kind not in ("int", "dyn", "double"):
                raise self.error(f"a list index must be an int, not {it}", node.index)
            return t.item or DYN, cost
        if t.kind in ("map", "object", "dyn"):
            return (t.item or DYN) if t.kind == "map" else DYN, cost
        raise self.error(f"cannot index a value of type {t}", node)

    def visit_Unary(self, node: Unary, scope):
        t, cost = self.visit(node.operand, scope)
        cost += limits.STEP_COST
        if node.op == "!":
            self.expect(t, ("bool",), node.operand, "the operand of '!'")
            return BOOL, cost + (limits.ERROR_COST if t.kind == "dyn" else 0)
        self.expect(t, NUMERIC, node.operand, "the operand of '-'")
        return (t if t.kind in NUMERIC else DYN), cost + limits.ERROR_COST

    def expect(self, t: Type, kinds: tuple[str, ...], node: Node, what: str) -> None:
        if t.kind != "dyn" and t.kind not in kinds:
            words = " or ".join("a number" if k == "int" and "double" in kinds else k for k in kinds
                                if not (k == "double" and "int" in kinds))
            raise self.error(f"{what} must be {words}, not {t}", node)

    def visit_Binary(self, node: Binary, scope):
        lt, lcost = self.visit(node.left, scope)
        rt, rcost = self.visit(node.right, scope)
        cost = lcost + rcost + limits.STEP_COST
        op = node.op
        dyn = "dyn" in (lt.kind, rt.kind)
        errors = limits.ERROR_COST if dyn else 0
        if op in ("==", "!="):
            if "list" in (lt.kind, rt.kind) or "map" in (lt.kind, rt.kind) or "object" in (lt.kind, rt.kind) or dyn:
                cost += min(size_of(lt), size_of(rt)) * limits.COMPARE_COST
            elif lt.kind == rt.kind == "string":
                cost += min(size_of(lt), size_of(rt)) * limits.CHAR_COST
            return BOOL, cost + errors
        if op == "in":
            if rt.kind not in ("list", "map", "object", "dyn"):
                raise self.error(f"the right of 'in' must be a list or a map, not {rt}", node.right)
            if rt.kind in ("list", "dyn"):
                cost += size_of(rt) * limits.COMPARE_COST
            return BOOL, cost + errors
        if op in ("<", "<=", ">", ">="):
            if not dyn and not ((lt.kind in NUMERIC and rt.kind in NUMERIC) or lt.kind == rt.kind in ("string", "bool")):
                raise self.error(f"cannot compare {lt} {op} {rt}", node)
            if lt.kind == rt.kind == "string" or dyn:
                cost += min(size_of(lt), size_of(rt)) * limits.CHAR_COST
            return BOOL, cost + errors
        if op == "+" and (lt.kind in ("string", "list") or rt.kind in ("string", "list")):
            kinds = {lt.kind, rt.kind} - {"dyn"}
            if len(kinds) != 1:
                raise self.error(f"cannot add {lt} + {rt}", node)
            size = size_of(lt) + size_of(rt)
            if "string" in kinds:
                return STRING._replace(size=size), cost + size * limits.CHAR_COST + errors
            item = lt.item if lt.kind == "list" else rt.item
            return Type("list", item=item or DYN, size=size), cost + size * limits.ELEMENT_COST + errors
        if dyn:
            if op == "+":  # strings or lists of unknown size
                cost += 2 * limits.UNKNOWN_SIZE * limits.ELEMENT_COST
            return DYN, cost + errors
        if op == "%":
            if lt.kind != "int" or rt.kind != "int":
                raise self.error(f"cannot compute {lt} % {rt} (ints only)", node)
            return INT, cost + limits.ERROR_COST
        if lt.kind not in NUMERIC or rt.kind not in NUMERIC:
            raise self.error(f"cannot compute {lt} {op} {rt}", node)
        result = INT if lt.kind == rt.kind == "int" else DOUBLE
        return result, cost + (limits.ERROR_COST if op == "/" else 0)

    def visit_Logic(self, node: Logic, scope):
        cost = 0
        for operand in node.operands:
            t, c = self.visit(operand, scope)
            self.expect(t, ("bool",), operand, f"an operand of '{node.op}'")
            cost += c + limits.STEP_COST
        return BOOL, cost

    def visit_Cond(self, node: Cond, scope):
        tt, tc = self.visit(node.test, scope)
        self.expect(tt, ("bool",), node.test, "the condition before '?'")
        a, ac = self.visit(node.then, scope)
        b, bc = self.visit(node.orelse, scope)
        return _join(a, b), tc + max(ac, bc) + limits.STEP_COST

    def visit_ListExpr(self, node: ListExpr, scope):
        item, cost = None, 0
        for child in node.items:
            t, c = self.visit(child, scope)
            item = t if item is None else _join(item, t)
            cost += c
        return Type("list", item=item or DYN, size=len(node.items)), cost + len(node.items) * limits.ELEMENT_COST

    def visit_MapExpr(self, node: MapExpr, scope):
        value, cost = None, limits.STEP_COST + limits.ERROR_COST
        for k, v in node.entries:
            kt, kc = self.visit(k, scope)
            vt, vc = self.visit(v, scope)
            value = vt if value is None else _join(value, vt)
            cost += kc + vc + limits.ELEMENT_COST
        return Type("map", item=value or DYN, size=len(node.entries)), cost

    def visit_Call(self, node: Call, scope):
        name = node.function
        if node.target is None and name == "has":
            select = node.args[0]
            t, cost = self.visit(select.operand, scope)
            if t.kind == "object":
                self.select(t, select.field, select)
            elif t.kind not in ("map", "dyn"):
                raise self.error(f"has() needs a map, not {t}", select)
            return BOOL, cost + limits.STEP_COST + (limits.ERROR_COST if t.kind == "dyn" else 0)
        if node.target is not None and name in MACROS:
            return self.macro(node, scope)
        args = ([node.target] if node.target is not None else []) + list(node.args)
        typed = [self.visit(a, scope) for a in args]
        types = [t for t, _ in typed]
        cost = sum(c for _, c in typed) + limits.STEP_COST
        dyn = any(t.kind == "dyn" for t in types)
        errors = limits.ERROR_COST if dyn else 0
        if name == "dyn":
            return DYN, cost
        if name == "size":
            self.expect(types[0], ("string", "list", "map", "object"), args[0], "the argument of size()")
            return INT, cost + errors
        if name in ("contains", "startsWith", "endsWith", "matches"):
            for t, a in zip(types, args):
                self.expect(t, ("string",), a, f"{'the receiver' if a is node.target else 'the argument'} of {name}()")
            s, sub = size_of(types[0]), size_of(types[1])
            if name == "contains":
                return BOOL, cost + (s + sub) * limits.CHAR_COST + errors
            if name != "matches":
                return BOOL, cost + min(s, sub) * limits.CHAR_COST + errors
            pattern = args[1]
            if isinstance(pattern, Literal) and pattern.kind == "string":
                program = _program_size(pattern.value)
                return BOOL, cost + search_cost(s, program) + errors
            return BOOL, cost + regex_cost("x" * sub) + search_cost(s, DYNAMIC_PROGRAM_SIZE) + limits.ERROR_COST
        if name in ("min", "max"):
            if len(types) == 1:
                self.expect(types[0], ("list",), args[0], f"the argument of {name}() with one argument")
                item = types[0].item or DYN
                return (item if item.kind in NUMERIC else DYN), cost + size_of(types[0]) * limits.COMPARE_COST \
                    + limits.ERROR_COST
            for t, a in zip(types, args):
                self.expect(t, NUMERIC, a, f"an argument of {name}()")
            kinds = {t.kind for t in types}
            return (INT if kinds == {"int"} else DOUBLE if "dyn" not in kinds else DYN), cost + errors
        if name == "abs":
            self.expect(types[0], NUMERIC, args[0], "the argument of abs()")
            return (types[0] if types[0].kind in NUMERIC else DYN), cost + errors
        if name in ("ceil", "floor", "round"):
            self.expect(types[0], NUMERIC, args[0], f"the argument of {name}()")
            return INT, cost + limits.ERROR_COST
        conversions = {"int": (INT, ("int", "double", "string")), "double": (DOUBLE, ("int", "double", "string")),
                       "string": (STRING, ("int", "double", "string", "bool")), "bool": (BOOL, ("bool", "string"))}
        result, accepted = conversions[name]
        self.expect(types[0], accepted, args[0], f"the argument of {name}()")
        if name == "string":
            result = result._replace(size=size_of(types[0]) if types[0].kind in ("string", "dyn") else 32)
        return result, cost + limits.ERROR_COST

    def macro(self, node: Call, scope):
        from engine.expr.compiler import iteration_cost

        t, cost = self.visit(node.target, scope)
        if t.kind == "list":
            element = t.item or DYN
        elif t.kind in ("map", "object"):
            element = STRING
        elif t.kind == "dyn":
            element = DYN
        else:
            raise self.error(f"{node.function}() needs a list or a map, not {t}", node.target)
        inner = {**scope, node.args[0].name: element}
        bodies = [self.visit(a, inner) for a in node.args[1:]]
        predicates = bodies if node.function != "map" else bodies[:-1]
        for (bt, _), arg in zip(predicates, node.args[1:]):
            self.expect(bt, ("bool",), arg, f"the condition of {node.function}()")
        n = size_of(t)
        per_item = iteration_cost(node) + limits.STEP_COST + sum(c for _, c in bodies)
        cost += limits.STEP_COST + limits.ERROR_COST + n * per_item
        if node.function == "map":
            return Type("list", item=bodies[-1][0], size=n), cost
        if node.function == "filter":
            return Type("list", item=element, size=n), cost
        return BOOL, cost


def _program_size(pattern: str) -> int:
    from engine.expr.functions import _regex

    return _regex(pattern).programsize


def check(source: str, variables: Mapping[str, Type], *, expect: Iterable[str] | None = None,
          what: str = "the expression", budget: int | None = None) -> Checked:
    """Type-check ``source`` against ``variables`` (name → :class:`~engine.expr.types.Type`) and bound its cost.

    ``expect``: the kinds the result may have (``("bool",)`` for a condition; ``dyn`` always passes), named
    ``what`` in the message. Raises :class:`~engine.expr.ExprSyntaxError` (syntax, unknown names),
    :class:`~engine.expr.ExprTypeError` or, when the bound is over ``budget`` (default: the evaluation
    budget), :class:`~engine.expr.ExprCostError` — each with the position of the culprit."""
    from engine.expr.compiler import Compiler
    from engine.expr.syntax import parse

    tree = parse(source)
    Compiler(source, variables).check(tree)  # names, functions, arities, literal patterns
    checker = Checker(source, variables)
    try:
        t, cost = checker.visit(tree, {})
    except RecursionError:  # pragma: no cover - the parser's depth limit comes first
        raise ExprTypeError("expression is too complex", source, 0) from None
    if expect is not None:
        kinds = tuple(expect)
        if t.kind != "dyn" and t.kind not in kinds and not (t.kind == "int" and "double" in kinds):
            want = " or ".join("a number" if k == "double" else "true or false" if k == "bool" else k for k in kinds)
            raise ExprTypeError(f"{what} must give {want}, but gives {t}", source, _first_pos(tree))
    limit = limits.MAX_COST if budget is None else budget
    if cost > limit:
        raise ExprCostError(f"{what} could cost {cost:,} units in the worst case, more than the budget of "
                            f"{limit:,} (see 'Cost' in docs/expressions.md)", source, _costliest(tree, checker, cost),
                            cost)
    return Checked(t, cost)


def _first_pos(node: Node) -> int:
    while node.children():
        node = node.children()[0]
    return node.pos


def _costliest(tree: Node, checker: Checker, total: int) -> int:
    """Where to point at an expression that costs too much: its first macro, else its start."""
    stack = [tree]
    while stack:
        node = stack.pop(0)
        if isinstance(node, Call) and node.target is not None and node.function in MACROS:
            return node.pos
        stack.extend(node.children())
    return _first_pos(tree)
