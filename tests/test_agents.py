"""Agent names resolve exactly, case-insensitively, then by unambiguous short form; else close matches."""

from __future__ import annotations

import pytest

from engine.diagnostics import LookupFailed


@pytest.mark.parametrize(("name", "full"), [
    ("specialists/dbt-expert", "specialists/dbt-expert"),
    ("dbt-expert", "specialists/dbt-expert"),
    ("DBT-Expert", "specialists/dbt-expert"),
    ("data-architect", "roles/data-architect-role"),
    ("data-architect-role", "roles/data-architect-role"),
    ("analytics-engineer", "roles/analytics-engineer-role"),
    ("business-context", "specialists/business-context"),
])
def test_resolves(default_policy, name: str, full: str) -> None:
    assert default_policy.resolve_agent(name) == full


@pytest.mark.parametrize(("name", "suggestion"), [
    ("dbt-expret", "specialists/dbt-expert"),
    ("data-archtect", "roles/data-architect-role"),
    ("snowflake", "specialists/snowflake-expert"),
])
def test_unknown_suggests(default_policy, name: str, suggestion: str) -> None:
    with pytest.raises(LookupFailed) as caught:
        default_policy.resolve_agent(name)
    assert suggestion in caught.value.suggestions
    assert "did you mean" in str(caught.value)


def test_ambiguous_short_form_is_an_error() -> None:
    from engine.policy import Policy

    data = {"profiles": {"p": {"base": 1, "max": 2, "weights": {"g": 1.0}}},
            "agents": {"team-a/helper": "p", "team-b/helper": "p"},
            "tiers": [{"id": "medium", "multiplier": 1.0}]}
    policy = Policy.from_data(data)
    assert policy.resolve_agent("team-a/helper") == "team-a/helper"
    with pytest.raises(LookupFailed, match="ambiguous"):
        policy.resolve_agent("helper")


def test_unknown_tier_suggests(default_policy) -> None:
    with pytest.raises(LookupFailed, match="multi-system"):
        default_policy.allocate("dbt-expert", "multisystem")


def test_seed_agents_and_profiles(default_policy) -> None:
    assert len(default_policy.agents) == 25
    counts = {}
    for profile in default_policy.agents.values():
        counts[profile] = counts.get(profile, 0) + 1
    assert counts == {"specialist-narrow": 13, "specialist-broad": 3, "role-coordinator": 7, "role-architect": 2}


def test_policy_is_immutable(default_policy) -> None:
    import pytest as _pytest

    with _pytest.raises(AttributeError, match="immutable"):
        default_policy.name = "changed"
    with _pytest.raises(TypeError):
        default_policy.profiles["x"] = None
    with _pytest.raises(AttributeError):
        default_policy.profiles["role-architect"].base = 1
