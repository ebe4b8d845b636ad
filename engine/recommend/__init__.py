"""Recommendations: one action per agent from its usage, by the policy's rules.

    for rec in recommend(policy, analyze(policy, log)):
        rec.agent, rec.action, rec.confidence, rec.reason, rec.evidence

Actions: ``upgrade`` (to the next larger profile), ``downgrade`` (next smaller), ``adjust-weights``,
``maintain``, ``insufficient-data``. Only the runs recorded under the agent's current profile count, so a
profile change is judged on its own runs. Profiles are ordered by base, then max.
"""

from __future__ import annotations

from types import MappingProxyType

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Mapping

from engine.analytics import AgentAnalysis, Analysis
from engine.analytics.stats import UsageStats
from engine.analytics.stats import percent as _pct
from engine.diagnostics import PolicyError, Problem
from engine.recommend import confidence as conf
from engine.recommend.rules import RuleError, first_match, rule_variables  # noqa: F401 - rule_variables: public here
from engine.records import Record, rounded, to_dict

ACTIONS = ("upgrade", "downgrade", "adjust-weights", "maintain", "insufficient-data", "adjust-tier")
CHANGES = ("upgrade", "downgrade", "adjust-weights")  # the actions `apply` writes


class Recommendation(Record):
    """What to do about one agent's budget, how sure that is, and the numbers behind it."""

    agent: str
    profile: str
    action: str
    confidence: float
    reason: str
    evidence: Mapping[str, Any] = MappingProxyType({})
    target_profile: str | None = None  # upgrade / downgrade: the profile to move to (None: there is none)
    weights: Mapping[str, float] | None = None  # adjust-weights: the proposed weights
    tier: str | None = None  # adjust-tier: the tier whose multiplier is off (agent is then ALL_AGENTS)

    # The ``recommend --json`` contract: ``tier`` only in a tier's recommendation.
    _json_fields = ("agent", "profile", "action", "confidence", "reason", "evidence", "tier")
    _json_convert = {"confidence": rounded(4)}
    _json_skip_none = ("tier",)
    to_dict = to_dict


ALL_AGENTS = "(all agents)"
"""The ``agent`` of a tier's recommendation."""

MIN_TIER_AGENTS = 2
"""A tier's multiplier is judged only when at least this many agents have enough runs at it."""


def profile_ladder(policy: Any) -> list[str]:
    """Profile ids from smallest to largest (by base, then max, then order in the policy)."""
    order = list(policy.profiles)
    return sorted(order, key=lambda p: (policy.profiles[p].base, policy.profiles[p].max, order.index(p)))


def recommend(policy: Any, analysis: Analysis) -> list[Recommendation]:
    """One recommendation per agent in ``analysis``. Raises PolicyError when a rule is broken."""
    try:
        return [_recommend_one(policy, item) for item in analysis.agents.values()] + recommend_tiers(policy, analysis)
    except RuleError as exc:
        raise PolicyError([rule_problem(policy, exc)]) from None


def _recommend_one(policy: Any, item: AgentAnalysis) -> Recommendation:
    settings = policy.recommendations
    stats = item.current()
    smaller, larger = _neighbours(profile_ladder(policy), item.profile)
    drift = {scope: s.drift for scope, s in stats.scopes.items()} if item.weights else {}
    worst = max(drift, key=lambda s: abs(drift[s]), default=None)
    weight_drift = abs(drift[worst]) if worst is not None else 0.0
    confidences = _confidences(stats, settings, worst, weight_drift)
    profile = policy.profiles.get(item.profile)
    bindings = {
        "agent": item.agent,
        "stats": _stats_binding(stats, drift, weight_drift),
        "params": settings.params(),
        "profile": {"id": item.profile, "base": profile.base if profile else 0, "max": profile.max if profile else 0,
                    "weights": dict(item.weights), "larger": larger, "smaller": smaller},
        "confidence": confidences,
    }
    index, own_confidence = first_match(settings.rules, bindings)
    rule = settings.rules[index] if index is not None else None
    action = rule.action if rule is not None else "maintain"
    if action == "insufficient-data":
        confidence = 0.0
    elif own_confidence is not None:
        confidence = own_confidence
    else:
        confidence = confidences[action.replace("-", "_")]
    target = larger if action == "upgrade" else smaller if action == "downgrade" else None
    weights = proposed_weights(stats, item.weights) if action == "adjust-weights" else None
    evidence = _evidence(item, stats, weight_drift, index)
    if action in ("upgrade", "downgrade"):
        evidence["target_profile"] = target
    if action == "upgrade":
        lower = _one_tier_too_low(policy, item, stats)
        evidence["diagnosis"] = "tier-too-low" if lower else "profile-too-small"
    if weights is not None:
        evidence["proposed_weights"] = weights
    reason = (rule.reason if rule is not None and rule.reason else
              _reason(action, stats, settings, item, target, drift, worst, policy))
    if action == "upgrade" and evidence.get("diagnosis") == "tier-too-low":
        tier, higher = _one_tier_too_low(policy, item, stats)
        reason += (f"; but only runs at {tier} went over, and they would fit {higher}'s budget: the tasks may be "
                   f"detected one tier too low (check detection before moving the profile)")
    return Recommendation(item.agent, item.profile, action, confidence, reason, evidence, target, weights)


def recommend_tiers(policy: Any, analysis: Analysis) -> list[Recommendation]:
    """``adjust-tier`` for a tier whose usage is off in the same direction for every agent with enough runs at
    it (at least :data:`MIN_TIER_AGENTS` of them): over budget more often than the upgrade threshold for all of
    them, or under the downgrade threshold on average for all of them. The proposed multiplier brings the
    pooled mean usage to the middle of the good band ((downgrade threshold + 1) / 2). The confidence is the
    least sure agent's: Wilson's bound on its exceedance rate (over), or on its rarely exceeding (under)."""
    settings = policy.recommendations
    target = (settings.downgrade_mean_usage + 1.0) / 2
    found = []
    for tier in policy.tiers:
        agents, wilson = {}, {}
        for item in analysis.agents.values():
            at = item.current().tiers.get(tier.id)
            if at is not None and at.runs >= settings.min_samples:
                agents[item.agent] = (at.runs, at.mean_usage, at.exceeded)
                wilson[item.agent] = at.exceedance_high
        if len(agents) < MIN_TIER_AGENTS:
            continue
        over = all(e / r > settings.upgrade_exceedance_rate for r, _, e in agents.values())
        under = all(m < settings.downgrade_mean_usage for _, m, _ in agents.values())
        if not (over or under):
            continue
        runs = sum(r for r, _, _ in agents.values())
        pooled = sum(r * m for r, m, _ in agents.values()) / runs
        proposed = round(tier.multiplier * pooled / target, 2)
        if over:
            confidence = min(conf.rate_above(e, r, settings.upgrade_exceedance_rate) for r, _, e in agents.values())
            why = (f"over budget in more than {_pct(settings.upgrade_exceedance_rate)} of runs for all "
                   f"{len(agents)} agents with enough runs at {tier.id}")
        else:
            confidence = min(1.0 - high for high in wilson.values())  # sure it rarely exceeds: Wilson's bound
            why = (f"mean usage under {_pct(settings.downgrade_mean_usage)} for all {len(agents)} agents with "
                   f"enough runs at {tier.id}")
        evidence = {"tier": tier.id, "multiplier": tier.multiplier, "proposed_multiplier": proposed, "runs": runs,
                    "mean_usage": round(pooled, 4),
                    "agents": {a: {"runs": r, "mean_usage": round(m, 4), "exceedance_rate": round(e / r, 4)}
                               for a, (r, m, e) in agents.items()}}
        found.append(Recommendation(ALL_AGENTS, "", "adjust-tier", confidence,
                                    f"{why} (pooled mean usage {_pct(pooled)}): the tier, not the profiles, is "
                                    f"off; set {tier.id}'s multiplier {tier.multiplier:g} → {proposed:g}",
                                    evidence, tier=tier.id))
    return found


def _neighbours(ladder: list[str], profile: str) -> tuple[str | None, str | None]:
    """The next smaller and next larger profile (None at either end, or for a profile not in the ladder)."""
    if profile not in ladder:
        return None, None
    rank = ladder.index(profile)
    return (ladder[rank - 1] if rank > 0 else None), (ladder[rank + 1] if rank + 1 < len(ladder) else None)


def _confidences(stats: UsageStats, settings: Any, worst: str | None, weight_drift: float) -> dict[str, float]:
    """How sure each action would be (see :mod:`engine.recommend.confidence`)."""
    found = {
        "upgrade": conf.rate_above(stats.exceeded, stats.runs, settings.upgrade_exceedance_rate),
        "downgrade": conf.mean_below(stats.mean_usage, stats.stdev_usage, stats.runs, settings.downgrade_mean_usage),
        "adjust_weights": (conf.mean_above(weight_drift, stats.scopes[worst].share_stdev, stats.share_runs,
                                           settings.weight_drift) if worst is not None else 0.0),
    }
    found["maintain"] = min(1.0 - c for c in found.values())
    return found


def _stats_binding(stats: UsageStats, drift: Mapping[str, float], weight_drift: float) -> dict:
    return {
        "samples": stats.runs, "runs": stats.runs, "exceeded": stats.exceeded,
        "exceedance_rate": stats.exceedance_rate, "mean_usage": stats.mean_usage, "median_usage": stats.median_usage,
        "p90_usage": stats.p90_usage, "max_usage": stats.max_usage, "stdev_usage": stats.stdev_usage,
        "failed": stats.failed, "failure_rate": stats.failed / stats.runs if stats.runs else 0.0,
        "weight_drift": weight_drift, "drift": dict(drift), "shares": stats.scope_shares(),
        "tiers": {t: {"runs": x.runs, "mean_usage": x.mean_usage, "exceedance_rate": x.exceedance_rate}
                  for t, x in stats.tiers.items()},
    }


def _evidence(item: AgentAnalysis, stats: UsageStats, weight_drift: float, rule: int | None) -> dict:
    low, high = stats.exceedance_low, stats.exceedance_high
    evidence: dict[str, Any] = {
        "runs": stats.runs,
        "exceeded": stats.exceeded,
        "exceedance_rate": round(stats.exceedance_rate, 4),
        "exceedance_rate_95": [round(low, 4), round(high, 4)],
        "mean_usage": round(stats.mean_usage, 4),
        "median_usage": round(stats.median_usage, 4),
        "p90_usage": round(stats.p90_usage, 4),
        "max_usage": round(stats.max_usage, 4),
        "weight_drift": round(weight_drift, 4),
        "scope_shares": {s: round(v, 4) for s, v in stats.scope_shares().items()},
        "weights": dict(item.weights),
        "rule": rule,
    }
    earlier = item.stats.runs - stats.runs
    if earlier:
        evidence["runs_under_other_profiles"] = earlier
    return evidence


def proposed_weights(stats: UsageStats, weights: Mapping[str, float]) -> dict[str, float]:
    """The observed shares of the weighted scopes, in hundredths that sum to exactly 1."""
    shares = stats.scope_shares()
    observed = {s: shares.get(s, 0.0) for s in weights}
    return hundredths(observed) if sum(observed.values()) > 0 else dict(weights)


def hundredths(values: Mapping[str, float]) -> dict[str, float]:
    """``values`` scaled to sum to 1, in hundredths that sum to exactly 1 (largest remainders get the rest)."""
    total = sum(values.values())
    exact = {s: 100 * v / total for s, v in values.items()}
    floors = {s: int(v) for s, v in exact.items()}
    names = list(exact)
    order = sorted(names, key=lambda s: (-(exact[s] - floors[s]), names.index(s)))
    for scope in order[:100 - sum(floors.values())]:
        floors[scope] += 1
    return {s: floors[s] / 100 for s in names}


def _reason(action: str, stats: UsageStats, settings: Any, item: AgentAnalysis, target: str | None,
            drift: Mapping[str, float], worst: str | None, policy: Any = None) -> str:
    if action == "insufficient-data":
        return f"{stats.runs} run{'s' if stats.runs != 1 else ''}; at least {settings.min_samples} needed"
    if action == "upgrade":
        move = f"move to {target}" if target else f"{item.profile} is the largest profile: " + _grow(policy, item, stats)
        return (f"over budget in {stats.exceeded} of {stats.runs} runs ({_pct(stats.exceedance_rate)}, "
                f"above {_pct(settings.upgrade_exceedance_rate)}); {move}")
    if action == "downgrade":
        move = f"move to {target}" if target else f"{item.profile} is the smallest profile: lower its base"
        return (f"mean usage {_pct(stats.mean_usage)} over {stats.runs} runs (below "
                f"{_pct(settings.downgrade_mean_usage)}); {move}")
    if action == "adjust-weights" and worst is not None:
        share = stats.scope_shares().get(worst, 0.0)
        return (f"{worst} takes {_pct(share)} of loaded tokens against a weight of "
                f"{_pct(float(item.weights.get(worst, 0.0)))} ({abs(drift[worst]) * 100:.1f} points off, "
                f"more than {settings.weight_drift * 100:g})")
    return (f"within thresholds: mean usage {_pct(stats.mean_usage)}, over budget in {stats.exceeded} of "
            f"{stats.runs} runs")


def _one_tier_too_low(policy: Any, item: AgentAnalysis, stats: UsageStats) -> tuple[str, str] | None:
    """(tier, next tier) when the agent's runs went over budget at one tier only, the next tier's budget would
    hold their mean load, and at another tier it has enough runs, within the upgrade threshold; else None (the
    profile itself is too small, or the runs cannot tell)."""
    settings = policy.recommendations
    over = [t for t, x in stats.tiers.items() if x.exceedance_rate > settings.upgrade_exceedance_rate]
    # the profile must be seen to fit elsewhere: enough runs at some other tier, none of them over
    fitting = [t for t, x in stats.tiers.items() if t not in over and x.runs >= settings.min_samples]
    if len(over) != 1 or not fitting or item.profile not in policy.profiles:
        return None
    ladder = list(policy.tiers)
    try:
        tier = policy.tier(over[0])
    except Exception:  # noqa: BLE001 - a tier the policy no longer has
        return None
    if tier.rank + 1 >= len(ladder):
        return None
    higher = ladder[tier.rank + 1]
    mean = stats.tiers[over[0]].mean_usage
    profile = policy.profiles[item.profile]
    try:
        fits = mean * policy.budget_of(item.agent, profile, tier) <= policy.budget_of(
            item.agent, profile, higher)
    except Exception:  # noqa: BLE001 - a failing budget formula: no diagnosis
        return None
    return (tier.id, higher.id) if fits else None


def _grow(policy: Any, item: AgentAnalysis, stats: UsageStats) -> str:
    """What to raise for the largest profile: its max where the max caps the budget at the tiers that went
    over, its base (or the tiers' multipliers) where it does not."""
    capped, uncapped = [], []
    profile = policy.profiles.get(item.profile) if policy is not None else None
    for tier_id, at in stats.tiers.items():
        if not at.exceeded or profile is None:
            continue
        try:
            tier = policy.tier(tier_id)
            budget = policy.budget_of(item.agent, profile, tier)
        except Exception:  # noqa: BLE001 - a tier the policy no longer has, or a failing formula
            continue
        (capped if budget < profile.base * tier.multiplier else uncapped).append(tier.id)
    if uncapped and not capped:
        return (f"raise its base (its max does not cap the budget at {', '.join(uncapped)}, where runs went "
                f"over)")
    if uncapped:
        return (f"raise its max (it caps the budget at {', '.join(capped)}) and its base (for "
                f"{', '.join(uncapped)})")
    return "raise its max"


def rule_problem(policy: Any, error: RuleError) -> Problem:
    """A rule that failed while recommending, at the position its rule kept when the policy was compiled."""
    where = f"$.recommendations.rules[{error.index}].{error.field}"
    rules = policy.recommendations.rules
    at = rules[error.index].where.get(error.field) if 0 <= error.index < len(rules) else None
    label, line, col = at if at is not None else (policy.source, 1, 1)
    return Problem(label, line, col, "recommendation-rule",
                   f"recommendation rule {error.index + 1}, {error.field}: {error}", where)
