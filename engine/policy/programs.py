"""Compiling a policy's expressions once.

:meth:`Policy.from_data` asks a :class:`ProgramTable` for each expression it needs; the table compiles each
distinct source once. (It can also rebuild programs from generated Python handed in as ``cached``; the
compiled-policy cache never does that: it holds data only, see docs/security.md.)
"""

from __future__ import annotations

from typing import Any, Collection, Mapping


class ProgramTable:
    """CEL source → compiled program, filled from cached generated Python where possible."""

    def __init__(self, cached: Mapping[str, str] | None = None):
        self._cached = dict(cached or {})
        self._python: dict[str, str] = {}
        self._programs: dict[str, Any] = {}

    def get(self, source: str, names: Collection[str]) -> Any:
        """The program for ``source``; raises ``ExprSyntaxError`` for bad source or a name not in ``names``."""
        program = self._programs.get(source)
        if program is not None:
            return program
        cached = self._cached.get(source)
        if cached is not None:
            from engine.expr import Program

            program = Program.from_python(source, cached)
            if not program.names <= set(names):  # a cache written for other names: compile afresh
                program = None
        if program is None:
            from engine.expr import compile as compile_expression

            program = compile_expression(source, names=set(names))
        self._programs[source] = program
        self._python[source] = program.python_source
        return program

    def artifacts(self) -> dict[str, str]:
        """Generated Python by source, for the cache."""
        return dict(self._python)
