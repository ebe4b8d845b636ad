"""Reading tasks from a file or stdin, one per line, streaming: JSONL objects or plain text lines.

A line that starts with ``{`` is a JSON object with at least ``text`` (and optionally ``id``, ``tier``,
``agent``, ``context``); any other non-blank line is the text of a task. Bad lines are reported as
:class:`Problem` records with their line and column, and reading goes on.
"""

from __future__ import annotations

import json
from typing import IO, Any, Iterator, NamedTuple

from engine.diagnostics import Problem


class TaskLine(NamedTuple):
    """One task read from a file: where it was, and what it says."""

    line: int
    id: Any
    text: str
    tier: str | None = None
    context: dict | None = None
    raw: dict | None = None  # the JSON object, when the line was one


def read_tasks(stream: IO[str], label: str) -> Iterator[TaskLine | Problem]:
    """Each task of ``stream`` in order, or a :class:`Problem` for a line that is not one."""
    for number, line in enumerate(stream, 1):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("{"):
            yield TaskLine(number, number, stripped)
            continue
        try:
            item = json.loads(stripped)
        except json.JSONDecodeError as exc:
            col = exc.colno + (len(line) - len(line.lstrip()))
            yield Problem(label, number, col, "task-json", f"not valid JSON: {exc.msg}")
            continue
        problem = _check(item, label, number)
        if problem is not None:
            yield problem
            continue
        yield TaskLine(number, item.get("id", number), item["text"], item.get("tier"), item.get("context"), item)


def _check(item: dict, label: str, number: int) -> Problem | None:
    if not isinstance(item.get("text"), str):
        return Problem(label, number, 1, "task-shape", "missing \"text\" (a string)")
    if "tier" in item and not isinstance(item["tier"], str):
        return Problem(label, number, 1, "task-shape", "\"tier\" must be a string")
    if "context" in item and not isinstance(item["context"], dict):
        return Problem(label, number, 1, "task-shape", "\"context\" must be an object")
    return None
