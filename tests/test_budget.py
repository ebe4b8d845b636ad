"""Budgets: the seed's 4×4 table exactly, caps, and the split into scopes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.budget import split, tokens

SEED_TABLE = {
    "dbt-expert": ("specialist-narrow", [10000, 20000, 30000, 40000]),
    "aws-expert": ("specialist-broad", [17500, 35000, 52500, 70000]),
    "analytics-engineer": ("role-coordinator", [25000, 50000, 75000, 100000]),
    "data-architect": ("role-architect", [37500, 75000, 112500, 150000]),
}
TIERS = ["simple", "medium", "complex", "multi-system"]


@pytest.mark.parametrize("agent", SEED_TABLE)
@pytest.mark.parametrize("tier_index", range(4))
def test_seed_budget_table(default_policy, agent: str, tier_index: int) -> None:
    profile, budgets = SEED_TABLE[agent]
    allocation = default_policy.allocate(agent, TIERS[tier_index])
    assert (allocation.profile, allocation.tier, allocation.budget) == (profile, TIERS[tier_index], budgets[tier_index])
    assert sum(allocation.scopes.values()) == allocation.budget
    assert not allocation.capped


def test_default_tier_is_medium(default_policy) -> None:
    assert default_policy.allocate("dbt-expert").budget == 20000


def test_scope_split_follows_weights(default_policy) -> None:
    assert dict(default_policy.allocate("dbt-expert", "medium").scopes) == {
        "global": 4000, "agent_recent": 6000, "agent_patterns": 10000}


def _policy(formula: str | None, base: int = 20000, maximum: int = 50000, multiplier: float = 1.0):
    from engine.policy import Policy

    data = {"profiles": {"p": {"base": base, "max": maximum, "weights": {"g": 1.0}}}, "agents": {"a/x": "p"},
            "tiers": [{"id": "t", "multiplier": multiplier}]}
    if formula is not None:
        data["budget"] = {"formula": formula}
    return Policy.from_data(data)


@pytest.mark.parametrize(("formula", "base", "multiplier", "maximum", "expected"), [
    (None, 20000, 0.5, 50000, (10000, False)),
    (None, 20000, 3.0, 50000, (50000, True)),
    (None, 20000, 2.5, 50000, (50000, False)),
    (None, 20000, 0.29, 50000, (5800, False)),  # 20000 × 0.29 is 5799.999… in binary floating point
    (None, 0, 2.0, 0, (0, False)),
    ("profile.base * tier.multiplier", 20000, 0.33333, 50000, (6667, False)),  # a double rounds to tokens
    ("max(8000, min(round(profile.base * tier.multiplier), profile.max))", 10000, 0.5, 50000, (8000, False)),
    ("tier.rank == 0 && agent.startsWith('a/') ? 1 : 2", 1, 1.0, 5, (1, False)),
])
def test_budget_formula(formula, base: int, multiplier: float, maximum: int, expected: tuple) -> None:
    allocation = _policy(formula, base, maximum, multiplier).allocate("a/x", "t")
    assert (allocation.budget, allocation.capped) == expected


def test_formula_is_an_expression_in_the_default_policy(default_policy) -> None:
    assert default_policy.budget_formula.source == "min(round(profile.base * tier.multiplier), profile.max)"


@pytest.mark.parametrize(("value", "expected"), [(0, 0), (7, 7), (7.5, 8), (7.49, 7), (1e6, 1000000),
                                                (2**53 - 1, 2**53 - 1)])
def test_tokens(value, expected: int) -> None:
    assert tokens(value) == expected


@pytest.mark.parametrize("value", [-1, -0.6, float("nan"), float("inf"), True, "10", None, [1], 2**53, 1e19])
def test_tokens_rejects(value) -> None:
    with pytest.raises(ValueError):
        tokens(value)


@pytest.mark.parametrize(("budget", "weights", "expected"), [
    (30000, {"g": 0.2, "r": 0.3, "p": 0.5}, {"g": 6000, "r": 9000, "p": 15000}),
    (10, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, {"a": 4, "b": 3, "c": 3}),
    (1, {"a": 0.5, "b": 0.5}, {"a": 1, "b": 0}),
    (0, {"a": 1.0}, {"a": 0}),
    (7, {"a": 0.0, "b": 1.0}, {"a": 0, "b": 7}),
])
def test_split_table(budget: int, weights: dict, expected: dict) -> None:
    assert split(budget, weights) == expected


@given(st.integers(0, 10**9),
       st.dictionaries(st.text(min_size=1, max_size=5), st.floats(0, 1, allow_nan=False), min_size=1, max_size=8))
def test_split_sums_exactly_and_stays_close(budget: int, weights: dict) -> None:
    result = split(budget, weights)
    assert list(result) == list(weights)
    total = sum(weights.values())
    if total == 0:
        assert set(result.values()) == {0}
        return
    assert sum(result.values()) == budget
    for scope, share in result.items():
        assert share >= 0
        assert abs(share - budget * weights[scope] / total) < 1 + 1e-6 * budget


# -- hedging: the formula sees the detection -------------------------------------------------------------------

HEDGE = """\
extends: default
budget:
  formula: >-
    min(round(profile.base * (tier.multiplier
      + (1.0 - detection.confidence) * max(detection.runner_up.multiplier - tier.multiplier, 0.0))),
      profile.max)
"""


def test_the_default_formula_ignores_the_detection(default_policy) -> None:
    """Budgets for given tiers are unchanged, and a detected tier gives the same budget as the given one."""
    for agent in default_policy.agents:
        for tier in default_policy.tiers:
            plain = default_policy.allocate(agent, tier.id)
            detection = default_policy.detect("Troubleshoot cross-system freshness")
            assert default_policy.allocate(agent, tier.id, detection) == plain


def test_a_hedging_formula_spends_more_when_unsure(tmp_path) -> None:
    from engine import load_policy

    path = tmp_path / "hedge.yaml"
    path.write_text(HEDGE, encoding="utf-8")
    policy = load_policy(path)
    unsure = policy.evaluate("Analyze query performance", "dbt-expert")
    detection = unsure.detection
    assert (detection.tier, detection.runner_up) == ("medium", "complex") and detection.confidence < 1
    expected = round(20_000 * (1.0 + (1.0 - detection.confidence) * 0.5))
    assert unsure.allocation.budget == expected > 20_000
    assert sum(unsure.allocation.scopes.values()) == expected
    # a sure answer hedges little; a runner-up below the tier adds nothing
    sure = policy.evaluate("List all dbt models", "dbt-expert")
    assert sure.tier == "simple" and sure.confidence > detection.confidence
    above = policy.tier(sure.detection.runner_up).multiplier - 0.5
    assert sure.allocation.budget == round(20_000 * (0.5 + (1.0 - sure.confidence) * above)) < expected
    deep = policy.evaluate("Troubleshoot cross-system freshness", "dbt-expert")
    assert deep.tier == "multi-system" and deep.allocation.budget == 40_000
    # a given tier: the plain budget, whatever the formula says
    assert policy.evaluate("x", "dbt-expert", tier="medium").allocation.budget == 20_000
    assert policy.allocate("dbt-expert", "medium").budget == 20_000
    # the cache of plain allocations is not polluted by a hedged one
    assert policy.allocate("dbt-expert", "medium", detection).budget == expected


def test_the_formula_bindings_without_a_detection_are_certain() -> None:
    from engine.budget import formula_bindings
    from engine.model import Profile, Tier

    bound = formula_bindings("a", Profile("p", 100, 200, {}), Tier("complex", 1.5, 2))
    assert bound["detection"] == {"detected": False, "confidence": 1.0,
                                  "runner_up": {"id": "complex", "multiplier": 1.5, "rank": 2}}
