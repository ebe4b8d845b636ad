"""The examples in docs/ are real: valid ones validate, invalid ones fail with the rule they name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import ROOT
from engine.policy import check_policy

EXAMPLE = re.compile(r"<!-- example: (valid|invalid ([a-z0-9-]+)) -->\n```yaml\n(.*?)```", re.S)


def _examples() -> list:
    found = []
    for doc in sorted((ROOT / "docs").glob("*.md")):
        for i, match in enumerate(EXAMPLE.finditer(doc.read_text(encoding="utf-8"))):
            found.append(pytest.param(match.group(2), match.group(3), id=f"{doc.name}-{i}"))
    return found


@pytest.mark.parametrize(("rule", "text"), _examples())
def test_doc_example(rule: str | None, text: str, tmp_path: Path) -> None:
    path = tmp_path / "ctxbudget.yaml"
    path.write_text(text, encoding="utf-8")
    problems, policy = check_policy(path)
    if rule is None:
        assert policy is not None, [p.format() for p in problems]
    else:
        assert rule in [p.rule for p in problems]


def test_docs_have_examples() -> None:
    assert len(_examples()) >= 3
