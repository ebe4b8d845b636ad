"""The examples in docs/ and the README are real.

Every YAML block is marked with what it is, in an HTML comment on the line before it:

- ``<!-- example: valid -->``: a whole policy; it validates, and ``ctxbudget test`` passes on it;
- ``<!-- example: section -->``: part of a policy; with ``version: 1`` and ``extends: default`` above it, the
  same;
- ``<!-- example: invalid RULE -->``: a whole policy that fails with RULE;
- ``<!-- example: not-a-policy -->``: other YAML (CI configuration); it parses.

Console blocks that run a command on the bundled policy without files (``evaluate``, ``detect``, ``budget``,
…) are run, and what they show must be what the command prints (a line ending in ``...`` is a prefix; an
output may stop early; JSON compares as data).
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from conftest import ROOT
from engine.policy import check_policy

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
EXAMPLE = re.compile(r"<!-- example: (valid|section|not-a-policy|invalid ([a-z0-9-]+)) -->\n```yaml\n(.*?)```", re.S)
YAML_BLOCK = re.compile(r"^```yaml$", re.M)
SECTION_HEAD = "version: 1\nextends: default\n"


def _examples() -> list:
    found = []
    for doc in DOCS:
        for i, match in enumerate(EXAMPLE.finditer(doc.read_text(encoding="utf-8"))):
            kind = match.group(1).split()[0]
            found.append(pytest.param(kind, match.group(2), match.group(3), id=f"{doc.name}-{i}-{kind}"))
    return found


@pytest.mark.parametrize(("kind", "rule", "text"), _examples())
def test_doc_example(kind: str, rule: str | None, text: str, tmp_path: Path, run_cli) -> None:
    if kind == "not-a-policy":
        from ruamel.yaml import YAML

        YAML(typ="safe").load(text)
        return
    path = tmp_path / "ctxbudget.yaml"
    path.write_text(SECTION_HEAD + text if kind == "section" else text, encoding="utf-8")
    problems, policy = check_policy(path)
    if kind == "invalid":
        assert rule in [p.rule for p in problems]
        return
    assert policy is not None, [p.format() for p in problems]
    code, out, err = run_cli("test", str(path))
    assert code == 0, out + err


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: d.name)
def test_every_yaml_block_is_a_checked_example(doc: Path) -> None:
    """A YAML block without a marker would go unchecked: each one says what it is."""
    text = doc.read_text(encoding="utf-8")
    assert len(EXAMPLE.findall(text)) == len(YAML_BLOCK.findall(text))


def test_docs_have_examples() -> None:
    kinds = [p.values[0] for p in _examples()]
    assert kinds.count("valid") >= 5 and kinds.count("section") >= 3 and kinds.count("invalid") >= 5


RUNNABLE = {"evaluate", "detect", "budget", "expr", "signals", "profiles", "agents"}
"""Commands a console example may show that need no file but the bundled policy, and write nothing."""


def _console_commands() -> list:
    found = []
    for doc in DOCS:
        for n, block in enumerate(re.findall(r"```console\n(.*?)```", doc.read_text(encoding="utf-8"), re.S)):
            lines = block.replace("\\\n", " ").splitlines()
            starts = [i for i, line in enumerate(lines) if line.startswith("$ ")] + [len(lines)]
            for a, b in zip(starts, starts[1:]):
                argv = shlex.split(lines[a][2:])
                if argv[0] == "ctxbudget" and argv[1] in RUNNABLE and "[" not in lines[a]:
                    shown = "\n".join(lines[a + 1:b]).strip("\n")
                    found.append(pytest.param(argv[1:], shown, id=f"{doc.name}-{n}-{argv[1]}"))
    return found


@pytest.mark.parametrize(("argv", "shown"), _console_commands())
def test_console_example_shows_what_the_command_prints(argv: list, shown: str, run_cli, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./ctxbudget.yaml: the bundled default
    code, out, err = run_cli(*argv)
    assert code == 0, err
    if not shown:
        return
    if shown.startswith(("{", "[")):
        assert json.loads(out) == json.loads(shown)
        return
    printed = out.splitlines()
    for i, line in enumerate(shown.splitlines()):
        assert i < len(printed), f"the docs show more lines than {argv} prints"
        if line.endswith("..."):
            assert printed[i].startswith(line[:-3]), (line, printed[i])
        else:
            assert printed[i] == line


def test_console_examples_are_found() -> None:
    assert len(_console_commands()) >= 5


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
