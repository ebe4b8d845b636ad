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


def test_readme_python_example_runs(tmp_path: Path, monkeypatch) -> None:
    """The README's Python tour runs as written (its usage record goes to a scratch log)."""
    monkeypatch.setenv("CTXBUDGET_LOG", str(tmp_path / "usage.jsonl"))
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - our own documentation
    assert namespace["allocation"].budget == 30000
    assert namespace["evaluation"].detection.tier == "complex"
    assert (tmp_path / "usage.jsonl").read_text().count("\n") == 1


def test_policy_doc_describes_every_top_level_key() -> None:
    import json

    schema = json.loads((ROOT / "schemas" / "policy.schema.json").read_text(encoding="utf-8"))
    text = (ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    assert [key for key in schema["properties"] if f"`{key}`" not in text] == []
