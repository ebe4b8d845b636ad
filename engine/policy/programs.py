"""Compiling a policy's expressions once, when first used.

Every job that has expressions (the budget formula, the memory relevance, the recommendation rules) asks the
policy's :class:`ProgramTable` for them; the table compiles each distinct source once, from its source (the
compiled-policy cache holds data only, never code: docs/security.md). :class:`LazyProgram` defers even that
to the first evaluation. A source of numbers, names, arithmetic, comparisons, ``&&`` ``||`` ``!`` and ``?:``
(the default memory relevance) is read instead, without the parser and the compiler
(:func:`engine.expr.direct.read`: the same values and errors; ~2 ms instead of ~12 in a fresh process).
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Collection


class ProgramTable:
    """CEL source → compiled program, compiled on first request."""

    __slots__ = ("_programs", "_read")

    def __init__(self) -> None:
        self._programs: dict[str, Any] = {}
        self._read: dict[str, Any] = {}  # sources read without compiling (engine.expr.direct)

    def get(self, source: str, names: Collection[str]) -> Any:
        """The program for ``source``; raises ``ExprSyntaxError`` for bad source or a name not in ``names``."""
        program = self._programs.get(source) or self._read.get(source)
        if program is None:
            from engine.expr.direct import read

            program = read(source, names)
            if program is not None:
                self._read[source] = program
                return program
            from engine.expr import compile as compile_expression

            program = compile_expression(source, names=set(names))
            self._programs[source] = program
        return program

    def compiled(self) -> list[str]:
        """The sources compiled so far (expressions compile when first used; those read without compiling, by
        :func:`engine.expr.direct.read`, are not among them)."""
        return list(self._programs)


class LazyProgram:
    """An expression compiled the first time it is evaluated (or any other attribute of its program is read).

    Every hook is a new process, and most commands use few of a policy's expressions: ``budget`` only the
    formula, ``evaluate`` never the recommendation rules. ``validate`` compiles every expression itself (its
    checks), so a policy whose expressions do not compile is never loaded."""

    __slots__ = ("_programs", "source", "_names", "evaluate")

    def __init__(self, programs: ProgramTable, source: str, names: Collection[str]):
        self._programs = programs
        self.source = source
        self._names = names

    @property
    def program(self) -> Any:
        """The compiled program (from the policy's :class:`ProgramTable`)."""
        return self._programs.get(self.source, self._names)

    def __getattr__(self, name: str) -> Any:
        # Only for what is not set yet: the first `evaluate` compiles, then binds the program's own method.
        program = self.program
        if name == "evaluate":
            self.evaluate = program.evaluate
            return self.evaluate
        return getattr(program, name)

    def __repr__(self) -> str:
        return f"LazyProgram({self.source!r})"
