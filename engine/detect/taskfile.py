"""Reading tasks from a file or stdin, one per line, streaming: JSONL objects or plain text lines.

A line that starts with ``{`` is a JSON object with at least ``text`` (and optionally ``id``, ``tier``,
``agent``, ``context``); any other non-blank line is the text of a task. Bad lines are reported as
:class:`Problem` records with their line and column, and reading goes on: a line that is not UTF-8, longer than
``max_line`` bytes, not JSON, too deeply nested or holding a number out of range (see :mod:`engine.jsonio`)
costs that line only.

Read a file in binary mode (``open(path, "rb")``, ``sys.stdin.buffer``): each line is decoded on its own, so
one bad byte is one bad line. Text streams (lines already decoded) are read too.
"""

from __future__ import annotations

from engine.records import Record

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import IO, Any, Callable, Iterable, Iterator

from engine.diagnostics import Problem

MAX_LINE_BYTES = 4 << 20
"""The longest line read (4 MiB); a longer one is skipped without being held in memory whole."""

PROGRESS_EVERY = 2000
"""Lines between two calls of the ``progress`` callback of :func:`read_tasks`."""


class TaskLine(Record):
    """One task read from a file: where it was, and what it says."""

    line: int
    id: Any
    text: str
    tier: str | None = None
    context: dict | None = None
    raw: dict | None = None  # the JSON object, when the line was one


def read_tasks(stream: IO[bytes] | IO[str] | Iterable[bytes | str], label: str, max_line: int = MAX_LINE_BYTES,
               progress: Callable[[int], Any] | None = None) -> Iterator[TaskLine | Problem]:
    """Each task of ``stream`` in order, or a :class:`Problem` for a line that is not one.

    ``progress(done)``, when given, is called every :data:`PROGRESS_EVERY` lines with the bytes (or, for a
    text stream, characters) read so far.
    """
    from engine.jsonio import JSONInputError, loads

    done = 0
    for number, (line, size) in enumerate(_lines(stream, max_line), 1):
        if progress is not None:
            done += size
            if number % PROGRESS_EVERY == 0:
                progress(done)
        if line is None:
            yield Problem(label, number, 1, "task-too-long", f"longer than {max_line:,} bytes ({size:,}); skipped")
            continue
        if isinstance(line, (bytes, bytearray)):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                col = len(line[: exc.start].decode("utf-8", "replace")) + 1
                yield Problem(label, number, col, "task-encoding", f"not UTF-8 text ({exc.reason})")
                continue
        if number == 1 and line[:1] == "\ufeff":  # a byte order mark, as Windows editors write
            line = line[1:]
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("{"):
            yield TaskLine(number, number, stripped)
            continue
        try:
            item = loads(stripped, max_bytes=max_line)
        except JSONInputError as exc:
            col = (exc.colno or 1) + (len(line) - len(line.lstrip()))
            yield Problem(label, number, col, "task-json", f"not valid JSON: {exc.msg}")
            continue
        problem = _check(item, label, number)
        if problem is not None:
            yield problem
            continue
        yield TaskLine(number, item.get("id", number), item["text"], item.get("tier"), item.get("context"), item)


def _lines(stream: Any, max_line: int) -> Iterator[tuple[Any, int]]:
    """``(line, size)`` for each line of ``stream``; ``(None, size)`` for a line longer than ``max_line``, read
    in pieces so that it is never held whole. A plain iterable's lines are taken as they come."""
    readline = getattr(stream, "readline", None)
    if readline is None:
        for line in stream:
            yield line, len(line)
        return
    while True:
        line = readline(max_line + 1)
        if not line:
            return
        newline = b"\n" if isinstance(line, (bytes, bytearray)) else "\n"
        if len(line) > max_line and not line.endswith(newline):
            size = len(line)
            while True:  # the rest of the long line, a piece at a time
                piece = readline(1 << 16)
                size += len(piece)
                if not piece or piece.endswith(newline):
                    break
            yield None, size
            continue
        yield line, len(line)


def _check(item: Any, label: str, number: int) -> Problem | None:
    if not isinstance(item, dict):
        return Problem(label, number, 1, "task-shape", "a task line starting with { must be a JSON object")
    if not isinstance(item.get("text"), str):
        return Problem(label, number, 1, "task-shape", "missing \"text\" (a string)")
    if "tier" in item and not isinstance(item["tier"], str):
        return Problem(label, number, 1, "task-shape", "\"tier\" must be a string")
    if "context" in item and not isinstance(item["context"], dict):
        return Problem(label, number, 1, "task-shape", "\"context\" must be an object")
    return None
