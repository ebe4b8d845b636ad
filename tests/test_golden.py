"""Golden examples and `extends`: a policy runs the examples its own file writes; its parents' with --inherited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.golden import inherited_count, run_examples
from engine.policy import check_policy, load_policy

TEAM = """\
version: 1
extends: default
agents:
  specialists/dbt-expert: specialist-broad
profiles:
  role-architect: {max: 200000}
"""

OWN_BUDGETS = TEAM + """\
examples:
  budgets:
    - {agent: dbt-expert, tier: complex, budget: 52500}
    - {agent: aws-expert, tier: simple, budget: 17500}
"""

DEFAULT_EXAMPLES = 34  # 17 budget and 17 task examples in policies/default.yaml
DEFAULT_TASKS = 17


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_team_policy_without_examples_passes_and_says_what_it_left_out(tmp_path: Path, run_cli) -> None:
    path = _write(tmp_path, "team.yaml", TEAM)
    code, out, err = run_cli("test", str(path))
    assert (code, err) == (0, "")
    assert out == (f"{path}: no examples of its own; {DEFAULT_EXAMPLES} inherited examples not run "
                   "(--inherited runs them)\n")


def test_inherited_runs_the_parents_examples_and_names_their_file(tmp_path: Path, run_cli) -> None:
    path = _write(tmp_path, "team.yaml", TEAM)
    code, out, _ = run_cli("test", str(path), "--inherited")
    assert code == 1
    failed = [line for line in out.splitlines() if line.startswith("budget ")]
    # the default pins dbt-expert at specialist-narrow; the team moved it to specialist-broad
    assert len(failed) == 5 and all("dbt-expert @" in line and line.endswith("default.yaml") for line in failed)
    assert out.splitlines()[-1] == f"{path}: {DEFAULT_EXAMPLES - 5} of {DEFAULT_EXAMPLES} examples pass"


def test_own_section_runs_and_the_other_section_stays_inherited(tmp_path: Path, run_cli) -> None:
    path = _write(tmp_path, "team.yaml", OWN_BUDGETS)
    code, out, _ = run_cli("test", str(path), "--json")
    report = json.loads(out)
    assert code == 0
    assert (report["passed"], report["failed"], report["inherited_not_run"]) == (2, 0, DEFAULT_TASKS)  # the tasks
    assert [(r["subject"], r["inherited"], r["origin"]) for r in report["results"]] == [
        ("dbt-expert @ complex", False, None), ("aws-expert @ simple", False, None)]

    code, out, _ = run_cli("test", str(path), "--json", "--inherited")
    report = json.loads(out)
    assert code == 0 and report["inherited_not_run"] == 0
    tasks = [r for r in report["results"] if r["kind"] == "task"]
    assert len(tasks) == DEFAULT_TASKS and all(r["inherited"] and r["origin"].endswith("default.yaml") for r in tasks)


def test_a_failing_own_example_fails(tmp_path: Path, run_cli) -> None:
    path = _write(tmp_path, "team.yaml", OWN_BUDGETS.replace("52500", "30000"))
    code, out, _ = run_cli("test", str(path))
    assert code == 1
    assert "dbt-expert @ complex  30,000    52,500" in out
    assert out.splitlines()[-1] == f"{path}: 1 of 2 examples pass; {DEFAULT_TASKS} inherited examples not run (--inherited runs them)"


def test_origin_is_the_file_that_wrote_the_example_through_a_chain(tmp_path: Path) -> None:
    _write(tmp_path, "base.yaml", "version: 1\nextends: default\nexamples:\n  tasks:\n"
                                  "    - {task: Show current Snowflake status, tier: simple}\n")
    _write(tmp_path, "middle.yaml", "version: 1\nextends: base.yaml\nenforcement: hard\n")
    child = _write(tmp_path, "child.yaml", "version: 1\nextends: middle.yaml\n")
    problems, policy = check_policy(child)
    assert policy is not None, problems
    assert [Path(e.origin).name for e in policy.task_examples] == ["base.yaml"]
    assert all(e.origin.endswith("default.yaml") for e in policy.budget_examples)
    assert run_examples(policy) == [] and inherited_count(policy) == 18
    assert len(run_examples(policy, inherited=True)) == 18


def test_a_policy_of_one_file_owns_all_its_examples(default_policy) -> None:
    assert inherited_count(default_policy) == 0
    assert len(run_examples(default_policy)) == DEFAULT_EXAMPLES


def test_origins_survive_the_compiled_policy_cache(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CTXBUDGET_NO_CACHE", raising=False)
    path = _write(tmp_path, "team.yaml", OWN_BUDGETS)
    first = load_policy(path)
    assert list((tmp_path / "cache").iterdir()), "the first load writes an entry"
    second = load_policy(path)
    for policy in (first, second):
        assert [bool(e.origin) for e in policy.budget_examples] == [False, False]
        assert [bool(e.origin) for e in policy.task_examples] == [True] * DEFAULT_TASKS


@pytest.mark.parametrize("drop", ["agents: {specialists/dbt-expert: null}",
                                  "agents: {specialists/aws-expert: null, roles/data-architect-role: null}"])
def test_an_inherited_example_naming_what_the_child_dropped_does_not_invalidate_it(
        tmp_path: Path, run_cli, drop: str) -> None:
    """docs/policy.md shows `agents: {roles/research-role: null}`; dropping an agent the default's examples
    name must not make the team's policy invalid."""
    path = _write(tmp_path, "team.yaml", f"version: 1\nextends: default\n{drop}\n")
    code, out, err = run_cli("validate", str(path))
    assert code == 0, out + err
    assert run_cli("test", str(path))[0] == 0
    code, out, _ = run_cli("test", str(path), "--inherited")
    assert code == 1 and "unknown" in out


def test_an_own_example_naming_an_unknown_agent_is_still_invalid(tmp_path: Path, run_cli) -> None:
    path = _write(tmp_path, "team.yaml", TEAM + "examples:\n  budgets:\n"
                                                "    - {agent: dbt-exprt, tier: complex, budget: 1}\n")
    code, out, _ = run_cli("validate", str(path))
    assert code == 1 and "[unknown-agent]" in out and f"{path}:9:" in out


def test_a_cache_entry_that_does_not_know_the_origins_is_a_miss(tmp_path: Path, monkeypatch, run_cli) -> None:
    """An entry without the origins (edited by hand, its checksum recomputed) would make every inherited example
    look like the policy's own: the cache treats it as a miss and reads the chain again."""
    from engine.policy import cache as policy_cache

    cache = tmp_path / "cache"
    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(cache))
    monkeypatch.delenv("CTXBUDGET_NO_CACHE", raising=False)
    path = _write(tmp_path, "team.yaml", TEAM)
    load_policy(path)
    [entry] = cache.glob("*.entry")
    head, plan = policy_cache.unframe(entry.read_bytes())
    found = json.loads(head)
    del found["artifacts"]["example_origins"]
    entry.write_bytes(policy_cache.frame(json.dumps(found).encode(), plan))
    assert inherited_count(load_policy(path)) == DEFAULT_EXAMPLES
    assert "example_origins" in json.loads(policy_cache.unframe(entry.read_bytes())[0])["artifacts"]  # rewritten
    code, out, _ = run_cli("test", str(path))
    assert code == 0 and f"no examples of its own; {DEFAULT_EXAMPLES} inherited examples not run" in out

