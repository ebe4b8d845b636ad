"""The declared types of the variables policy expressions see match the values the code really builds."""

from __future__ import annotations

import json

import pytest

import engine
from engine.analytics import analyze
from engine.budget import formula_bindings, formula_variables
from engine.detect import conditions
from engine.expr import ExprTypeError, check
from engine.expr.types import DYN, Type
from engine.expr.values import kind
from usage_synth import START, native_record

_KINDS = {"int": ("int",), "double": ("double", "int"), "string": ("string",), "bool": ("bool",),
          "null": ("null",), "list": ("list",), "map": ("map",), "object": ("map",)}


def conforms(value, t: Type, where: str) -> None:
    """``value`` is what ``t`` declares, fields and all (maps: every value; objects: exactly the fields)."""
    if t == DYN:
        return
    assert kind(value) in _KINDS[t.kind], f"{where}: {kind(value)}, declared {t}"
    if t.kind == "object":
        assert set(value) == set(t.fields), f"{where}: fields {sorted(value)} declared {sorted(t.fields)}"
        for name, field in t.fields.items():
            conforms(value[name], field, f"{where}.{name}")
    elif t.kind in ("map", "list"):
        for key in value:
            item = value[key] if t.kind == "map" else key
            conforms(item, t.item, f"{where}[{key!r}]")
    if t.size is not None and t.kind in ("string", "list", "map"):
        assert len(value) <= t.size, f"{where}: size {len(value)} over its bound {t.size}"


def test_recommendation_rules_see_what_is_declared(tmp_path, monkeypatch):
    import engine.recommend as recommend_module

    policy = engine.load_policy()
    weights = policy.profiles["specialist-narrow"].weights
    records = [native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, int(20000 * u),
                             engine.budget.split(int(20000 * u), weights)) for u in (0.5, 1.2, 0.9)]
    log = tmp_path / "u.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    seen = []
    real = recommend_module.first_match

    def spy(rules, bindings):
        seen.append(bindings)
        return real(rules, bindings)

    monkeypatch.setattr(recommend_module, "first_match", spy)
    recommend_module.recommend(policy, analyze(policy, log))
    assert seen
    declared = recommend_module.rule_variables()
    for bindings in seen:
        assert set(bindings) == set(declared)
        for name, t in declared.items():
            conforms(bindings[name], t, name)


def test_the_declared_stats_fields_are_the_real_stats_fields():
    from engine.analytics.stats import UsageStats
    from engine.recommend import _stats_binding, rule_variables

    assert set(rule_variables()["stats"].fields) == set(_stats_binding(UsageStats(), {}, 0.0))


def test_the_budget_formula_sees_what_is_declared():
    policy = engine.load_policy()
    declared = formula_variables()
    for agent, profile_id in list(policy.agents.items())[:3]:
        for tier in policy.tiers:
            bindings = formula_bindings(agent, policy.profiles[profile_id], tier)
            assert set(bindings) == set(declared)
            for name, t in declared.items():
                conforms(bindings[name], t, name)


def test_conditions_see_what_is_declared(monkeypatch):
    policy = engine.load_policy()
    detector = policy.detector
    seen = []
    from engine.detect import detector as detector_module

    real = detector_module._Bindings

    class Spy(real):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self)

    monkeypatch.setattr(detector_module, "_Bindings", Spy)
    detector.detect("Design the migration of the dbt models to Snowflake and Airflow across three teams?",
                    {"agent_count": 3, "previous_tier": "complex"})
    assert seen
    signals = len(detector.signals)
    groups = len({s.group for s in detector.signals if s.group})
    declared = conditions.condition_variables(signals, groups, len(policy.tiers))
    assert set(declared) == set(conditions.NAMES)
    for bindings in seen:
        for name, t in declared.items():
            conforms(bindings[name], t, name)


@pytest.mark.parametrize("source, message", [
    ("stats.exceedance > 0.2", "stats has no field 'exceedance'; did you mean 'exceedance_rate'?"),
    ("stats.samples", "must give true or false, but gives int"),
    ("stats.tiers.complex.mean > 1.0", "has no field 'mean'"),
    ("profile.base.x > 1", "cannot select field 'x' from a value of type int"),
    ("stats.drift.all(s, s > 0.1)", "cannot compare string > double"),
    ("size(stats.samples) > 1", "the argument of size() must be"),
    ("agent.matches(1)", "the argument of matches() must be string"),
    ("stats.samples in 3", "the right of 'in' must be a list or a map"),
    ("params.min_samples + 'x' == 'y'", "cannot add int + string"),
    ("stats.shares.exists(s, stats.shares[s])", "the condition of exists() must be"),
])
def test_type_errors_in_rule_conditions(source, message):
    from engine.recommend import rule_variables

    with pytest.raises(ExprTypeError) as caught:
        check(source, rule_variables(), expect=("bool",), what="the condition")
    assert message in caught.value.message


@pytest.mark.parametrize("source", [
    "stats.samples < params.min_samples",
    "stats.tiers.exists(t, stats.tiers[t].exceedance_rate > 0.5)",
    "has(stats.drift.global) && stats.drift.global > 0.1",
    "profile.larger != null && agent.startsWith('roles/')",
    "stats.p90_usage > 1.0 || confidence.upgrade > 0.9",
    "dyn(stats.samples) == 3",
])
def test_well_typed_rule_conditions(source):
    from engine.recommend import rule_variables

    check(source, rule_variables(), expect=("bool",))
