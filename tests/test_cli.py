"""One integration test per command, checking the whole output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import DATA


def test_budget_json(run_cli) -> None:
    code, out, err = run_cli("budget", "dbt-expert", "complex", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {
        "agent": "specialists/dbt-expert", "profile": "specialist-narrow", "tier": "complex", "multiplier": 1.5,
        "budget": 30000, "capped": False,
        "scopes": {"global": 6000, "agent_recent": 9000, "agent_patterns": 15000}}


def test_budget_text(run_cli) -> None:
    code, out, _ = run_cli("budget", "data-architect", "multi-system")
    assert code == 0
    assert out == (
        "roles/data-architect-role: 150,000 tokens — profile role-architect, tier multi-system ×2\n"
        "scope           weight  tokens\n"
        "--------------  ------  ------\n"
        "global            0.35  52,500\n"
        "agent_recent      0.15  22,500\n"
        "agent_patterns     0.5  75,000\n")


@pytest.mark.parametrize(("args", "message"), [
    (("budget", "dbt-expret", "simple"), "unknown agent 'dbt-expret'; did you mean 'specialists/dbt-expert'?"),
    (("budget", "dbt-expert", "huge"), "unknown tier 'huge'"),
])
def test_budget_unknown_names_exit_1(run_cli, args: tuple, message: str) -> None:
    code, out, err = run_cli(*args)
    assert code == 1 and out == ""
    assert message in err


def test_profiles_json(run_cli) -> None:
    code, out, _ = run_cli("profiles", "--json")
    assert code == 0
    profiles = json.loads(out)
    assert [(p["id"], p["base"], p["max"], p["agents"]) for p in profiles] == [
        ("specialist-narrow", 20000, 50000, 13), ("specialist-broad", 35000, 75000, 3),
        ("role-coordinator", 50000, 100000, 7), ("role-architect", 75000, 150000, 2)]
    assert profiles[0]["weights"] == {"global": 0.2, "agent_recent": 0.3, "agent_patterns": 0.5}


def test_agents_json_and_text(run_cli) -> None:
    code, out, _ = run_cli("agents", "--json")
    agents = json.loads(out)
    assert code == 0 and len(agents) == 25
    assert {"agent": "roles/research-role", "profile": "role-architect"} in agents
    code, out, _ = run_cli("agents", "--profile", "role-architect")
    assert out.splitlines()[2:] == ["roles/data-architect-role  role-architect",
                                    "roles/research-role        role-architect"]


def test_validate_default_and_formats(run_cli) -> None:
    code, out, _ = run_cli("validate")
    assert code == 0 and out.endswith(": valid (25 agents, 4 profiles, 4 tiers)\n")
    bad = str(DATA / "bad" / "unknown-profile.yaml")
    code, out, _ = run_cli("validate", bad)
    assert code == 1
    assert out == (f"{bad}:4:27: error: agent 'specialists/dbt-expert' is assigned to unknown profile "
                   "'specialist-narow'; did you mean 'specialist-narrow'? [unknown-profile]\n")
    code, out, _ = run_cli("validate", "--format", "json", bad, "default")
    report = json.loads(out)
    assert code == 1 and report["valid"] is False
    assert [p["valid"] for p in report["policies"]] == [False, True]
    assert report["policies"][0]["problems"][0] == {
        "path": bad, "line": 4, "col": 27, "severity": "error", "rule": "unknown-profile",
        "message": "agent 'specialists/dbt-expert' is assigned to unknown profile 'specialist-narow'; "
                   "did you mean 'specialist-narrow'?",
        "json_path": "$.agents['specialists/dbt-expert']"}
    code, out, _ = run_cli("validate", "--format", "github", bad)
    assert out.startswith(f"::error file={bad.replace(':', '%3A')},line=4,col=27,title=unknown-profile::agent ")


def test_validate_counts_the_rest_of_the_schema_errors(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("extends: default\nenforcement: strict\nalerts: {info: high}\nname: 3\n")
    code, out, _ = run_cli("validate", str(path))
    lines = out.splitlines()
    assert code == 1 and len(lines) == 2
    assert lines[1] == f"{path}: 2 more schema errors (--all shows them)"
    code, out, _ = run_cli("validate", "--all", str(path))
    assert len(out.splitlines()) == 3


def test_validate_unreadable_file_exits_2(run_cli, tmp_path: Path) -> None:
    code, out, err = run_cli("validate", str(tmp_path / "missing.yaml"))
    assert code == 2 and "cannot read" in err
    code, _, err = run_cli("validate", str(tmp_path))
    assert code == 2 and "is a directory" in err


def test_test_command(run_cli, tmp_path: Path) -> None:
    code, out, _ = run_cli("test")
    assert code == 0 and out.endswith("examples pass\n")
    path = tmp_path / "p.yaml"
    path.write_text("extends: default\nexamples:\n  budgets:\n    - {agent: dbt-expert, tier: simple, budget: 9999}\n")
    code, out, _ = run_cli("test", str(path))
    assert code == 1
    assert "dbt-expert @ simple" in out and "9,999" in out and "10,000" in out
    # the task examples come from the default: run with --inherited only
    assert out.splitlines()[-1] == f"{path}: 0 of 1 examples pass; 17 inherited examples not run (--inherited runs them)"
    code, out, _ = run_cli("test", str(path), "--inherited")
    assert code == 1 and out.splitlines()[-1] == f"{path}: 17 of 18 examples pass"
    code, out, _ = run_cli("test", str(path), "--json")
    assert json.loads(out)["failed"] == 1


def test_policy_option_and_environment(run_cli, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("extends: default\nprofiles:\n  specialist-narrow: {base: 30000}\n")
    _, out, _ = run_cli("budget", "dbt-expert", "medium", "--json", "--policy", str(path))
    assert json.loads(out)["budget"] == 30000
    monkeypatch.setenv("CTXBUDGET_POLICY", str(path))
    from engine.cli import main
    assert main(["budget", "dbt-expert", "--json"]) == 0


def test_invalid_policy_exits_1_with_positions(run_cli) -> None:
    bad = str(DATA / "bad" / "wrong-type.yaml")
    code, out, err = run_cli("budget", "dbt-expert", "--policy", bad)
    assert code == 1 and out == ""
    assert err.startswith(f"{bad}:5:11: error: ")


def test_version_and_usage(run_cli) -> None:
    from engine import __version__

    code, out, _ = run_cli("--version")
    assert code == 0 and out.strip() == f"ctxbudget {__version__}"
    code, _, err = run_cli()
    assert code == 2 and "COMMAND" in err
    code, _, err = run_cli("budget")
    assert code == 2 and "required" in err


def test_rich_tables_on_a_terminal(run_cli, monkeypatch) -> None:
    from engine.cli import output

    monkeypatch.setattr(output, "fancy", lambda: True)
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_cli("profiles")
    assert code == 0
    assert "┃" in out or "│" in out  # drawn by rich
    assert "specialist-narrow" in out
