"""A thin, frozen Policy: no raw data reachable from it, each job's section compiled by the job from a private
copy, and what it hands out cannot change what it answers."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine.diagnostics import PolicyError
from engine.policy import Policy, load_data, load_policy
from usage_synth import native_record

TASKS = ["Show current Snowflake status", "Troubleshoot cross-system freshness across dbt, Airflow and Snowflake",
         "Design an end-to-end architecture for the data platform", "Why does the dbt run take 3x longer?"]


@pytest.fixture(scope="module")
def data() -> dict:
    return load_data("default")


def _answers(policy: Policy) -> list:
    return [policy.detect(task) for task in TASKS]


def test_a_policy_keeps_no_raw_data_and_cannot_be_changed(data: dict) -> None:
    policy = Policy.from_data(data)
    assert not hasattr(policy, "data")
    for name in ("name", "profiles", "detector", "data", "_sections"):
        with pytest.raises(AttributeError, match="immutable"):
            setattr(policy, name, None)
    with pytest.raises(TypeError):
        policy.profiles["specialist-narrow"] = None  # type: ignore[index]
    with pytest.raises(TypeError):
        policy.profiles["specialist-narrow"].weights["global"] = 1.0  # type: ignore[index]


def test_clearing_what_the_policy_hands_out_changes_nothing(data: dict) -> None:
    """The artifacts (the detection plan the cache stores), the settings' params: copies."""
    policy = Policy.from_data(data)
    expected = _answers(Policy.from_data(data))
    artifacts = policy.artifacts
    plan = artifacts["detection"]
    plan["patterns"].clear()
    plan["entries"].clear()
    plan["derived"].clear()
    artifacts.clear()
    policy.recommendations.params().clear()
    assert _answers(policy) == expected
    assert policy.artifacts["detection"]["patterns"]  # a fresh copy every time


def test_changing_the_data_after_compiling_changes_nothing(data: dict) -> None:
    mine = json.loads(json.dumps(data))
    policy = Policy.from_data(mine)
    expected = _answers(Policy.from_data(data))
    mine["detection"]["signals"].clear()
    mine["detection"].clear()
    mine["memory"] = {"root": "/elsewhere"}
    mine["recommendations"]["rules"].clear()
    mine.clear()
    assert _answers(policy) == expected
    assert policy.packer.settings.root != "/elsewhere"
    assert [r.action for r in policy.recommendations.rules][-1] == "maintain"


def test_a_cached_plan_handed_in_is_copied(data: dict) -> None:
    fresh = Policy.from_data(data)
    plan = fresh.artifacts["detection"]
    policy = Policy.from_data(data, artifacts={"detection": plan})
    plan["patterns"].clear()
    plan["entries"].clear()
    assert _answers(policy) == _answers(fresh)


def test_each_job_compiles_its_own_section_on_first_use(data: dict) -> None:
    from engine.claude_code.settings import HookSettings
    from engine.recommend.rules import RuleSet

    policy = Policy.from_data({**data, "claude_code": {"main_agent": "dbt-expert", "timeout_ms": 900}})
    assert policy._detector is None and policy._jobs == {}
    assert isinstance(policy.hook_settings, HookSettings) and policy.hook_settings is policy.hook_settings
    assert (policy.hook_settings.main_agent, policy.hook_settings.timeout_ms) == ("dbt-expert", 900)
    assert HookSettings.of(policy) is policy.hook_settings
    assert Policy.from_data(data).hook_settings == HookSettings()  # no section: the defaults
    assert isinstance(policy.recommendations, RuleSet) and policy.recommendations is policy.recommendations
    assert policy.recommendations.min_samples == data["recommendations"]["min_samples"]
    assert policy.usage_log == data.get("usage_log")
    assert policy.compiled_expressions() == []  # nothing evaluated yet
    policy.allocate("dbt-expert", "complex")
    assert policy.compiled_expressions() == [policy.budget_formula.source]


def test_the_monitor_takes_a_policy(data: dict) -> None:
    from engine.monitor import monitor

    policy = Policy.from_data(data)
    assert not hasattr(policy, "monitor")
    with monitor(policy, "dbt-expert", tier="complex", log=False) as run:
        run.load("global", 1000)
    assert run.status().budget == 30000
    assert policy.digest.startswith("sha256:") and policy.digest == Policy.from_data(data).digest


RULES = """\
extends: default
recommendations:
  rules:
    - action: maintain
      when: "stats.samples < 0"
    - action: upgrade
      when: "stats.drift.no_such_scope > 1"
"""


@pytest.mark.parametrize("cached", [False, True])
def test_a_rule_keeps_its_position_from_compile_time(tmp_path: Path, monkeypatch, cached: bool) -> None:
    """A rule that fails while recommending is reported where it was written, though the file has changed
    since (nothing reads the YAML again) — compiled afresh or rebuilt from the cache."""
    from engine.analytics import analyze
    from engine.recommend import recommend

    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "policy.yaml"
    path.write_text(RULES)
    if cached:
        load_policy(path)  # writes the entry the next load rebuilds from
    policy = load_policy(path)
    path.write_text("# moved\n\n\n\n\n\n\n" + RULES)
    log = tmp_path / "u.jsonl"
    when = datetime(2026, 1, 5, tzinfo=timezone.utc)
    log.write_text(json.dumps(native_record(when, "specialists/dbt-expert", "specialist-narrow", 20000, 10000,
                                            {"global": 10000})) + "\n")
    with pytest.raises(PolicyError) as caught:
        recommend(policy, analyze(policy, log))
    [problem] = caught.value.problems
    assert (Path(problem.path).name, problem.line, problem.col) == ("policy.yaml", 7, 13)
    assert problem.json_path == "$.recommendations.rules[1].when"


# -- the budget table: the formula's values worked out once, kept as data ------------------------------------------

FORMULAS = [
    None,  # the default formula
    "profile.base * tier.multiplier + size(agent)",  # reads agent: one row per agent
    "profile.max / 3.0 * tier.rank",  # halves to round
    "agent == 'specialists/dbt-expert' ? 7 : profile.base",
    "detection.confidence < 0.6 ? profile.base * detection.runner_up.multiplier : min(round(profile.base * "
    "tier.multiplier), profile.max)",  # reads detection: a detected tier's allocation evaluates it
]


@pytest.mark.parametrize("formula", FORMULAS)
def test_allocations_from_the_budget_table_equal_the_formula_s(formula: str | None, tmp_path: Path) -> None:
    """Every agent at every tier, given and detected: the table's answer is the formula's."""
    path = tmp_path / "p.yaml"
    path.write_text("extends: default\n" + (f"budget:\n  formula: {json.dumps(formula)}\n" if formula else ""))
    data = load_data(path)
    fresh = Policy.from_data(data)  # no table: every allocation evaluates the formula
    table = fresh.artifacts["budgets"]
    assert table["by"] == ("agent" if formula and "agent" in formula else "profile")
    assert table["detection"] == bool(formula and "detection" in formula)
    warm = Policy.from_data(json.loads(json.dumps(data)), artifacts=json.loads(json.dumps({"budgets": table})))
    for agent in fresh.agents:
        for tier in fresh.tiers:
            assert warm.allocate(agent, tier.id) == fresh.allocate(agent, tier.id), (agent, tier.id)
        for task in TASKS:
            assert warm.evaluate(task, agent) == fresh.evaluate(task, agent), (agent, task)
    assert warm.compiled_expressions() == ([warm.budget_formula.source] if table["detection"] else [])


def test_no_table_past_its_size_bound_or_for_a_formula_that_fails(data: dict, monkeypatch) -> None:
    import engine.policy.compiled as compiled

    monkeypatch.setattr(compiled, "MAX_TABLE_CELLS", 10)  # 4 profiles × 4 tiers is over it
    policy = Policy.from_data(data)
    assert "budgets" not in policy.artifacts
    assert policy.allocate("dbt-expert", "complex").budget == 30000
    monkeypatch.undo()
    failing = json.loads(json.dumps(data))
    failing["budget"] = {"formula": "profile.base - 40000"}  # negative for the smaller profiles: validation refuses it
    assert "budgets" not in Policy.from_data(failing).artifacts


@pytest.mark.parametrize("table", [
    {"by": "profile", "detection": False, "table": {}},  # a profile missing
    {"by": "agent", "detection": False, "table": {"specialist-narrow": [1, 2, 3, 4]}},
    {"by": "profile", "detection": "no", "table": None},
    [1, 2],
])
def test_a_table_that_does_not_fit_the_policy_is_refused(data: dict, table) -> None:
    with pytest.raises(ValueError, match="budgets"):
        Policy.from_data(data, artifacts={"budgets": table})
