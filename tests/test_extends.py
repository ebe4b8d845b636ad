"""`extends`: a team's small file over the bundled default; positions point into the file that wrote a value;
a parent is only ever a regular policy file, and one that is not is never quoted."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA
from engine.diagnostics import UsageError
from engine.policy import check_policy, load_policy
from engine.policy.extends import resolve_parent
from engine.policy.locate import NotRegularFile, display_path, read_bytes
from engine.resources import bundled_policy

TEAM = """\
version: 1
extends: default
name: team
agents:
  specialists/dbt-expert: specialist-broad
  roles/research-role: null
profiles:
  role-architect: {max: 200000}
enforcement: hard
"""


def test_team_policy_overrides_a_few_values(tmp_path: Path) -> None:
    path = tmp_path / "ctxbudget.yaml"
    path.write_text(TEAM)
    policy = load_policy(path)
    assert policy.name == "team"
    assert policy.enforcement == "hard"
    assert policy.agents["specialists/dbt-expert"] == "specialist-broad"
    assert "roles/research-role" not in policy.agents
    assert len(policy.agents) == 24
    architect = policy.profiles["role-architect"]
    assert (architect.base, architect.max) == (75000, 200000)
    assert policy.allocate("data-architect", "multi-system").budget == 150000
    assert policy.allocate("dbt-expert", "simple").budget == 17500


def test_chain_of_three_and_positions_in_each_file(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text("extends: default\nprofiles:\n  specialist-narrow: {base: 99999999999}\n")
    (tmp_path / "team.yaml").write_text("extends: base.yaml\nname: team\nenforcement: strict\n")
    problems, policy = check_policy(tmp_path / "team.yaml")
    assert policy is None
    where = {(Path(p.path).name, p.line, p.rule) for p in problems}
    assert ("team.yaml", 3, "schema-enum") in where
    assert ("base.yaml", 3, "schema-maximum") in where


def test_local_file_and_environment_lookup(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CTXBUDGET_POLICY", raising=False)
    assert load_policy().name == "default"
    (tmp_path / "ctxbudget.yaml").write_text("extends: default\nname: local\n")
    assert load_policy().name == "local"
    (tmp_path / "other.yaml").write_text("extends: default\nname: from-env\n")
    monkeypatch.setenv("CTXBUDGET_POLICY", str(tmp_path / "other.yaml"))
    assert load_policy().name == "from-env"
    assert load_policy("default").name == "default"


# -- what a parent may be (issue 8, section 2) ----------------------------------------------------------------

HOSTILE = DATA / "hostile"
MARKER = re.compile(r"CTXB-LEAK-MARKER-\d+")
NOT_POLICIES = sorted(p.name for p in HOSTILE.iterdir() if p.suffix in (".yaml", ".yml", ".json"))


def _child(tmp_path: Path, parent: str | Path) -> Path:
    child = tmp_path / "ctxbudget.yaml"
    child.write_text(f"version: 1\nextends: {json.dumps(str(parent))}\n")
    return child


def test_the_hostile_parents_hold_secrets() -> None:
    """The leak tests below can fail: every hostile file carries a marker on every line."""
    assert len(NOT_POLICIES) >= 5
    for path in HOSTILE.iterdir():
        if path.name != "README.md":
            lines = path.read_text().splitlines()
            assert lines and all(MARKER.search(line) for line in lines), path.name


@pytest.mark.parametrize("name", NOT_POLICIES)
def test_a_parent_that_is_not_a_policy_gets_one_error_quoting_none_of_it(tmp_path: Path, name: str) -> None:
    parent = HOSTILE / name
    problems, policy = check_policy(_child(tmp_path, parent))
    assert policy is None
    assert [(p.rule, p.line, p.col) for p in problems] == [("extends-not-policy", 2, 10)]
    assert display_path(parent) in problems[0].message
    assert not MARKER.search(problems[0].format())


@pytest.mark.parametrize("name", NOT_POLICIES + ["secret.env"])
def test_no_output_of_any_command_shows_a_line_of_the_parent(tmp_path: Path, run_cli, name: str) -> None:
    child = _child(tmp_path, HOSTILE / name)
    runs = [("validate", str(child)), ("validate", "--all", str(child)), ("validate", "--format", "json", str(child)),
            ("validate", "--format", "github", str(child)), ("budget", "dbt-expert", "--policy", str(child)),
            ("evaluate", "a task", "--agent", "dbt-expert", "--policy", str(child), "--json"),
            ("test", "--policy", str(child)), ("profiles", "--policy", str(child))]
    for args in runs:
        code, out, err = run_cli(*args)
        assert code == 1, (args, out, err)
        assert "extends-" in out + err, (args, out, err)
        assert not MARKER.search(out + err), (args, out, err)
        assert "Traceback" not in err


def test_parents_are_policy_files_by_suffix_even_through_a_symlink(tmp_path: Path) -> None:
    problems, _ = check_policy(_child(tmp_path, HOSTILE / "secret.env"))
    assert [p.rule for p in problems] == ["extends-path"]
    assert "not a .yaml, .yml or .json file" in problems[0].message
    disguised = tmp_path / "base.yaml"
    disguised.symlink_to(HOSTILE / "secret.env")
    problems, _ = check_policy(_child(tmp_path, "base.yaml"))
    assert [p.rule for p in problems] == ["extends-path"]
    assert not MARKER.search(problems[0].format())


def test_a_folder_as_parent_is_refused(tmp_path: Path) -> None:
    (tmp_path / "dir.yaml").mkdir()
    problems, _ = check_policy(_child(tmp_path, "dir.yaml"))
    assert [(p.rule, p.message) for p in problems] == [
        ("extends-path", "the parent policy 'dir.yaml' (" + display_path(tmp_path / "dir.yaml")
         + ") is a directory, not a regular file")]


def test_a_parent_with_a_mistake_still_shows_where(tmp_path: Path) -> None:
    """A file that says it is a policy (a top-level version) but does not parse gets its own error, located."""
    (tmp_path / "base.yaml").write_text("version: 1\nprofiles: [unclosed\n")
    problems, _ = check_policy(_child(tmp_path, "base.yaml"))
    assert [(Path(p.path).name, p.rule) for p in problems] == [("base.yaml", "yaml-syntax")]


def test_a_bare_name_is_a_bundled_policy_never_a_local_file(tmp_path: Path) -> None:
    (tmp_path / "default").write_text("version: 1\nname: shadow\n")
    (tmp_path / "default.yaml").write_text("version: 1\nname: shadow\n")
    assert resolve_parent("default", tmp_path / "ctxbudget.yaml") == Path(bundled_policy("default")).resolve()
    assert load_policy(_child(tmp_path, "default")).name == "default"
    (tmp_path / "base.yaml").write_text("extends: default\nname: base\n")
    problems, _ = check_policy(_child(tmp_path, "base"))
    assert [p.rule for p in problems] == ["extends-missing"]
    assert "did you mean 'base.yaml'?" in problems[0].message
    assert load_policy(_child(tmp_path, "base.yaml")).name == "base"


def test_resolve_parent(tmp_path: Path) -> None:
    child = tmp_path / "team" / "ctxbudget.yaml"
    child.parent.mkdir()
    (tmp_path / "org.yaml").write_text("version: 1\n")
    assert resolve_parent("../org.yaml", child) == (tmp_path / "org.yaml").resolve()
    assert resolve_parent(str(tmp_path / "org.yaml"), child) == (tmp_path / "org.yaml").resolve()
    assert resolve_parent("../nothing.yaml", child) is None
    assert resolve_parent("no-such-bundled-policy", child) is None


def test_read_bytes_reads_only_regular_files_within_the_bound(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_bytes(b"x" * 100)
    assert read_bytes(tmp_path / "big.yaml", limit=10) == b"x" * 11
    with pytest.raises(IsADirectoryError):
        read_bytes(tmp_path)
    with pytest.raises(NotRegularFile, match="is a character device"):
        read_bytes("/dev/null")
    with pytest.raises(UsageError, match="is a character device, not a regular file"):
        load_policy("/dev/zero")


# A FIFO with no writer: opening it for reading blocks forever unless O_NONBLOCK. Each run is a subprocess
# under a timeout, so a regression fails the test instead of hanging the suite.

def _run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, timeout=60,
                              cwd=cwd, env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        pytest.fail(f"ctxbudget {' '.join(args)} hung on a FIFO")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_as_policy_or_parent_never_blocks(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    done = _run("validate", str(fifo), cwd=tmp_path)
    assert (done.returncode, done.stderr.strip()) == (2, f"ctxbudget: error: {fifo}: cannot read: is a FIFO, "
                                                         f"not a regular file")
    done = _run("budget", "dbt-expert", cwd=tmp_path, env={"CTXBUDGET_POLICY": str(fifo)})
    assert done.returncode == 2 and "is a FIFO, not a regular file" in done.stderr
    child = _child(tmp_path, "fifo.yaml")
    done = _run("validate", str(child), cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout.strip() == (f"{child}:2:10: error: the parent policy 'fifo.yaml' is a FIFO, not a regular "
                                   f"file [extends-path]")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_the_open_descriptor_is_checked_too(tmp_path: Path) -> None:
    """A FIFO swapped in after the path was checked: the non-blocking open and fstat still refuse it."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    code = ("import engine.policy.locate as l\n"
            "l._refuse_not_regular = lambda path: None\n"
            "try:\n    l.read_bytes(%r)\nexcept l.NotRegularFile as e:\n    print(e.strerror)\n" % str(fifo))
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("read_bytes blocked on a FIFO")
    assert done.stdout.strip() == "is a FIFO, not a regular file", done.stderr
