"""Task files (detect --batch, accuracy, bench): JSONL or plain lines, bad lines reported with positions."""

from __future__ import annotations

import io

import pytest

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


def test_bytes_are_decoded_line_by_line() -> None:
    data = b'{"id": "a", "text": "one"}\nbad \xff byte\n{"id": "c", "text": "caf\xc3\xa9"}\n\xe9\n'
    items = list(read_tasks(io.BytesIO(data), "t.jsonl"))
    assert [(i.line, i.id, i.text) for i in items if isinstance(i, TaskLine)] == [(1, "a", "one"), (3, "c", "café")]
    assert [i.format() for i in items if isinstance(i, Problem)] == [
        "t.jsonl:2:5: error: not UTF-8 text (invalid start byte) [task-encoding]",
        "t.jsonl:4:1: error: not UTF-8 text (invalid continuation byte) [task-encoding]",
    ]


@pytest.mark.parametrize("stream", [io.BytesIO, lambda b: io.StringIO(b.decode())])
def test_a_line_longer_than_the_bound_is_skipped_in_pieces(stream) -> None:
    data = b"first\n" + b"x" * 100 + b"\n" + b"y" * 20 + b"\n" + b"z" * 300  # the last one has no newline
    items = list(read_tasks(stream(data), "t.txt", max_line=50))
    assert [(i.line, i.text) for i in items if isinstance(i, TaskLine)] == [(1, "first"), (3, "y" * 20)]
    assert [i.format() for i in items if isinstance(i, Problem)] == [
        "t.txt:2:1: error: longer than 50 bytes (101); skipped [task-too-long]",
        "t.txt:4:1: error: longer than 50 bytes (300); skipped [task-too-long]",
    ]


def test_a_line_of_exactly_the_bound_is_read() -> None:
    items = list(read_tasks(io.BytesIO(b"x" * 50 + b"\n"), "t.txt", max_line=50))
    assert [i.text for i in items] == ["x" * 50]


def test_hostile_json_lines_are_problems() -> None:
    data = ('{"text": "a", "context": ' + "[" * 30000 + "]" * 30000 + "}\n"
            '{"id": ' + "9" * 5000 + ', "text": "b"}\n'
            '{"text": "c", "context": {"x": NaN}}\n'
            '{"text": "d"}\n')
    items = list(read_tasks(io.StringIO(data), "t.jsonl"))
    assert [i.text for i in items if isinstance(i, TaskLine)] == ["d"]
    assert [(i.line, i.rule, i.message) for i in items if isinstance(i, Problem)] == [
        (1, "task-json", "not valid JSON: nested more than 64 levels deep"),
        (2, "task-json", "not valid JSON: an integer has more than 4,300 digits"),
        (3, "task-json", "not valid JSON: NaN is not a JSON number"),
    ]


def test_progress_is_called_every_2000_lines_with_the_bytes_read() -> None:
    calls: list[int] = []
    data = b"task\n" * 4500
    assert len(list(read_tasks(io.BytesIO(data), "t.txt", progress=calls.append))) == 4500
    assert calls == [2000 * 5, 4000 * 5]
