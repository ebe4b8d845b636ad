"""Budgets: the seed's 4×4 table exactly, caps, and the split into scopes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.budget import default_budget, split

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


@pytest.mark.parametrize(("base", "multiplier", "maximum", "expected"), [
    (20000, 0.5, 50000, (10000, False)),
    (20000, 3.0, 50000, (50000, True)),
    (20000, 2.5, 50000, (50000, False)),
    (20000, 0.29, 50000, (5800, False)),  # 20000 × 0.29 is 5799.999… in binary floating point
    (0, 2.0, 0, (0, False)),
])
def test_default_budget(base: int, multiplier: float, maximum: int, expected: tuple) -> None:
    assert default_budget(base, multiplier, maximum) == expected


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
    for scope, tokens in result.items():
        assert tokens >= 0
        assert abs(tokens - budget * weights[scope] / total) < 1 + 1e-6 * budget
