"""Usage analytics: what agents actually loaded, overall and per agent, from the usage log.

    analysis = analyze(policy, "usage.jsonl", since=..., agent="dbt-expert")
    analysis.to_dict()      # the `analyze --json` contract: runs, skipped_lines, overall, agents{name: ...}

Per agent: runs, mean / median / p90 / max usage, exceedance rate, usage per tier, and each scope's share of
the loaded tokens against the profile's weight. Log names are resolved against the policy (``dbt-expert`` and
``specialists/dbt-expert`` are one agent); an agent the policy no longer has keeps its logged name and profile.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Mapping

from engine.analytics.scan import LogScan, Progress, scan_log
from engine.analytics.stats import UsageStats
from engine.diagnostics import LookupFailed
from engine.usage.log import SkippedLine

__all__ = ["AgentAnalysis", "Analysis", "UsageStats", "analyze"]


@dataclass
class AgentAnalysis:
    """One agent's runs: all of them, and per profile they were recorded under."""

    agent: str
    profile: str  # the agent's profile in the policy, else one it was logged with
    known: bool  # whether the policy has the agent
    weights: Mapping[str, float]  # the profile's scope weights ({} when the policy lacks the profile)
    stats: UsageStats = field(default_factory=UsageStats)
    by_profile: dict[str, UsageStats] = field(default_factory=dict)

    def current(self) -> UsageStats:
        """The runs recorded under the agent's current profile (and runs that did not say)."""
        stats = UsageStats()
        for profile, group in self.by_profile.items():
            if profile in (self.profile, ""):
                stats.merge(group)
        return stats

    def to_dict(self, tier_order: Mapping[str, int] | None = None) -> dict:
        data: dict[str, Any] = {"profile": self.profile, "known": self.known, **self.stats.summary()}
        if len(self.by_profile) > 1:
            data["profiles"] = {p or "(none)": s.runs for p, s in self.by_profile.items()}
        data["tiers"] = _ordered(self.stats.tier_summary(), tier_order or {})
        shares = self.stats.scope_shares()
        drift = self.stats.drift(self.weights)
        data["scopes"] = {
            scope: {"tokens": self.stats.scopes.get(scope, [0])[0], "share": round(shares.get(scope, 0.0), 4),
                    "weight": self.weights.get(scope), "drift": round(drift[scope], 4) + 0.0 if self.weights else None}
            for scope in drift
        }
        return data


@dataclass
class Analysis:
    """The result of :func:`analyze`."""

    log: str
    runs: int
    skipped_lines: int
    skipped: list[SkippedLine]
    since: datetime | None
    until: datetime | None
    overall: UsageStats
    agents: dict[str, AgentAnalysis]
    tier_order: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, dict] | None = None  # per tier across agents, with provenance (None: the engine lacks it)
    daily: list[tuple[str, str, int, int]] | None = None  # (UTC day, agent as logged, runs, exceeded); DuckDB only

    def to_dict(self) -> dict:
        """The ``analyze --json`` contract."""
        overall = {**self.overall.summary(), "tiers": _ordered(self.overall.tier_summary(), self.tier_order)}
        return {
            "log": self.log,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "runs": self.runs,
            "skipped_lines": self.skipped_lines,
            "skipped": [s.to_dict() for s in self.skipped],
            "overall": overall,
            "agents": {name: a.to_dict(self.tier_order) for name, a in self.agents.items()},
            "tiers": None if self.tiers is None else _ordered({t: _rounded(v) for t, v in self.tiers.items()},
                                                              self.tier_order),
        }


ENGINES = ("duckdb", "spark", "scan")
"""How a log is read: DuckDB (the default), Spark (Parquet, for fleets), or the earlier home-made scanner."""


def analyze(policy: Any, log: str | os.PathLike, since: datetime | None = None, until: datetime | None = None,
            agent: str | None = None, jobs: int | None = None, progress: Progress | None = None,
            engine: str = "duckdb", spark_master: str | None = None) -> Analysis:
    """Analyze the runs in ``log`` between ``since`` and ``until``, of every agent or of ``agent``.

    ``log`` is a file, a folder of ``*.jsonl`` files, a glob or (DuckDB) a remote URL.

    Raises OSError when the log cannot be read, LookupFailed when ``agent`` is neither in the policy nor in
    the log.
    """
    unknown: LookupFailed | None = None
    wanted = None
    if agent is not None:
        try:
            wanted = policy.resolve_agent(agent)
        except LookupFailed as exc:  # perhaps an agent the policy no longer has, known only to the log
            wanted, unknown = agent, exc
    scan = read_log_scan(log, since, until, engine=engine, jobs=jobs, progress=progress, spark_master=spark_master)
    agents = _by_agent(policy, scan)
    if wanted is not None:
        if unknown is not None:  # an agent only the log knows: by its full or unambiguous short name
            from engine import agents as agent_names

            others = {name: item for name, item in agents.items() if not item.known}
            try:
                wanted = agent_names.resolve(agent, others, agent_names.build_index(others))
            except LookupFailed:
                raise unknown from None
        agents = {name: a for name, a in agents.items() if name == wanted}
    overall = UsageStats()
    for item in agents.values():
        overall.merge(item.stats)
    tiers = scan.tiers
    if tiers is not None and wanted is not None:  # per tier across agents: only when all agents are read
        tiers = None
    return Analysis(os.fspath(log), overall.runs, scan.skipped_lines, scan.skipped, since, until, overall,
                    agents, {t.id: t.rank for t in policy.tiers}, tiers, scan.daily)


def _by_agent(policy: Any, scan: LogScan) -> dict[str, AgentAnalysis]:
    names: dict[str, tuple[str, bool]] = {}
    agents: dict[str, AgentAnalysis] = {}
    for (logged, profile, tier, budget), stats in sorted(scan.groups.items()):
        if logged not in names:
            try:
                names[logged] = (policy.resolve_agent(logged), True)
            except LookupFailed:
                names[logged] = (logged, False)
        name, known = names[logged]
        item = agents.get(name)
        if item is None:
            current = policy.agents[name] if known else profile
            found = policy.profiles.get(current)
            item = agents[name] = AgentAnalysis(name, current, known, dict(found.weights) if found else {})
        elif not known and profile and not item.profile:
            item.profile = profile
        if not profile and known:  # a record that does not say (the seed's format may not): by its budget
            profile = _profile_by_budget(policy, name, tier, budget)
        item.stats.merge(stats)
        item.by_profile.setdefault(profile, UsageStats()).merge(stats)
    return dict(sorted(agents.items()))


def read_log_scan(log: str | os.PathLike, since: datetime | None, until: datetime | None, engine: str = "duckdb",
                  jobs: int | None = None, progress: Progress | None = None,
                  spark_master: str | None = None) -> LogScan:
    """The runs of ``log`` grouped, and its skipped lines, read by ``engine``."""
    if engine == "scan":
        return scan_log(log, since, until, jobs=jobs, progress=progress)
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (engines: {', '.join(ENGINES)})")
    from engine.analytics import duck

    files = duck.log_files(log)
    size = sum(os.path.getsize(f) for f in files if not duck.is_remote(f))
    if progress is not None:
        progress(0, size)
    if engine == "spark":
        from engine.analytics import spark

        scan = spark.scan_files(files, since, until, master=spark_master)
    else:
        scan = duck.scan_files(files, since, until)
    if progress is not None:
        progress(size, size)
    return scan


def _profile_by_budget(policy: Any, agent: str, tier: str, budget: int) -> str:
    """The profile a run that does not name one was made under: the agent's current profile when that
    gives ``budget`` at ``tier`` (or the budget cannot be checked), else the one profile that does, else
    :data:`OTHER_PROFILE`."""
    try:
        tier_obj = policy.tier(tier)
    except LookupFailed:
        return ""  # a tier the policy no longer has: nothing to compare with
    current = policy.agents[agent]

    def gives(profile_id: str) -> bool:
        try:
            return policy.budget_of(agent, policy.profiles[profile_id], tier_obj) == budget
        except (ValueError, ArithmeticError, LookupError, Exception):  # noqa: BLE001 - a formula that fails
            return False

    if gives(current):
        return ""
    matching = [p for p in policy.profiles if p != current and gives(p)]
    return matching[0] if len(matching) == 1 else OTHER_PROFILE


OTHER_PROFILE = "(another profile)"
"""Runs that name no profile and whose budget is not the agent's current profile's at their tier."""


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4) + 0.0
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _ordered(tiers: dict[str, dict], order: Mapping[str, int]) -> dict[str, dict]:
    return {t: tiers[t] for t in sorted(tiers, key=lambda t: (order.get(t, len(order)), t))}
