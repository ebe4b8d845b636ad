"""Syntax tree to Python: checks names and functions, then writes one Python module per expression.

The module has two functions over the bindings ``B``:

``evaluate`` -- the fast path: one Python expression with the operators inlined. Where CEL and Python
    differ (``true == 1``, ``[1] < [2]``, ``"a" * 3``, int overflow, ...) it checks the types it cannot know
    statically and calls a runtime helper or gives up (``_X()``). Whenever it returns, the value is the CEL
    result; when it raises anything, it hands over to

``_careful`` -- every operation is a call to its reference implementation (:mod:`engine.expr.runtime`,
    :mod:`engine.expr.macros`, :mod:`engine.expr.functions`);
    ``&&``, ``||`` and the macros absorb errors as CEL says; errors carry the position of the operation.

Nothing from the expression's text reaches the Python source except through ``repr()`` of a literal value
(strings, numbers, map keys, field names); identifiers become ``B['name']`` lookups or generated local
names (``_v1``). So an expression cannot reach Python attributes, builtins or imports.
"""

from __future__ import annotations

from typing import Any, Iterable

from engine.expr import functions, limits, macros, runtime
from engine.expr.errors import ExprSyntaxError, UnknownNameError
from engine.expr.functions import FUNCTIONS, MACROS
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

INT_MIN = runtime.INT_MIN
INT_MAX = runtime.INT_MAX
# Where generated code imports each helper from (the first module that defines it).
HELPER_MODULES = (runtime, macros, functions)
NUMERIC = ("int", "double")


_OPS = {"+": "_add", "-": "_sub", "*": "_mul", "/": "_div", "%": "_mod",
        "<": "_lt", "<=": "_le", ">": "_gt", ">=": "_ge", "==": "_eq", "!=": "_ne", "in": "_in"}


def _exact(node: Node) -> bool:
    """A numeric literal that compares with any int or double the same way whether the int is converted
    to double first (CEL) or not (Python): its magnitude is below 2**53."""
    if not isinstance(node, Literal) or node.kind not in NUMERIC:
        return False
    v = node.value
    return abs(v) <= 2**53 if node.kind == "int" else not (2.0**53 <= abs(v) < runtime._INF)


def _literal(value: Any) -> str:
    """Python source for a literal value (the only way text from an expression enters the module)."""
    if value is None or value is True or value is False:
        return repr(value)
    if value.__class__ is int:
        return repr(value) if value >= 0 else f"({value!r})"
    if value.__class__ is float:
        if value != value:
            return "_NAN"
        if value in (runtime._INF, -runtime._INF):
            return "_INF" if value > 0 else "(-_INF)"
        return repr(value) if value >= 0 and str(value)[0] != "-" else f"({value!r})"
    if value.__class__ is str:
        return repr(value)
    raise TypeError(f"not a literal: {value!r}")  # pragma: no cover


class Compiler:
    """One expression: ``compile_tree`` returns the Python module's text and the free names."""

    def __init__(self, source: str, allowed: Iterable[str] | None = None):
        self.source = source
        self.allowed = None if allowed is None else frozenset(allowed)
        self.free: dict[str, None] = {}
        self.helpers: set[str] = set()
        self.constants: list[str] = []  # module-level definitions (compiled regular expressions)
        self.patterns: dict[str, str] = {}  # pattern -> its name among the constants
        self.counter = 0
        self.budget = False  # does the fast path charge a cost budget (macros, operations on sizes)?

    # --- errors and names --------------------------------------------------------------------------------

    def error(self, message: str, node: Node) -> ExprSyntaxError:
        return ExprSyntaxError(message, self.source, node.pos)

    def temp(self) -> str:
        self.counter += 1
        return f"_t{self.counter}"

    def use(self, *helpers: str) -> None:
        self.helpers.update(helpers)

    def metered(self) -> str:
        """The name of the evaluation's budget, for a helper that charges it."""
        self.budget = True
        return "_m"

    # --- checking: names, functions, macros ---------------------------------------------------------------

    def check(self, node: Node, scope: frozenset[str] = frozenset()) -> None:
        if isinstance(node, Literal):
            if node.kind == "int" and not INT_MIN <= node.value <= INT_MAX:
                raise self.error("integer literal out of range (64-bit signed)", node)
            if node.kind == "double" and node.value in (runtime._INF, -runtime._INF):
                raise self.error("double literal out of range", node)
            return
        if isinstance(node, Ident):
            if node.name not in scope:
                if self.allowed is not None and node.name not in self.allowed:
                    known = ", ".join(sorted(self.allowed)) or "none"
                    raise UnknownNameError(f"unknown name '{node.name}' (known names: {known})",
                                           self.source, node.pos, node.name)
                self.free.setdefault(node.name, None)
            return
        if isinstance(node, Call):
            self.check_call(node, scope)
            return
        for child in node.children():
            self.check(child, scope)

    def check_call(self, node: Call, scope: frozenset[str]) -> None:
        name = node.function
        nargs = len(node.args)
        if node.target is None and name == "has":
            if nargs != 1 or not isinstance(node.args[0], Select):
                raise self.error("has() takes one field selection, as in has(m.field)", node)
            self.check(node.args[0], scope)
            return
        if node.target is not None and name in MACROS:
            if nargs not in MACROS[name]:
                counts = " or ".join(str(n) for n in MACROS[name])
                raise self.error(f"{name}() takes {counts} arguments: a variable name, then expressions", node)
            var = node.args[0]
            if not isinstance(var, Ident):
                raise self.error(f"the first argument of {name}() must be a variable name", var)
            self.check(node.target, scope)
            for arg in node.args[1:]:
                self.check(arg, scope | {var.name})
            return
        function = FUNCTIONS.get(name)
        if function is None:
            what = "method" if node.target is not None else "function"
            raise self.error(f"unknown {what} '{name}'", node)
        if node.target is not None:
            if nargs not in function.method_arities:
                if not function.method_arities:
                    raise self.error(f"'{name}' is not a method; call it as {name}(...)", node)
                raise self.error(f"{name}() as a method takes {_count(function.method_arities)}", node)
            self.check(node.target, scope)
        elif function.varargs:
            if nargs < 1:
                raise self.error(f"{name}() needs at least one argument", node)
        elif nargs not in function.arities:
            if not function.arities:
                raise self.error(f"'{name}' is a method; call it as x.{name}(...)", node)
            raise self.error(f"{name}() takes {_count(function.arities)}", node)
        for arg in node.args:
            self.check(arg, scope)
        pattern = node.args[-1] if name == "matches" else None
        if isinstance(pattern, Literal) and pattern.kind == "string":
            try:
                functions._regex(pattern.value)
            except Exception as e:
                raise self.error(getattr(e, "message", str(e)), pattern) from None

    # --- the fast path ---------------------------------------------------------------------------------

    def fast(self, node: Node, scope: dict[str, str]) -> tuple[str, str]:
        """(Python expression, static kind) that yields the CEL value or raises."""
        method = getattr(self, "fast_" + type(node).__name__)
        return method(node, scope)

    def fast_Literal(self, node: Literal, scope):
        return _literal(node.value), node.kind

    def fast_Ident(self, node: Ident, scope):
        if node.name in scope:
            return scope[node.name], "dyn"
        return f"B[{node.name!r}]", "dyn"

    def fast_Select(self, node: Select, scope):
        # A dict lookup by a str key: only a map has it (list, str, int, ... raise TypeError -> careful path).
        operand, _ = self.fast(node.operand, scope)
        return f"{operand}[{node.field!r}]", "dyn"

    def fast_Index(self, node: Index, scope):
        operand, _ = self.fast(node.operand, scope)
        index, index_kind = self.fast(node.index, scope)
        if index_kind == "string":
            return f"{operand}[{index}]", "dyn"
        if isinstance(node.index, Literal) and node.index.kind == "int" and node.index.value >= 0:
            t = self.temp()
            self.use("_index")
            return f"({t}[{index}] if ({t} := {operand}).__class__ is list else _index({t}, {index}))", "dyn"
        self.use("_index")
        return f"_index({operand}, {index})", "dyn"

    def fast_Unary(self, node: Unary, scope):
        operand, k = self.fast(node.operand, scope)
        if node.op == "!":
            if k == "bool":
                return f"(not {operand})", "bool"
            t = self.temp()
            self.use("_X")
            return f"(not {t} if ({t} := {operand}).__class__ is bool else _X())", "bool"
        if k == "int":
            t = self.temp()
            self.use("_X")
            return f"({t} if ({t} := -{operand}) <= {INT_MAX} else _X())", "int"
        if k == "double":
            return f"(-{operand})", "double"
        self.use("_neg")
        return f"_neg({operand})", "dyn"

    def fast_Binary(self, node: Binary, scope):
        op = node.op
        if op in ("==", "!="):
            return self.fast_equality(node, scope)
        if op == "in":
            return self.fast_in(node, scope)
        left, lk = self.fast(node.left, scope)
        right, rk = self.fast(node.right, scope)
        if op in ("<", "<=", ">", ">="):
            exact = _exact(node.left) or _exact(node.right)
            return self.fast_order(op, left, lk, right, rk, exact), "bool"
        # arithmetic
        if lk == "int" and rk == "int":
            if op in ("+", "-", "*"):
                t = self.temp()
                self.use("_X")
                return f"({t} if {INT_MIN} <= ({t} := {left} {op} {right}) <= {INT_MAX} else _X())", "int"
            helper = _OPS[op]
            self.use(helper)
            return f"{helper}({left}, {right})", "int"
        if lk in NUMERIC and rk in NUMERIC and op in ("+", "-", "*", "/"):
            # double arithmetic (int operands promote: the documented deviation); x / 0.0 raises
            # ZeroDivisionError in Python, and the careful path gives IEEE's inf or nan.
            return f"({left} {op} {right})", "double"
        helper = _OPS[op]
        self.use(helper)
        if op == "+":
            self.metered()
            kind = lk if lk == rk and lk in ("string", "list") else "dyn"
            if kind == "dyn" and "string" not in (lk, rk) and "list" not in (lk, rk):
                # Counting things (`count.system + count.layer`) is the common case: ints add inline, the
                # helper takes everything else. `&` evaluates both operands, so both temporaries are bound.
                a, b, r = self.temp(), self.temp(), self.temp()
                return (f"({r} if (({a} := {left}).__class__ is int) & (({b} := {right}).__class__ is int) "
                        f"and {INT_MIN} <= ({r} := {a} + {b}) <= {INT_MAX} else _add({a}, {b}, _m))"), kind
            return f"_add({left}, {right}, _m)", kind
        # The helpers start with the common numeric cases, so a call is nearly as fast as inline checks.
        return f"{helper}({left}, {right})", "dyn"

    def fast_order(self, op: str, left: str, lk: str, right: str, rk: str, exact: bool) -> str:
        # Python compares int with float exactly, CEL as doubles: the same unless a number beyond 2**53
        # meets one of the other type, so mixed comparisons are inlined only against small literals.
        if (lk == rk and lk in ("int", "double", "string", "bool")) or (lk in NUMERIC and rk in NUMERIC and exact):
            return f"({left} {op} {right})"
        if "string" in (lk, rk) and "dyn" in (lk, rk):
            # str against anything but str raises TypeError in Python: no guard needed
            return f"({left} {op} {right})"
        if exact and ((lk in NUMERIC and rk == "dyn") or (rk in NUMERIC and lk == "dyn")):
            # Python orders bool with numbers; CEL does not. Strings, lists, null... raise TypeError.
            t = self.temp()
            self.use("_X")
            if lk == "dyn":
                return f"({t} {op} {right} if ({t} := {left}).__class__ is not bool else _X())"
            return f"({left} {op} {t} if ({t} := {right}).__class__ is not bool else _X())"
        if "bool" in (lk, rk) and "dyn" in (lk, rk):
            t = self.temp()
            self.use("_X")
            if lk == "dyn":
                return f"({t} {op} {right} if ({t} := {left}).__class__ is bool else _X())"
            return f"({left} {op} {t} if ({t} := {right}).__class__ is bool else _X())"
        helper = _OPS[op]
        self.use(helper)
        return f"{helper}({left}, {right})"

    def fast_equality(self, node: Binary, scope):
        negate = node.op == "!="
        left, lk = self.fast(node.left, scope)
        right, rk = self.fast(node.right, scope)
        py = "!=" if negate else "=="
        if isinstance(node.left, Literal) and isinstance(node.right, Literal):
            return repr(runtime._eq(node.left.value, node.right.value) != negate), "bool"
        exact = _exact(node.left) or _exact(node.right)
        if (lk == rk and lk in ("int", "double", "string", "bool")) or (lk in NUMERIC and rk in NUMERIC and exact):
            return f"({left} {py} {right})", "bool"
        for lit, other, other_kind in ((node.left, right, rk), (node.right, left, lk)):
            if not isinstance(lit, Literal) or (lit.kind in NUMERIC and not _exact(lit)):
                continue
            if lit.kind == "null" or (lit.kind == "bool"):
                return f"({other} {'is not' if negate else 'is'} {_literal(lit.value)})", "bool"
            if lit.kind == "string" or (lit.kind in NUMERIC and lit.value not in (0, 1)):
                # str equals only str; a number other than 0 and 1 cannot equal a bool in Python either
                return f"({other} {py} {_literal(lit.value)})", "bool"
            if lit.kind in NUMERIC:
                t = self.temp()
                return (f"({t} {py} {_literal(lit.value)} if ({t} := {other}).__class__ is not bool "
                        f"else {negate})"), "bool"
        a, b = self.temp(), self.temp()
        helper = "_ne" if negate else "_eq"
        self.use(helper, "_SIMPLE")
        return (f"({a} {py} {b} if ({a} := {left}).__class__ is ({b} := {right}).__class__ "
                f"and {a}.__class__ in _SIMPLE else {helper}({a}, {b}, {self.metered()}))"), "bool"

    def fast_in(self, node: Binary, scope):
        item, _ = self.fast(node.left, scope)
        container = node.right
        if isinstance(container, ListExpr) and container.items and all(
            isinstance(i, Literal) and (i.kind == "string" or _exact(i)) for i in container.items
        ):
            values = [i.value for i in container.items]
            if len(values) >= 4 and all(v == v for v in values):
                literal = "{" + ", ".join(_literal(v) for v in values) + "}"
            else:
                literal = "(" + "".join(_literal(v) + ", " for v in values) + ")"
            if all(isinstance(v, str) for v in values):
                return f"({item} in {literal})", "bool"
            t = self.temp()
            return f"({t} in {literal} if ({t} := {item}).__class__ is not bool else False)", "bool"
        right, _ = self.fast(container, scope)
        self.use("_in")
        return f"_in({item}, {right}, {self.metered()})", "bool"

    def fast_bool(self, node: Node, scope) -> str:
        code, k = self.fast(node, scope)
        if k == "bool":
            return code
        self.use("_X")
        if k == "dyn":
            t = self.temp()
            return f"({t} if ({t} := {code}).__class__ is bool else _X())"
        return "_X()"

    def fast_Logic(self, node: Logic, scope):
        # Python's and/or stop at the first false/true operand, which also decides CEL's result; an
        # operand that raises before that sends the whole expression down the careful path.
        joiner = " and " if node.op == "&&" else " or "
        return "(" + joiner.join(self.fast_bool(o, scope) for o in node.operands) + ")", "bool"

    def fast_Cond(self, node: Cond, scope):
        test, tk = self.fast(node.test, scope)
        then, k1 = self.fast(node.then, scope)
        orelse, k2 = self.fast(node.orelse, scope)
        kind = k1 if k1 == k2 else "dyn"
        if tk == "bool":
            return f"({then} if {test} else {orelse})", kind
        t = self.temp()
        self.use("_X")
        return f"({then} if ({t} := {test}) is True else {orelse} if {t} is False else _X())", kind

    def fast_ListExpr(self, node: ListExpr, scope):
        return "[" + ", ".join(self.fast(i, scope)[0] for i in node.items) + "]", "list"

    def fast_MapExpr(self, node: MapExpr, scope):
        keys = [k for k, _ in node.entries]
        if all(isinstance(k, Literal) and k.kind == "string" for k in keys) and len({k.value for k in keys}) == len(
            keys
        ):
            items = ", ".join(f"{_literal(k.value)}: {self.fast(v, scope)[0]}" for k, v in node.entries)
            return "{" + items + "}", "map"
        self.use("_map")
        ks = ", ".join(self.fast(k, scope)[0] for k in keys)
        vs = ", ".join(self.fast(v, scope)[0] for _, v in node.entries)
        return f"_map([{ks}], [{vs}])", "map"

    def fast_Call(self, node: Call, scope):
        name = node.function
        if node.target is None and name == "has":
            select = node.args[0]
            operand, _ = self.fast(select.operand, scope)
            t = self.temp()
            self.use("_has")
            field = repr(select.field)
            return f"({field} in {t} if ({t} := {operand}).__class__ is dict else _has({t}, {field}))", "bool"
        if node.target is not None and name in MACROS:
            return self.macro(node, scope, fast=True)
        function = FUNCTIONS[name]
        args = ([node.target] if node.target is not None else []) + node.args
        codes = [self.fast(a, scope) for a in args]
        if name == "dyn":
            return codes[0][0], codes[0][1]
        if name == "size":
            self.use("_len")
            return f"_len({codes[0][0]})", "int"
        if name in ("contains", "startsWith", "endsWith") and isinstance(args[1], Literal) and args[1].kind == "string":
            # Searching a short string costs less than a node: inline; longer ones are charged by the helper.
            t = self.temp()
            target, sub = codes[0][0], codes[1][0]
            test = {"contains": f"{sub} in {t}", "startsWith": f"{t}.startswith({sub})",
                    "endsWith": f"{t}.endswith({sub})"}[name]
            self.use(function.helper, "_len")
            short = limits.NODE_COST // max(limits.CHAR_COST, 1)
            return (f"({test} if ({t} := {target}).__class__ is str and _len({t}) <= {short} "
                    f"else {function.helper}({t}, {sub}, {self.metered()}))"), "bool"
        if name == "matches" and isinstance(args[1], Literal) and args[1].kind == "string":
            pattern = self.regex_constant(args[1].value)
            self.use("_matches_re")
            return f"_matches_re({codes[0][0]}, {pattern}, {self.metered()})", "bool"
        if name in ("min", "max") and len(codes) == 2:
            a, b = self.temp(), self.temp()
            self.use(function.helper, "_NUMS", "_NAN")
            le, lt = ("<=", "<") if name == "min" else (">=", ">")
            # the first of equal values; NaN when they do not compare (as the helper does)
            if all(k in NUMERIC for _, k in codes):
                return (f"({a} if ({a} := {codes[0][0]}) {le} ({b} := {codes[1][0]}) "
                        f"else {b} if {b} {lt} {a} else _NAN)"), "dyn"
            # `&` (not `and`) so that both operands are always evaluated and assigned
            guard = f"(({a} := {codes[0][0]}).__class__ in _NUMS) & (({b} := {codes[1][0]}).__class__ in _NUMS)"
            pick = f"({a} if {a} {le} {b} else {b} if {b} {lt} {a} else _NAN)"
            return f"({pick} if {guard} else {function.helper}({a}, {b}))", "dyn"
        self.use(function.helper)
        if function.metered:
            codes.append((f"m={self.metered()}", ""))
        return f"{function.helper}({', '.join(c for c, _ in codes)})", function.kind

    def regex_constant(self, pattern: str) -> str:
        """The module-level name of ``pattern`` compiled once, when the program is loaded."""
        name = self.patterns.get(pattern)
        if name is None:
            name = self.patterns[pattern] = f"_P{len(self.constants) + 1}"
            self.use("_regex")
            self.constants.append(f"{name} = _regex({_literal(pattern)})")
        return name

    # --- macros (both paths) -----------------------------------------------------------------------------

    def macro(self, node: Call, scope, fast: bool):
        self.metered()
        name = node.function
        var = node.args[0].name
        self.counter += 1
        py = f"_v{self.counter}"
        inner = {**scope, var: py}
        target = self.fast(node.target, scope)[0] if fast else self.careful(node.target, scope)
        bodies = [self.fast(a, inner)[0] if fast else self.careful(a, inner) for a in node.args[1:]]
        # Charged per element before the first iteration: the body's nodes and what it builds (a careful
        # body's operations also charge themselves as they run).
        units = iteration_cost(node)
        if not fast:
            units += limits.STEP_COST
        suffix = "_f" if fast else "_c"
        base = "_map3" if name == "map" and len(bodies) == 2 else "_" + name
        helper = base + suffix
        self.use(helper)
        lambdas = ", ".join(f"lambda {py}: {b}" for b in bodies)
        call = f"{helper}(_m, {target}, {units}, {lambdas})"
        kind = "list" if name in ("map", "filter") else "bool"
        if fast:
            return call, kind
        self.use("_at")
        return f"_at(_m, {node.pos}, {helper}, _m, {target}, {units}, {lambdas})", kind

    # --- the careful path --------------------------------------------------------------------------------

    def careful(self, node: Node, scope: dict[str, str]) -> str:
        """A Python expression in which every operation calls its runtime helper."""
        method = getattr(self, "careful_" + type(node).__name__)
        return method(node, scope)

    def at(self, node: Node, helper: str, *args: str) -> str:
        self.use("_at", helper)
        return f"_at(_m, {node.pos}, {helper}, {', '.join(args)})"

    def careful_Literal(self, node: Literal, scope):
        return _literal(node.value)

    def careful_Ident(self, node: Ident, scope):
        if node.name in scope:
            return scope[node.name]
        return self.at(node, "_var", "B", repr(node.name))

    def careful_Select(self, node: Select, scope):
        return self.at(node, "_select", self.careful(node.operand, scope), repr(node.field))

    def careful_Index(self, node: Index, scope):
        return self.at(node, "_index", self.careful(node.operand, scope), self.careful(node.index, scope))

    def careful_Unary(self, node: Unary, scope):
        return self.at(node, "_not" if node.op == "!" else "_neg", self.careful(node.operand, scope))

    def careful_Binary(self, node: Binary, scope):
        left = self.careful(node.left, scope)
        right = self.careful(node.right, scope)
        if node.op in ("+", "==", "!=", "in"):
            return self.at(node, _OPS[node.op], left, right, "_m")
        return self.at(node, _OPS[node.op], left, right)

    def careful_Logic(self, node: Logic, scope):
        helper = "_and" if node.op == "&&" else "_or"
        self.use(helper)
        return f"{helper}(" + ", ".join(f"lambda: {self.careful(o, scope)}" for o in node.operands) + ")"

    def careful_Cond(self, node: Cond, scope):
        test = self.at(node, "_test", self.careful(node.test, scope))
        return f"({self.careful(node.then, scope)} if {test} else {self.careful(node.orelse, scope)})"

    def careful_ListExpr(self, node: ListExpr, scope):
        return "[" + ", ".join(self.careful(i, scope) for i in node.items) + "]"

    def careful_MapExpr(self, node: MapExpr, scope):
        keys = ", ".join(self.careful(k, scope) for k, _ in node.entries)
        values = ", ".join(self.careful(v, scope) for _, v in node.entries)
        return self.at(node, "_map", f"[{keys}]", f"[{values}]")

    def careful_Call(self, node: Call, scope):
        name = node.function
        if node.target is None and name == "has":
            select = node.args[0]
            return self.at(select, "_has", self.careful(select.operand, scope), repr(select.field))
        if node.target is not None and name in MACROS:
            return self.macro(node, scope, fast=False)[0]
        function = FUNCTIONS[name]
        args = ([node.target] if node.target is not None else []) + node.args
        codes = [self.careful(a, scope) for a in args]
        if name == "dyn":
            return codes[0]
        if name == "matches" and isinstance(args[1], Literal) and args[1].kind == "string":
            return self.at(node, "_matches_re", codes[0], self.regex_constant(args[1].value), "_m")
        if function.metered:
            codes.append("m=_m")
        return self.at(node, function.helper, *codes)

    # --- the module ----------------------------------------------------------------------------------------

    def imports(self) -> list[str]:
        by_module: dict[str, list[str]] = {}
        for helper in sorted(self.helpers):
            by_module.setdefault(_home(helper), []).append(helper)
        return [f"from {module} import {', '.join(names)}" for module, names in sorted(by_module.items())]

    def compile_tree(self, tree: Node) -> tuple[str, frozenset[str]]:
        self.check(tree)
        fast, _kind = self.fast(tree, {})
        careful = self.careful(tree, {})
        self.use("_recover", "_EMPTY", "_new_budget")
        names = tuple(self.free)
        lines = [
            "# A compiled ctxbudget expression (engine.expr); generated code, do not edit.",
            "# Program.from_python runs it with _SOURCE (the expression's text) defined and no builtins.",
            *self.imports(),
            f"FORMAT = {runtime.FORMAT}",
            f"NAMES = {names!r}",
            *self.constants,
            "",
            "",
            "def _careful(B):",
            "    _m = _new_budget()",
            f"    return {careful}",
            "",
            "",
            "def evaluate(B=_EMPTY):",
            *(["    _m = _new_budget()"] if self.budget else []),
            "    try:",
            f"        return {fast}",
            "    except Exception as e:",
            "        return _recover(e, _careful, B, _SOURCE)",
            "",
        ]
        return "\n".join(lines), frozenset(names)


def _home(helper: str) -> str:
    for module in HELPER_MODULES:
        if helper in vars(module):
            return module.__name__
    raise LookupError(helper)  # pragma: no cover - a compiler bug


def _count(arities: tuple[int, ...]) -> str:
    text = " or ".join(str(n) for n in arities)
    return f"{text} argument" + ("" if arities == (1,) else "s")


def iteration_cost(node: Call) -> int:
    """What one iteration of the macro ``node`` is charged before it starts: each node of its body (nested
    macros charge their own iterations) and each element built by literals in it and by the macro itself."""
    body = node.args[1:]
    built = 1 if node.function in ("map", "filter") else 0
    return (limits.NODE_COST * (1 + sum(_nodes(a) for a in body))
            + limits.ELEMENT_COST * (built + sum(_allocations(a) for a in body)))


def _nodes(node: Node) -> int:
    """Nodes of ``node`` evaluated each time it is (not counting the bodies of nested macros)."""
    if isinstance(node, Call) and node.target is not None and node.function in MACROS:
        return 1 + _nodes(node.target)
    return 1 + sum(_nodes(c) for c in node.children())


def _allocations(node: Node) -> int:
    """Elements that list and map literals in ``node`` build each time it is evaluated (not counting
    nested macros, which charge their own work)."""
    if isinstance(node, Call) and node.target is not None and node.function in MACROS:
        return _allocations(node.target)
    total = 0
    if isinstance(node, ListExpr):
        total += len(node.items)
    elif isinstance(node, MapExpr):
        total += len(node.entries)
    return total + sum(_allocations(c) for c in node.children())


def compile_source(source: str, names: Iterable[str] | None = None) -> tuple[str, frozenset[str]]:
    """Parse and compile an expression: (the Python module's text, the free names it uses)."""
    from engine.expr.syntax import parse

    tree = parse(source)
    return Compiler(source, names).compile_tree(tree)
