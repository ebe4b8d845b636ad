"""Task files (detect --batch, accuracy, bench): JSONL or plain lines, bad lines reported with positions."""

from __future__ import annotations

import io

from engine.detect.taskfile import TaskLine, read_tasks
from engine.diagnostics import Problem

TEXT = """\
{"id": "t1", "text": "List all dbt models", "tier": "simple"}
Plain text task

  {"text": "no id", "context": {"agent_count": 2}}
{"id": "t4", "text": "broken"
[1, 2]
{"id": "t6"}
{"id": "t7", "text": "x", "tier": 3}
{"id": "t8", "text": "x", "context": []}
"""


def test_read_tasks() -> None:
    items = list(read_tasks(io.StringIO(TEXT), "tasks.jsonl"))
    tasks = [i for i in items if isinstance(i, TaskLine)]
    assert [(t.line, t.id, t.text, t.tier, t.context) for t in tasks] == [
        (1, "t1", "List all dbt models", "simple", None),
        (2, 2, "Plain text task", None, None),
        (4, 4, "no id", None, {"agent_count": 2}),
        (6, 6, "[1, 2]", None, None),  # only lines starting with "{" are JSON
    ]
    problems = [i.format() for i in items if isinstance(i, Problem)]
    assert problems == [
        "tasks.jsonl:5:30: error: not valid JSON: Expecting ',' delimiter [task-json]",
        "tasks.jsonl:7:1: error: missing \"text\" (a string) [task-shape]",
        "tasks.jsonl:8:1: error: \"tier\" must be a string [task-shape]",
        "tasks.jsonl:9:1: error: \"context\" must be an object [task-shape]",
    ]
