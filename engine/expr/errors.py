"""The errors of the expression language.

``ExprSyntaxError`` comes from :func:`engine.expr.compile` (bad syntax, unknown names or functions, limits on
the source); ``EvaluationError`` from ``Program.evaluate`` (no such key, division by zero, overflow, a value of
the wrong type, a resource limit). Both are :class:`ExprError`. Positions are 1-based and relative to the
expression's own text, so a caller that knows where the expression sits in a file can add the two.
"""

from __future__ import annotations



class ExprError(Exception):
    """Base class of every error the expression language raises."""


def position(source: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of a character offset in ``source``."""
    offset = max(0, min(offset, len(source)))
    line = source.count("\n", 0, offset) + 1
    column = offset - (source.rfind("\n", 0, offset) + 1) + 1
    return line, column


CONTEXT = 60  # characters of a long line shown on each side of the caret


def caret_lines(source: str, line: int, column: int) -> str:
    """The source line and a caret under ``column`` (tabs kept so the caret lines up); a long line is cut
    to the part around the column, with ``…`` where it was cut."""
    lines = source.split("\n")
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    start = max(0, column - 1 - CONTEXT)
    end = column - 1 + CONTEXT
    shown = ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")
    before = ("…" if start else "") + text[start:column - 1]
    pad = "".join("\t" if c == "\t" else " " for c in before)
    return f"{shown}\n{pad}^"


class ExprSyntaxError(ExprError):
    """An expression that cannot be compiled.

    ``message`` is plain text; ``line`` and ``column`` (1-based) point into ``source``; ``str()`` adds the
    source line with a caret under the column.
    """

    def __init__(self, message: str, source: str = "", offset: int = 0):
        self.message = message
        self.source = source
        self.offset = offset
        self.line, self.column = position(source, offset)
        super().__init__(message)

    def __str__(self) -> str:
        where = f"column {self.column}" if "\n" not in self.source else f"line {self.line}, column {self.column}"
        return f"{self.message} ({where})\n{caret_lines(self.source, self.line, self.column)}"

    def __reduce__(self):  # keep pickling (multiprocessing) working with the extra arguments
        return (type(self), (self.message, self.source, self.offset))


class UnknownNameError(ExprSyntaxError):
    """A free variable that is not among the names the caller allows (``compile(..., names=...)``)."""

    def __init__(self, message: str, source: str = "", offset: int = 0, name: str = ""):
        super().__init__(message, source, offset)
        self.name = name

    def __reduce__(self):
        return (type(self), (self.message, self.source, self.offset, self.name))


class ExprTypeError(ExprSyntaxError):
    """An expression that cannot work with the variables declared for it (:func:`engine.expr.check`): an
    unknown field, an operation on a value of the wrong type, a condition that is not a bool."""


class ExprCostError(ExprSyntaxError):
    """An expression whose worst-case cost (:func:`engine.expr.check`), given the size bounds of its
    variables, is over the evaluation budget. ``cost`` is that bound."""

    def __init__(self, message: str, source: str = "", offset: int = 0, cost: int = 0):
        super().__init__(message, source, offset)
        self.cost = cost

    def __reduce__(self):
        return (type(self), (self.message, self.source, self.offset, self.cost))


class EvaluationError(ExprError):
    """Evaluation failed: a missing key, division by zero, overflow, a value of an unexpected type, ...

    ``message`` is plain text. When the failing part of the expression is known, ``line`` and ``column``
    (1-based, into ``source``) point at it and ``str()`` names the column; otherwise they are ``None``.
    """

    def __init__(self, message: str, source: str | None = None, offset: int | None = None):
        self.message = message
        self.source = source
        self.offset = offset
        self.line: int | None = None
        self.column: int | None = None
        if source is not None and offset is not None:
            self.line, self.column = position(source, offset)
        super().__init__(message)

    def __str__(self) -> str:
        if self.column is None:
            return self.message
        if self.source is not None and "\n" in self.source:
            return f"{self.message} (line {self.line}, column {self.column})"
        return f"{self.message} (column {self.column})"

    def __reduce__(self):
        return (type(self), (self.message, self.source, self.offset))


class LimitExceeded(EvaluationError):
    """Evaluation used more than its budget (values built by macros and concatenation, regex size).

    Unlike other evaluation errors it is not absorbed by ``&&``, ``||`` or the macros: it stops evaluation.
    """
