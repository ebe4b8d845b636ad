"""The examples table in docs/expressions.md is true."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from engine.expr import EvaluationError, compile

DOC = Path(__file__).resolve().parents[1] / "docs" / "expressions.md"
ROW = re.compile(r"^\| `(.+)` \| (?:`(.+)`|error: (.+)) \|$")


def _rows():
    text = DOC.read_text(encoding="utf-8")
    block = text.split("<!-- examples", 1)[1].split("<!-- /examples -->", 1)[0]
    rows = [ROW.match(line) for line in block.splitlines() if line.startswith("| `")]
    assert rows and all(rows), "every example row reads | `expression` | `json` | or | `expression` | error: ... |"
    return [pytest.param(m.group(1), m.group(2), m.group(3), id=m.group(1)) for m in rows]


@pytest.mark.parametrize("text, value, error", _rows())
def test_documented_example(text, value, error):
    program = compile(text)
    if error is not None:
        with pytest.raises(EvaluationError) as info:
            program.evaluate({})
        assert info.value.message == error
        return
    result = program.evaluate({})
    expected = json.loads(value)
    assert result == expected and type(result) is type(expected)
