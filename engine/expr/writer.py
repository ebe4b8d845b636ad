"""Writing generated Python: statements into functions, each operation in a ``try`` with its fallback.

:class:`Writer` is what :class:`engine.expr.compiler.Compiler` writes with: ``op`` makes one operation a
statement (its fast Python form, and ``_fix`` with the reference implementation and the same operands when that
raises), selections wait (``pending``) until the operation that uses them puts them in its own ``try``, and
``local`` starts a local function (a macro's body, or nesting too deep for one function).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Callable

# (No regular expressions here: compiling them cost every process that compiles an expression ~0.3 ms.)


def _places(text: str, name: str) -> list[int]:
    """Where the temporary ``name`` (``_t12``) occurs in generated ``text`` as a whole name."""
    out = []
    size = len(name)
    i = text.find(name)
    while i >= 0:
        end = i + size
        if (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")) and (
                end == len(text) or not (text[end].isalnum() or text[end] == "_")):
            out.append(i)
        i = text.find(name, end)
    return out


def _replace(text: str, name: str, code: str) -> str:
    """``text`` with each occurrence of the temporary ``name`` replaced by ``code``."""
    for i in reversed(_places(text, name)):
        text = text[:i] + code + text[i + len(name):]
    return text


def _number(code: str) -> bool:
    """A numeric literal as the compiler writes them: ``1.5``, ``(10)``, ``(-2)``, ``_INF``, ``(-_INF)``, ``_NAN``."""
    body = code[1:-1] if code[:1] == "(" and code[-1:] == ")" else code
    body = body[1:] if body[:1] == "-" else body
    return body in ("_INF", "_NAN") or (body != "" and not body.strip("0123456789.e+-"))


class _Function:
    """A Python function being written: its statements as (indentation level, text) and its local functions."""

    __slots__ = ("name", "params", "lines", "defs", "level", "tries")

    def __init__(self, name: str, params: str):
        self.name = name
        self.params = params
        self.lines: list[tuple[int, str]] = []
        self.defs: list[_Function] = []
        self.level = 0  # indentation of the next statement, relative to the body
        self.tries = 0  # try blocks around it

    def render(self, indent: int) -> list[str]:
        pad = "    " * (indent + 1)
        out = ["    " * indent + f"def {self.name}({self.params}):"]
        for d in self.defs:
            out += d.render(indent + 1)
        out += [pad + "    " * level + text for level, text in self.lines]
        return out

class Writer:
    """The function being written (``fn``), its temporaries, the helpers it imports."""

    def __init__(self) -> None:
        self.helpers: set[str] = set()
        self.counter = 0
        self.budget = False  # does the code charge a cost budget (macros, operations on sizes)?
        self.fn = _Function("evaluate", "B=_EMPTY")  # the function being written
        # Selections not yet written: (temporary, Python lookup, (_path, position, its arguments...)). The
        # operation that uses them computes them in its own try statement; anything else writes them first.
        self.pending: list[tuple[str, str, tuple[str, ...]]] = []
        self.last: tuple = (None, 0, "")  # (function, its line count, temporary) after the last operation

    def temp(self) -> str:
        self.counter += 1
        return f"_t{self.counter}"

    def use(self, *helpers: str) -> None:
        self.helpers.update(helpers)

    def metered(self) -> str:
        """The name of the evaluation's budget, for a helper that charges it."""
        self.budget = True
        return "_m"

    # --- statements ----------------------------------------------------------------------------------------

    def emit(self, line: str) -> None:
        if self.pending:
            self.flush()
        self.fn.lines.append((self.fn.level, line))

    def flush(self) -> None:
        """Write the pending selections as statements of their own."""
        pending, self.pending = self.pending, []
        for t, inline, fallback in pending:
            self.write_op(t, [], inline, int(fallback[1]), fallback[0], fallback[2:])

    def op(self, node: Node, inline: str, fallback: str | None = None, *args: str) -> str:
        """A statement that computes ``inline`` into a new temporary; if it raises, ``_fix`` returns what
        ``fallback(*args)`` (the reference semantics, same operands) returns or tags the error with the
        position of ``node``. Pending selections among the operands are computed in the same ``try``; the
        fallback reads them again through their reference semantics (``_path``)."""
        if self.pending and (fallback is None or any(
                a != name and name in a for name, _code, _fb in self.pending for a in args)):
            self.flush()  # the fallback could not read them again: compute them first
        elif self.pending and any(name not in args for name, _code, _fb in self.pending):
            # Selections an outer operation uses (`a` of `a + b / 2`, before `/`): read first, each on its own
            # (in this operation's try, a failed read would leave its temporary unset and not be reported).
            keep = [p for p in self.pending if p[0] in args]
            self.pending = [p for p in self.pending if p[0] not in args]
            self.flush()
            self.pending = keep
        t = self.temp()
        pending, self.pending = self.pending, []
        paths = {name: f"_Read({', '.join(fb[2:])})" for name, _inline, fb in pending}
        if paths:
            self.use("_Read")
        self.write_op(t, [(name, inline) for name, inline, _fb in pending], inline, node.pos, fallback,
                      tuple(paths.get(a, a) for a in args))
        return t

    def write_op(self, t: str, before: list, inline: str, pos: int, fallback: str | None, args: tuple) -> None:
        self.use("_fix")
        extra = "".join(", " + a for a in ((fallback,) + args if fallback else ()))
        if fallback:
            self.use(fallback)
        lines = self.fn.lines
        level = self.fn.level
        lines.append((level, "try:"))
        original = inline
        for name, code in before:
            # A selection used once goes in its place (`_len(B['a']['b'])`); one the operation's guard looks at
            # first is computed there (`if (_t1 := B['a']).__class__`: each operation's template starts its
            # condition with the operand it checks); others are statements of their own.
            guard = f"if {name}.__class__"
            if len(_places(original, name)) == 1:
                inline = _replace(inline, name, code)
            elif guard in inline:
                inline = inline.replace(guard, f"if ({name} := {code}).__class__", 1)
            else:
                lines.append((level + 1, f"{name} = {code}"))
        lines.append((level + 1, f"{t} = {inline}"))
        lines.append((level, "except Exception as e:"))
        lines.append((level + 1, f"{t} = _fix(e, {pos}{extra})"))
        self.last = (self.fn, len(lines), t)

    def assign(self, name: str, code: str) -> None:
        """``name = code``; when ``code`` is the temporary the last statement computed, it computes ``name``."""
        self.write_pending(code)
        if not self.retarget(code, f"{name} = "):
            self.emit(f"{name} = {code}")

    def give(self, code: str) -> None:
        """``return code`` (from the last statement itself when it computed ``code``)."""
        self.write_pending(code)
        if not self.retarget(code, "return "):
            self.emit(f"return {code}")

    def write_pending(self, code: str) -> None:
        """When ``code`` is the last pending selection, write it now as the last statement (which ``retarget``
        then points at its destination)."""
        if self.pending and self.pending[-1][0] == code:
            t, inline, fallback = self.pending.pop()
            if self.pending:
                self.flush()
            self.write_op(t, [], inline, int(fallback[1]), fallback[0], fallback[2:])

    def retarget(self, code: str, target: str) -> bool:
        fn, count, t = self.last
        lines = self.fn.lines
        if fn is not self.fn or code != t or count != len(lines) or self.pending:
            return False
        for i in (-3, -1):
            level, text = lines[i]
            lines[i] = (level, text.replace(f"{t} = ", target, 1))
        self.last = (None, 0, "")
        return True

    def atom(self, code: str) -> str:
        """``code`` as a name or literal (bound to a temporary if it is a larger expression)."""
        if code.isidentifier() or code.startswith(("'", '"')) or _number(code):
            return code
        t = self.temp()
        self.emit(f"{t} = {code}")
        return t

    def local(self, params: str, build: Callable[[], str]) -> str:
        """A local function of the current one whose body ``build`` writes (returning its result's code);
        defined at the top of the current function, so the indentation starts again."""
        self.counter += 1
        outer, pending, last = self.fn, self.pending, self.last  # the current function's, kept for it
        inner = self.fn = _Function(f"_f{self.counter}", params)
        self.pending = []
        try:
            self.give(build())
        finally:
            self.fn, self.pending, self.last = outer, pending, last
        outer.defs.append(inner)
        return inner.name
