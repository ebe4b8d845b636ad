"""`extends`: a team's small file over the bundled default; positions point into the file that wrote a value."""

from __future__ import annotations

from pathlib import Path

from engine.policy import check_policy, load_policy

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
