"""Recommendations: known answers in both log formats, confidence that grows with the runs, policy rules."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import engine
from engine.apply import plan_changes
from engine.analytics import analyze
from engine.budget import split
from engine.diagnostics import PolicyError
from engine.policy import check_policy
from engine.recommend import confidence, hundredths, profile_ladder, recommend
from usage_synth import EXPECTED, START, native_record, write_known_log


@pytest.fixture(scope="module")
def policy():
    return engine.load_policy()


@pytest.mark.parametrize("fmt", ["native", "seed", "seed-breakdown"])
def test_known_answers(policy, tmp_path, fmt):
    log = write_known_log(tmp_path / "k.jsonl", fmt)
    recommendations = recommend(policy, analyze(policy, log))
    assert {r.agent: r.action for r in recommendations} == EXPECTED
    by_agent = {r.agent: r for r in recommendations}
    assert by_agent["specialists/dbt-expert"].target_profile == "specialist-broad"
    assert by_agent["specialists/aws-expert"].target_profile == "specialist-narrow"
    assert by_agent["specialists/snowflake-expert"].weights == {"global": 0.1, "agent_recent": 0.2,
                                                               "agent_patterns": 0.7}
    assert by_agent["specialists/tableau-expert"].reason == "5 runs; at least 10 needed"
    assert by_agent["specialists/dbt-expert"].reason == \
        "over budget in 30 of 100 runs (30.0 %, above 20.0 %); move to specialist-broad"
    for rec in recommendations:
        data = rec.to_dict()
        assert list(data) == ["agent", "profile", "action", "confidence", "reason", "evidence"]
        assert 0.0 <= data["confidence"] <= 1.0
        json.dumps(data)
    assert {r.agent: r.confidence >= 0.9 for r in recommendations} == {
        a: action != "insufficient-data" for a, action in EXPECTED.items()}


@pytest.mark.parametrize("fewer, more", [
    ((3, 10), (30, 100)),
    ((5, 20), (50, 200)),
    ((3, 10), (4, 10)),
    ((25, 100), (30, 100)),
])
def test_more_evidence_is_more_sure(fewer, more):
    assert confidence.rate_above(*fewer, 0.2) < confidence.rate_above(*more, 0.2)


@pytest.mark.parametrize("k, n, threshold, low, high", [
    (3, 10, 0.2, 0.75, 0.80),  # 3 of 10 over a 20 % threshold: not very sure
    (30, 100, 0.2, 0.99, 1.0),  # 30 of 100: sure
    (20, 100, 0.2, 0.49, 0.51),  # exactly at the threshold: a coin toss
    (0, 100, 0.2, 0.0, 0.01),
    (5, 0, 0.2, 0.0, 0.0),  # no runs, no confidence
])
def test_wilson_confidence(k, n, threshold, low, high):
    assert low <= confidence.rate_above(k, n, threshold) <= high


def test_wilson_interval():
    low, high = confidence.wilson_interval(30, 100)
    assert (round(low, 3), round(high, 3)) == (0.219, 0.396)


@pytest.mark.parametrize("values, expected", [
    ({"a": 1, "b": 1, "c": 1}, {"a": 0.34, "b": 0.33, "c": 0.33}),
    ({"a": 0.1, "b": 0.2, "c": 0.7}, {"a": 0.1, "b": 0.2, "c": 0.7}),
    ({"a": 0.125, "b": 0.125, "c": 0.75}, {"a": 0.13, "b": 0.12, "c": 0.75}),
])
def test_hundredths_sum_to_one(values, expected):
    result = hundredths(values)
    assert result == expected and round(sum(result.values()), 9) == 1


def test_profiles_are_ordered_by_size(policy):
    assert profile_ladder(policy) == ["specialist-narrow", "specialist-broad", "role-coordinator", "role-architect"]


def runs_of(agent, profile, budget, usages):
    """Runs loading ``usages`` of ``budget``, split across scopes as ``profile`` weighs them."""
    weights = engine.load_policy().profiles[profile].weights
    return [native_record(START, agent, profile, budget, int(budget * u), split(int(budget * u), weights))
            for u in usages]


def log_of(tmp_path, records):
    path = tmp_path / "u.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("profile_max, tiers, advice", [
    # the max (150,000) does not cap role-architect at medium (75,000): raising it would change nothing
    (None, ["medium"], "raise its base (its max does not cap the budget at medium, where runs went over)"),
    (100000, ["complex"], "raise its max"),  # 1.5 × 75,000 is capped at 100,000
    (100000, ["medium", "complex"], "raise its max (it caps the budget at complex) and its base (for medium)"),
])
def test_the_largest_profile_has_nowhere_to_go(policy, tmp_path, profile_max, tiers, advice):
    if profile_max is not None:
        path = tmp_path / "policy.yaml"
        path.write_text(f"extends: default\nprofiles:\n  role-architect: {{max: {profile_max}}}\n")
        policy = engine.load_policy(path)
    records = []
    for tier in tiers:
        budget = policy.allocate("roles/research-role", tier).budget
        records += [native_record(START, "roles/research-role", "role-architect", budget, int(budget * 1.2),
                                  {"global": int(budget * 1.2)}, tier=tier) for _ in range(20)]
    [rec] = recommend(policy, analyze(policy, log_of(tmp_path, records)))
    assert (rec.action, rec.target_profile) == ("upgrade", None)
    assert rec.reason.endswith("role-architect is the largest profile: " + advice)


def test_only_runs_under_the_current_profile_count(policy, tmp_path):
    old = runs_of("specialists/dbt-expert", "role-architect", 75000, [0.1] * 40)  # before a change
    new = runs_of("specialists/dbt-expert", "specialist-narrow", 20000, [0.8] * 12)
    [rec] = recommend(policy, analyze(policy, log_of(tmp_path, old + new)))
    assert (rec.action, rec.evidence["runs"], rec.evidence["runs_under_other_profiles"]) == ("maintain", 12, 40)


def policy_with(tmp_path, recommendations_yaml):
    path = tmp_path / "policy.yaml"
    path.write_text("extends: default\nrecommendations:\n" + recommendations_yaml)
    return engine.load_policy(path)


def test_rules_and_thresholds_come_from_the_policy(tmp_path):
    policy = policy_with(tmp_path, """\
  min_samples: 3
  upgrade_exceedance_rate: 0.5
  rules:
    - action: insufficient-data
      when: stats.samples < params.min_samples
    - action: upgrade
      when: stats.p90_usage > 1.0 && stats.exceedance_rate > params.upgrade_exceedance_rate
      confidence: "confidence.upgrade * 0.5"
      reason: the 90th percentile run does not fit
    - action: maintain
      when: "true"
""")
    log = log_of(tmp_path, runs_of("specialists/dbt-expert", "specialist-narrow", 20000, [1.2] * 4)
                 + runs_of("specialists/aws-expert", "specialist-broad", 35000, [0.9, 1.2, 1.2]))
    recs = {r.agent: r for r in recommend(policy, analyze(policy, log))}
    dbt, aws = recs["specialists/dbt-expert"], recs["specialists/aws-expert"]
    assert (dbt.action, dbt.reason, dbt.evidence["rule"]) == ("upgrade", "the 90th percentile run does not fit", 1)
    assert dbt.confidence == pytest.approx(confidence.rate_above(4, 4, 0.5) * 0.5)
    assert (aws.action, aws.evidence["rule"]) == ("upgrade", 1)


@pytest.mark.parametrize("when, message", [  # (what validate cannot foresee: the keys of a map, a dyn value)
    ("stats.drift.no_such_scope > 1", "recommendation rule 1, when: no such key: 'no_such_scope'"),
    ("profile.smaller", "recommendation rule 1, when: gives None, not true or false"),
])
def test_a_rule_that_fails_while_recommending_is_reported_at_its_line(tmp_path, when, message):
    policy = policy_with(tmp_path, f"  rules:\n    - action: upgrade\n      when: \"{when}\"\n")
    log = log_of(tmp_path, runs_of("specialists/dbt-expert", "specialist-narrow", 20000, [0.5] * 3))
    with pytest.raises(PolicyError) as caught:
        recommend(policy, analyze(policy, log))
    [problem] = caught.value.problems
    assert (Path(problem.path).name, problem.line, problem.rule) == ("policy.yaml", 5, "recommendation-rule")
    assert message in problem.message and problem.json_path == "$.recommendations.rules[0].when"


@pytest.mark.parametrize("rule, line, col, message", [
    ('{action: upgrade, when: "stats.exceedance_rate >"}', 4, 55, "recommendation rule 1, when, column 24"),
    ('{action: upgrade, when: "statz.samples > 1"}', 4, 32, "unknown name 'statz'"),
    ('{action: maintain, when: "true", confidence: "1 +"}', 4, 56, "recommendation rule 1, confidence, column 4"),
    # type errors (issue 8 §7): these passed validate, then broke the scheduled `recommend`
    ('{action: upgrade, when: "stats.exceedance > 0.2"}', 4, 38,
     "stats has no field 'exceedance'; did you mean 'exceedance_rate'?"),
    ('{action: upgrade, when: "stats.samples"}', 4, 32, "the condition must give true or false, but gives int"),
    ('{action: upgrade, when: "true", confidence: "stats.samples > 1"}', 4, 52, "must give a number, but gives bool"),
    ('{action: upgrade, when: "stats.samples > \'10\'"}', 4, 46, "cannot compare int > string"),
])
def test_validate_checks_rule_expressions(tmp_path, rule, line, col, message):
    path = tmp_path / "policy.yaml"
    path.write_text(f"extends: default\nrecommendations:\n  rules:\n    - {rule}\n")
    problems, policy = check_policy(path)
    assert policy is None
    [problem] = problems
    expected = "expression-type" if "column" not in message and "unknown name" not in message else "recommendation-rule"
    assert (problem.rule, problem.line, problem.col) == (expected, line, col), problem.format()
    assert message in problem.message


def test_rules_are_compiled_with_the_policy_and_cached(tmp_path, monkeypatch):
    import subprocess
    import sys

    monkeypatch.setenv("CTXBUDGET_CACHE_DIR", str(tmp_path))
    probe = ("import sys, engine; p = engine.load_policy('default'); r = p.recommendations.rules; "
             "print(len(r), r[1].when_program.evaluate({'stats': {'exceedance_rate': 0.3}, "
             "'params': {'upgrade_exceedance_rate': 0.2}}), 'ruamel.yaml' in sys.modules)")
    outputs = [subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
               for _ in range(2)]
    # the second start reads the policy from the cache (no YAML) and compiles the rules from their source (the
    # cache holds data only)
    assert outputs == ["5 True True\n", "5 True False\n"]


# -- tiers: a multiplier off for every agent, and tasks detected one tier too low ------------------------------

def _runs_at(policy, agent, tier, usages):
    allocation = policy.allocate(agent, tier)
    return [native_record(START, allocation.agent, allocation.profile, allocation.budget,
                          int(allocation.budget * u), {"global": int(allocation.budget * u)}, tier=tier)
            for u in usages]


def test_a_tier_off_for_every_agent_is_the_tiers_fault(policy, tmp_path):
    records = []
    for agent in ("dbt-expert", "aws-expert", "data-architect"):  # three profiles, all over budget at complex
        records += _runs_at(policy, agent, "complex", [1.3] * 15 + [0.9] * 5)
        records += _runs_at(policy, agent, "medium", [0.8] * 20)
    recs = recommend(policy, analyze(policy, log_of(tmp_path, records)))
    [tier] = [r for r in recs if r.action == "adjust-tier"]
    assert (tier.agent, tier.tier, tier.evidence["multiplier"]) == ("(all agents)", "complex", 1.5)
    # pooled mean usage 1.2; the middle of the good band is (0.5 + 1) / 2 = 0.75: 1.5 × 1.2 / 0.75 = 2.4
    assert tier.evidence["proposed_multiplier"] == 2.4 and tier.confidence > 0.9
    assert tier.reason.endswith("set complex's multiplier 1.5 → 2.4")
    assert tier.to_dict()["tier"] == "complex"
    assert "adjust-tier" not in [c.action for c in plan_changes(policy, recs).changes]  # apply does not write it


def test_one_agent_off_at_a_tier_is_not_the_tiers_fault(policy, tmp_path):
    records = _runs_at(policy, "dbt-expert", "complex", [1.3] * 20) + _runs_at(policy, "aws-expert", "complex",
                                                                                [0.8] * 20)
    assert not [r for r in recommend(policy, analyze(policy, log_of(tmp_path, records))) if r.action == "adjust-tier"]


@pytest.mark.parametrize("complex_usage, diagnosis", [
    (1.2, "tier-too-low"),        # 1.2 × 30,000 fits multi-system's 40,000 (specialist-narrow, max 50,000)
    (1.8, "profile-too-small"),   # 1.8 × 30,000 = 54,000 does not
])
def test_tasks_detected_one_tier_too_low_are_told_from_a_small_profile(policy, tmp_path, complex_usage, diagnosis):
    records = (_runs_at(policy, "dbt-expert", "complex", [complex_usage] * 20)
               + _runs_at(policy, "dbt-expert", "medium", [0.7] * 30))
    [rec] = [r for r in recommend(policy, analyze(policy, log_of(tmp_path, records))) if r.agent.endswith("dbt-expert")]
    assert rec.action == "upgrade" and rec.evidence["diagnosis"] == diagnosis
    assert ("detected one tier too low" in rec.reason) == (diagnosis == "tier-too-low")
