"""Syntax tree to Python: checks names and functions, then writes one Python module per expression.

One generator. Each operation becomes a statement that computes it the fast way Python can, with the type checks
it cannot know statically, and hands the same operand values to its reference implementation
(:mod:`engine.expr.runtime`, :mod:`engine.expr.macros`, :mod:`engine.expr.functions`) when the fast way does not
apply or raises::

    try:
        _t3 = _t1[_t2] if _t1.__class__ is list else _index(_t1, _t2)
    except Exception as e:
        _t3 = _fix(e, 14, _index, _t1, _t2)      # the CEL result, or an EvaluationError at offset 14

Where CEL absorbs errors the generated code says so explicitly: ``&&`` and ``||`` evaluate their operands in
``try`` blocks and decide as CEL's commutative rules say (:func:`engine.expr.runtime._absorb`); ``?:`` is an
``if``; macros call :mod:`engine.expr.macros` with their body as a local function (``all`` and ``exists`` absorb
errors of single elements). Deep nesting is split into local functions so Python's block limits hold.

Nothing from the expression's text reaches the Python source except through ``repr()`` of a literal value
(strings, numbers, map keys, field names); identifiers become ``B['name']`` lookups or generated local
names (``_v1``). So an expression cannot reach Python attributes, builtins or imports.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
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
from engine.expr.writer import Writer

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


class Compiler(Writer):
    """One expression: ``compile_tree`` returns the Python module's text and the free names."""

    def __init__(self, source: str, allowed: Iterable[str] | None = None):
        super().__init__()
        self.source = source
        self.allowed = None if allowed is None else frozenset(allowed)
        self.free: dict[str, None] = {}
        self.constants: list[str] = []  # module-level definitions (compiled regular expressions)
        self.patterns: dict[str, str] = {}  # pattern -> its name among the constants
        self.macros = 0  # macro bodies being written (errors absorbed there are charged)

    # --- errors and names --------------------------------------------------------------------------------

    def error(self, message: str, node: Node) -> ExprSyntaxError:
        return ExprSyntaxError(message, self.source, node.pos)

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
                self.check_free(node)
            return
        if isinstance(node, Call):
            self.check_call(node, scope)
            return
        for child in node.children():
            self.check(child, scope)

    def check_free(self, node: Ident) -> None:
        """A variable read from the bindings: one of the allowed names."""
        if self.allowed is not None and node.name not in self.allowed:
            known = ", ".join(sorted(self.allowed)) or "none"
            raise UnknownNameError(f"unknown name '{node.name}' (known names: {known})", self.source, node.pos, node.name)
        self.free.setdefault(node.name, None)

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

    # --- operations --------------------------------------------------------------------------------------

    def expr(self, node: Node, scope: dict[str, str]) -> tuple[str, str]:
        """(code, static kind): code is a name, a literal or an expression of names that cannot raise."""
        if isinstance(node, (Logic, Cond)) and (self.fn.level > _MAX_LEVEL or self.fn.tries > _MAX_TRIES):
            kind = []
            name = self.local("", lambda: _keep(kind, getattr(self, "gen_" + type(node).__name__)(node, scope)))
            return self.op(node, f"{name}()"), kind[0]
        return getattr(self, "gen_" + type(node).__name__)(node, scope)

    def gen_Literal(self, node: Literal, scope):
        code = _literal(node.value)
        if node.kind == "int" and code[0] != "(":
            code = f"({code})"  # so that `(2).__class__` is Python
        return code, node.kind

    def gen_Ident(self, node: Ident, scope):
        if node.name in scope:
            return scope[node.name], "dyn"
        t = self.temp()
        self.pending.append((t, f"B[{node.name!r}]", ("_path", str(node.pos), "B", repr(node.name), str(node.pos), "()")))
        return t, "dyn"

    def gen_Select(self, node: Select, scope):
        # A lookup by a str key: a map has it, anything else raises (and the reference semantics, _path, says
        # what is wrong and where). A chain of selections from a variable is one lookup: `B['a']['b']`.
        fields: list[Select] = []
        base: Node = node
        while isinstance(base, Select):
            fields.append(base)
            base = base.operand
        fields.reverse()
        if isinstance(base, Ident) and base.name not in scope:
            self.check_free(base)
            start, var, offset = "B", repr(base.name), base.pos
            inline = f"B[{var}]"
        else:
            start = self.atom(self.expr(base, scope)[0])
            var, offset, inline = "None", base.pos, start
        inline += "".join(f"[{f.field!r}]" for f in fields)
        steps = "(" + "".join(f"({f.field!r}, {f.pos}), " for f in fields) + ")"
        t = self.temp()
        self.pending.append((t, inline, ("_path", str(node.pos), start, var, str(offset), steps)))
        return t, "dyn"

    def gen_Index(self, node: Index, scope):
        o = self.atom(self.expr(node.operand, scope)[0])
        i, ik = self.expr(node.index, scope)
        i = self.atom(i)
        if ik == "string":
            return self.op(node, f"{o}[{i}]", "_index", o, i), "dyn"
        self.use("_index")
        if isinstance(node.index, Literal) and node.index.kind == "int" and node.index.value >= 0:
            return self.op(node, f"{o}[{i}] if {o}.__class__ is list else _index({o}, {i})", "_index", o, i), "dyn"
        return self.op(node, f"_index({o}, {i})", "_index", o, i), "dyn"

    def gen_Unary(self, node: Unary, scope):
        a, k = self.expr(node.operand, scope)
        a = self.atom(a)
        if node.op == "!":
            if k == "bool":
                return f"(not {a})", "bool"
            self.use("_not")
            return self.op(node, f"(not {a}) if {a}.__class__ is bool else _not({a})", "_not", a), "bool"
        self.use("_neg")
        if k == "int":
            return self.op(node, f"-{a} if {a} != {INT_MIN} else _neg({a})", "_neg", a), "int"
        if k == "double":
            return f"(-{a})", "double"
        return self.op(node, f"_neg({a})", "_neg", a), "dyn"

    def gen_Binary(self, node: Binary, scope):
        op = node.op
        if op == "in":
            return self.gen_in(node, scope)
        a, lk = self.expr(node.left, scope)
        b, rk = self.expr(node.right, scope)
        a, b = self.atom(a), self.atom(b)
        helper = _OPS[op]
        if op in ("==", "!="):
            return self.gen_equality(node, a, lk, b, rk), "bool"
        if op in ("<", "<=", ">", ">="):
            exact = _exact(node.left) or _exact(node.right)
            if _comparable(lk, rk, exact):  # cannot raise
                return f"({a} {op} {b})", "bool"
            return self.op(node, self.order(op, a, lk, b, rk, exact), helper, a, b), "bool"
        if lk == "int" and rk == "int":
            self.use(helper)
            if op in ("+", "-", "*"):
                t = self.temp()
                inline = f"{t} if {INT_MIN} <= ({t} := {a} {op} {b}) <= {INT_MAX} else {helper}({a}, {b})"
                return self.op(node, inline), "int"
            return self.op(node, f"{helper}({a}, {b})", helper, a, b), "int"
        if lk in NUMERIC and rk in NUMERIC and op in ("+", "-", "*", "/"):
            # double arithmetic (int operands promote: the documented deviation); x / 0.0 raises
            # ZeroDivisionError in Python, and _div gives IEEE's inf or nan.
            return self.op(node, f"{a} {op} {b}", helper, a, b), "double"
        self.use(helper)
        if op == "+":
            m = self.metered()
            kind = lk if lk == rk and lk in ("string", "list") else "dyn"
            if kind == "dyn" and "string" not in (lk, rk) and "list" not in (lk, rk):
                # Counting things (`count.system + count.layer`) is the common case: ints add inline.
                r = self.temp()
                inline = (f"{r} if {a}.__class__ is int and {b}.__class__ is int "
                          f"and {INT_MIN} <= ({r} := {a} + {b}) <= {INT_MAX} else _add({a}, {b}, {m})")
                return self.op(node, inline, "_add", a, b, m), kind
            return self.op(node, f"_add({a}, {b}, {m})", "_add", a, b, m), kind
        # The helpers start with the common numeric cases, so a call is nearly as fast as inline checks.
        return self.op(node, f"{helper}({a}, {b})", helper, a, b), "dyn"

    def order(self, op: str, a: str, lk: str, b: str, rk: str, exact: bool) -> str:
        # Python compares int with float exactly, CEL as doubles: the same unless a number beyond 2**53
        # meets one of the other type, so mixed comparisons are inlined only against small literals.
        # Whatever raises TypeError (str against a number, ...) is left to the helper by ``op``.
        helper = _OPS[op]
        self.use(helper)
        if _comparable(lk, rk, exact):
            return f"{a} {op} {b}"
        if "string" in (lk, rk) and "dyn" in (lk, rk):
            # str against anything but str raises TypeError in Python, which hands over to the helper
            return f"{a} {op} {b}"
        if exact and ((lk in NUMERIC and rk == "dyn") or (rk in NUMERIC and lk == "dyn")):
            # Python orders bool with numbers; CEL does not. Strings, lists, null... raise TypeError.
            t = a if lk == "dyn" else b
            return f"{a} {op} {b} if {t}.__class__ is not bool else {helper}({a}, {b})"
        if "bool" in (lk, rk) and "dyn" in (lk, rk):
            t = a if lk == "dyn" else b
            return f"{a} {op} {b} if {t}.__class__ is bool else {helper}({a}, {b})"
        return f"{helper}({a}, {b})"

    def gen_equality(self, node: Binary, a: str, lk: str, b: str, rk: str) -> str:
        negate = node.op == "!="
        py = "!=" if negate else "=="
        helper = "_ne" if negate else "_eq"
        if isinstance(node.left, Literal) and isinstance(node.right, Literal):
            return repr(runtime._eq(node.left.value, node.right.value) != negate)
        m = "None"  # where no list or map can be compared, nothing needs to be charged
        exact = _exact(node.left) or _exact(node.right)
        if _comparable(lk, rk, exact):  # cannot raise
            return f"({a} {py} {b})"
        for lit, other in ((node.left, b), (node.right, a)):
            if not isinstance(lit, Literal) or (lit.kind in NUMERIC and not _exact(lit)):
                continue
            value = _literal(lit.value)
            if lit.kind == "null" or lit.kind == "bool":
                return f"({other} {'is not' if negate else 'is'} {value})"
            if lit.kind == "string" or (lit.kind in NUMERIC and lit.value not in (0, 1)):
                # str equals only str; a number other than 0 and 1 cannot equal a bool in Python either
                return self.op(node, f"{other} {py} {value}", helper, a, b, m)
            if lit.kind in NUMERIC:
                return self.op(node, f"{other} {py} {value} if {other}.__class__ is not bool else {negate}",
                               helper, a, b, m)
        self.use(helper, "_SIMPLE")
        m = self.metered()
        inline = (f"{a} {py} {b} if {a}.__class__ is {b}.__class__ and {a}.__class__ in _SIMPLE "
                  f"else {helper}({a}, {b}, {m})")
        return self.op(node, inline, helper, a, b, m)

    def gen_in(self, node: Binary, scope):
        item = self.atom(self.expr(node.left, scope)[0])
        container = node.right
        if isinstance(container, ListExpr) and container.items and all(
            isinstance(i, Literal) and (i.kind == "string" or _exact(i)) for i in container.items
        ):
            values = [i.value for i in container.items]
            listed = "[" + ", ".join(_literal(v) for v in values) + "]"
            if len(values) >= 4 and all(v == v for v in values):
                literal = "{" + ", ".join(_literal(v) for v in values) + "}"
            else:
                literal = "(" + "".join(_literal(v) + ", " for v in values) + ")"
            if all(isinstance(v, str) for v in values):
                return self.op(node, f"{item} in {literal}", "_in", item, listed), "bool"
            return self.op(node, f"{item} in {literal} if {item}.__class__ is not bool else False",
                           "_in", item, listed), "bool"
        right = self.atom(self.expr(container, scope)[0])
        self.use("_in")
        m = self.metered()
        return self.op(node, f"_in({item}, {right}, {m})", "_in", item, right, m), "bool"

    def gen_Logic(self, node: Logic, scope):
        """``&&`` / ``||`` as CEL says: the first operand that gives false (``&&``) or true (``||``) decides,
        whatever errors the others raise; else the first error; else true (``&&``) or false (``||``).

        ``result`` holds the deciding value once one is found; until then it is the other bool, which an
        operand that fails also leaves there (its error waits in ``error``). An operand that is one operation
        absorbs its error in that operation's own ``except`` (``_fix_absorb``); a longer one is wrapped."""
        absorbing = node.op == "||"
        result, error = self.temp(), self.temp()
        self.use("EvaluationError")
        m = self.metered() if self.macros else "None"
        fn = self.fn
        undecided = result if node.op == "&&" else f"not {result}"
        self.emit(f"{error} = None")
        for i, operand in enumerate(node.operands):
            if i:
                self.emit(f"if {undecided}:")
                fn.level += 1
            start = len(fn.lines)
            self.emit("try:")
            fn.level += 1
            fn.tries += 1
            code, k = self.expr(operand, scope)
            self.assign(result, code)
            fn.level -= 1
            fn.tries -= 1
            body = fn.lines[start + 1:]
            if (len(body) == 4 and body[0][1] == "try:" and body[2][1] == "except Exception as e:"
                    and body[1][1].startswith(f"{result} = ") and body[3][1].startswith(f"{result} = _fix(e, ")):
                # one operation: its except clause absorbs the error
                self.use("_fix_absorb")
                fix = body[3][1][len(f"{result} = _fix(e, "):]
                fn.lines[start:] = [(level - 1, text) for level, text in body[:3]] + [
                    (body[3][0] - 1, f"{result}, {error} = _fix_absorb(e, {error}, {m}, {not absorbing}, {fix}")]
            else:
                self.use("_absorb")
                self.emit("except EvaluationError as e:")
                self.emit(f"    {error} = _absorb(e, {error}, {m})")
                self.emit(f"    {result} = {not absorbing}")
            if k != "bool":
                self.use("_not_bool")
                self.emit(f"if {result} is not True and {result} is not False:")
                self.emit(f"    {error} = {error} or _not_bool({node.op!r}, {result}, {operand.pos})")
                self.emit(f"    {result} = {not absorbing}")
            if i:
                fn.level -= 1
        self.emit(f"if {error} and {undecided}:")  # an error (an exception object) is true
        self.emit(f"    raise {error}")
        return result, "bool"

    def gen_Cond(self, node: Cond, scope):
        test, tk = self.expr(node.test, scope)
        test = self.atom(test)
        result = self.temp()
        fn = self.fn
        kinds = []
        for header, branch in ((f"if {test} is True:" if tk != "bool" else f"if {test}:", node.then),
                               ("elif True:" if tk == "bool" else f"elif {test} is False:", node.orelse)):
            self.emit(header if header != "elif True:" else "else:")
            fn.level += 1
            code, k = self.expr(branch, scope)
            kinds.append(k)
            self.assign(result, code)
            fn.level -= 1
        if tk != "bool":
            self.use("_at", "_test")
            self.emit("else:")
            self.emit(f"    {result} = _at({node.pos}, _test, {test})")
        return result, (kinds[0] if kinds[0] == kinds[1] else "dyn")

    def gen_ListExpr(self, node: ListExpr, scope):
        return "[" + ", ".join(self.atom(self.expr(i, scope)[0]) for i in node.items) + "]", "list"

    def gen_MapExpr(self, node: MapExpr, scope):
        keys = [k for k, _ in node.entries]
        if all(isinstance(k, Literal) and k.kind == "string" for k in keys) and len({k.value for k in keys}) == len(
            keys
        ):
            items = ", ".join(f"{_literal(k.value)}: {self.atom(self.expr(v, scope)[0])}" for k, v in node.entries)
            return "{" + items + "}", "map"
        ks, vs = [], []
        for k, v in node.entries:
            ks.append(self.atom(self.expr(k, scope)[0]))
            vs.append(self.atom(self.expr(v, scope)[0]))
        self.use("_map")
        keys, values = f"[{', '.join(ks)}]", f"[{', '.join(vs)}]"
        return self.op(node, f"_map({keys}, {values})", "_map", keys, values), "map"

    def gen_Call(self, node: Call, scope):
        name = node.function
        if node.target is None and name == "has":
            select = node.args[0]
            o = self.atom(self.expr(select.operand, scope)[0])
            field = repr(select.field)
            self.use("_has")
            return self.op(select, f"{field} in {o} if {o}.__class__ is dict else _has({o}, {field})", "_has", o, field), "bool"
        if node.target is not None and name in MACROS:
            return self.macro(node, scope)
        function = FUNCTIONS[name]
        args = ([node.target] if node.target is not None else []) + node.args
        codes = []
        for a in args:
            code, k = self.expr(a, scope)
            codes.append((self.atom(code), k))
        if name == "dyn":
            return codes[0]
        helper = function.helper
        self.use(helper)
        if name == "size":
            self.use("_len")
            return self.op(node, f"_len({codes[0][0]})", helper, codes[0][0]), "int"
        if name in ("contains", "startsWith", "endsWith") and isinstance(args[1], Literal) and args[1].kind == "string":
            # Searching a short string costs less than a node: inline; longer ones are charged by the helper.
            t, sub = codes[0][0], codes[1][0]
            test = {"contains": f"{sub} in {t}", "startsWith": f"{t}.startswith({sub})",
                    "endsWith": f"{t}.endswith({sub})"}[name]
            self.use("_len")
            short = limits.NODE_COST // max(limits.CHAR_COST, 1)
            m = self.metered()
            return self.op(node, f"{test} if {t}.__class__ is str and _len({t}) <= {short} "
                                 f"else {helper}({t}, {sub}, {m})", helper, t, sub, m), "bool"
        if name == "matches" and isinstance(args[1], Literal) and args[1].kind == "string":
            pattern = self.regex_constant(args[1].value)
            self.use("_matches_re")
            m = self.metered()
            return self.op(node, f"_matches_re({codes[0][0]}, {pattern}, {m})", "_matches_re", codes[0][0], pattern, m), "bool"
        if name in ("min", "max") and len(codes) == 2:
            (a, ak), (b, bk) = codes
            le, lt = ("<=", "<") if name == "min" else (">=", ">")
            self.use("_NUMS", "_NAN")
            # the first of equal values; NaN when they do not compare (as the helper does)
            pick = f"{a} if {a} {le} {b} else {b} if {b} {lt} {a} else _NAN"
            if ak in NUMERIC and bk in NUMERIC:
                return self.op(node, pick), "dyn"
            # two values: bounded work, nothing to charge
            guard = f"{a}.__class__ in _NUMS and {b}.__class__ in _NUMS"
            return self.op(node, f"({pick}) if {guard} else {helper}({a}, {b})", helper, a, b), "dyn"
        args = [c for c, _ in codes] + ([f"m={self.metered()}"] if function.metered else [])
        return self.op(node, f"{helper}({', '.join(args)})", helper, *args), function.kind

    def regex_constant(self, pattern: str) -> str:
        """The module-level name of ``pattern`` compiled once, when the program is loaded."""
        name = self.patterns.get(pattern)
        if name is None:
            name = self.patterns[pattern] = f"_P{len(self.constants) + 1}"
            self.use("_regex")
            self.constants.append(f"{name} = _regex({_literal(pattern)})")
        return name

    def macro(self, node: Call, scope):
        """``target.all(x, body)`` and the others: the body is a local function of ``x``; the helper of
        :mod:`engine.expr.macros` charges the iterations, runs it and absorbs errors where CEL says."""
        m = self.metered()
        name = node.function
        var = node.args[0].name
        target = self.atom(self.expr(node.target, scope)[0])
        self.counter += 1
        py = f"_v{self.counter}"
        inner = {**scope, var: py}
        self.macros += 1
        try:
            bodies = [self.local(py, lambda a=a: self.expr(a, inner)[0]) for a in node.args[1:]]
        finally:
            self.macros -= 1
        helper = _MACRO_HELPERS[name, len(bodies)]
        self.use(helper)
        kind = "list" if name in ("map", "filter") else "bool"
        args = (m, target, str(iteration_cost(node)), *bodies)
        # the helper raises only EvaluationError: the fallback runs only when reading the target failed
        return self.op(node, f"{helper}({', '.join(args)})", helper, *args), kind

    # --- the module ----------------------------------------------------------------------------------------

    def imports(self) -> list[str]:
        by_module: dict[str, list[str]] = {}
        for helper in sorted(self.helpers):
            by_module.setdefault(_home(helper), []).append(helper)
        return [f"from {module} import {', '.join(names)}" for module, names in sorted(by_module.items())]

    def compile_tree(self, tree: Node) -> tuple[str, frozenset[str]]:
        self.check(tree)
        fn = self.fn
        fn.level = 1
        fn.tries = 1
        code, _kind = self.expr(tree, {})
        self.give(code)
        self.use("_EMPTY", "_placed", "EvaluationError")
        body = fn.lines
        fn.lines = []
        if self.budget:
            self.use("_new_budget")
            fn.lines.append((0, "_m = _new_budget()"))
        fn.lines += [(0, "try:"), *body, (0, "except EvaluationError as e:"), (1, "raise _placed(e, _SOURCE)"),
                     (0, "except Exception as e:"), (1, "raise _placed(_fix(e, None), _SOURCE)")]
        self.use("_fix")
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
            *fn.render(0),
            "",
        ]
        return "\n".join(lines), frozenset(names)


# Python's limits on nesting: 100 levels of indentation, 20 nested blocks (try). Logic and ?: nested deeper
# than these continue in a local function.
_MAX_LEVEL = 40
_MAX_TRIES = 12

_MACRO_HELPERS = {("all", 1): "_all", ("exists", 1): "_exists", ("exists_one", 1): "_exists_one",
                  ("map", 1): "_transform", ("map", 2): "_transform_filtered", ("filter", 1): "_filter"}



def _comparable(lk: str, rk: str, exact: bool) -> bool:
    """Values of these static kinds compare in Python as in CEL, without raising."""
    return (lk == rk and lk in ("int", "double", "string", "bool")) or (lk in NUMERIC and rk in NUMERIC and exact)


def _keep(into: list, result: tuple[str, str]) -> str:
    into.append(result[1])
    return result[0]


_HOMES: dict[str, str] = {}


def _home(helper: str) -> str:
    """The module a helper is imported from (looked up once per helper and process)."""
    home = _HOMES.get(helper)
    if home is None:
        home = _HOMES[helper] = next(m.__name__ for m in HELPER_MODULES if helper in vars(m))
    return home


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
