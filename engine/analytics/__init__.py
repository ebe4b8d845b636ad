"""Usage analytics: what agents actually loaded, overall and per agent, from the usage log.

    analysis = analyze(policy, "usage.jsonl", since=..., agent="dbt-expert")
    analysis.to_dict()      # the `analyze --json` contract: runs, skipped_lines, overall, agents{name: ...}

Per agent: runs, mean / median / p90 / max usage, exceedance rate, usage per tier, and each scope's share of
the loaded tokens against the profile's weight. Log names are resolved against the policy (``dbt-expert`` and
``specialists/dbt-expert`` are one agent); an agent the policy no longer has keeps its logged name and profile.
"""

from __future__ import annotations

import os
from datetime import datetime

from engine.analytics.stats import AgentKey, Progress, UsageStats, Weight, rounded
from engine.diagnostics import LookupFailed
from engine.records import Record
from engine.usage.log import SkippedLine

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Mapping

__all__ = ["AgentAnalysis", "Analysis", "UsageStats", "analyze"]


class AgentAnalysis(Record):
    """One agent's runs: all of them, those under its current profile, and how many under each profile."""

    agent: str
    profile: str  # the agent's profile in the policy, else one it was logged with
    known: bool  # whether the policy has the agent
    weights: Mapping[str, float]  # the profile's scope weights ({} when the policy lacks the profile)
    stats: UsageStats = UsageStats()
    current_stats: UsageStats = UsageStats()  # the runs recorded under the current profile (and runs that did not say)
    profiles: Mapping[str, int] = {}  # runs per profile recorded under ("" is the current profile told by budget)

    def current(self) -> UsageStats:
        """The runs recorded under the agent's current profile (and runs that did not say)."""
        return self.current_stats

    def to_dict(self, tier_order: Mapping[str, int] | None = None) -> dict:
        data: dict[str, Any] = {"profile": self.profile, "known": self.known, **self.stats.summary()}
        if len(self.profiles) > 1:
            data["profiles"] = {p or "(none)": runs for p, runs in self.profiles.items()}
        data["tiers"] = _ordered(self.stats.tier_summary(), tier_order or {})
        data["scopes"] = {
            scope: {"tokens": s.tokens, "share": round(s.share, 4), "weight": s.weight,
                    "drift": rounded(s.drift) if s.drift is not None else None}
            for scope, s in self.stats.scopes.items()
        }
        return data


class Analysis(Record):
    """The result of :func:`analyze`."""

    log: str
    runs: int
    skipped_lines: int
    skipped: list[SkippedLine]
    since: datetime | None
    until: datetime | None
    overall: UsageStats
    agents: dict[str, AgentAnalysis]
    tier_order: dict[str, int] = {}
    tiers: dict[str, dict] | None = None  # per tier across agents, with provenance (None: the engine lacks it)
    daily: list[tuple[str, str, int, int]] | None = None  # (UTC day, agent as logged, runs, exceeded)

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


ENGINES = ("duckdb", "spark")
"""How a log is read: DuckDB (the default), or Spark (Parquet, for fleets)."""


def analyze(policy: Any, log: str | os.PathLike, since: datetime | None = None, until: datetime | None = None,
            agent: str | None = None, progress: Progress | None = None,
            engine: str = "duckdb", spark_master: str | None = None, daily: bool = False) -> Analysis:
    """Analyze the runs in ``log`` between ``since`` and ``until``, of every agent or of ``agent``; with ``daily``,
    the runs per UTC day and agent too (the report's exceedance over time).

    ``log`` is a file, a folder of ``*.jsonl`` files, a glob or (DuckDB) a remote URL. The engine sums the runs
    per group key; the policy says which agent and profile each key counts for (:func:`agent_keys`); the SQL
    (``engine/analytics/sql/figures.sql``) turns the sums into every figure.

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
    from engine.analytics.duck import memory_errors

    with memory_errors(), open_scan(log, since, until, engine=engine, progress=progress, spark_master=spark_master,
                                    daily=daily) as scan:
        keys, agents = agent_keys(policy, scan.keys())
        if wanted is not None:
            if unknown is not None:  # an agent only the log knows: by its full or unambiguous short name
                from engine import agents as agent_names

                others = {name: item for name, item in agents.items() if not item[1]}
                try:
                    wanted = agent_names.resolve(agent, others, agent_names.build_index(others))
                except LookupFailed:
                    raise unknown from None
            agents = {name: a for name, a in agents.items() if name == wanted}
            keys = [k for k in keys if k.name == wanted]
        weights = [Weight(name, scope, float(weight), place) for name, (_p, _k, found) in agents.items()
                   for place, (scope, weight) in enumerate(found.items())]
        figures = scan.figures(keys, weights)
        tiers = scan.tiers() if wanted is None else None  # per tier across agents: only when all agents are read
        days = scan.daily() if daily else None
        skipped_lines, skipped = scan.skipped_lines, scan.skipped
    order: dict[str, dict[str, None]] = {}  # each agent's profiles in the order of its group keys
    for key in keys:
        order.setdefault(key.name, {})[key.run_profile] = None
    items = {}
    for name, (profile, known, found) in sorted(agents.items()):
        runs = figures.profiles.get(name, {})
        items[name] = AgentAnalysis(name, profile, known, found, figures.agents.get(name, UsageStats()),
                                    figures.current.get(name, UsageStats()),
                                    {p: runs[p] for p in order.get(name, {}) if p in runs})
    return Analysis(os.fspath(log), figures.overall.runs, skipped_lines, skipped, since, until, figures.overall,
                    items, {t.id: t.rank for t in policy.tiers}, tiers, days)


def agent_keys(policy: Any, keys: list[tuple]) -> tuple[list[AgentKey], dict[str, tuple[str, bool, dict]]]:
    """How the runs of each group key (agent, profile, key_tier, key_budget as logged) count, by the policy:
    the agent a logged name resolves to (``dbt-expert`` and ``specialists/dbt-expert`` are one; an agent the
    policy lacks keeps its logged name), the profile they ran under (a run that names none: the one its budget
    tells), and whether that is the agent's current profile. Also {agent: (profile, known, weights)}."""
    names: dict[str, tuple[str, bool]] = {}
    agents: dict[str, list] = {}
    placed: list[tuple[tuple, str, str]] = []
    for logged, profile, tier, budget in sorted(keys):
        if logged not in names:
            try:
                names[logged] = (policy.resolve_agent(logged), True)
            except LookupFailed:
                names[logged] = (logged, False)
        name, known = names[logged]
        item = agents.get(name)
        if item is None:
            current = policy.agents[name] if known else profile
            item = agents[name] = [current, known]
        elif not known and profile and not item[0]:
            item[0] = profile
        run_profile = profile
        if not profile and known:  # a record that does not say (the seed's format may not): by its budget
            run_profile = _profile_by_budget(policy, name, tier, budget)
        placed.append(((logged, profile, tier, budget), name, run_profile))
    found = {}
    for name, (current, known) in agents.items():
        profile = policy.profiles.get(current)
        found[name] = (current, known, dict(profile.weights) if profile else {})
    rows = [AgentKey(*key, name, run_profile, run_profile in (agents[name][0], ""))
            for key, name, run_profile in placed]
    return rows, found


def open_scan(log: str | os.PathLike, since: datetime | None, until: datetime | None, engine: str = "duckdb",
              progress: Progress | None = None, spark_master: str | None = None, daily: bool = True) -> Any:
    """The runs of ``log``, read by ``engine`` and summed per group key (a context manager with ``keys()``,
    ``figures(agent_keys, weights)``, ``tiers()``, ``daily()`` — None when not ``daily`` —, ``skipped_lines`` and
    ``skipped``)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r} (engines: {', '.join(ENGINES)})")
    from engine.analytics import duck

    files = duck.log_files(log)
    size = sum(os.path.getsize(f) for f in files if not duck.is_remote(f))
    if progress is not None:
        progress(0, size)
    if engine == "spark":
        from engine.analytics import spark

        scan = spark.SparkScan(files, since, until, master=spark_master)
    else:
        scan = duck.DuckScan(files, since, until, daily=daily)
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
        return rounded(value)
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return value


def _ordered(tiers: dict[str, dict], order: Mapping[str, int]) -> dict[str, dict]:
    return {t: tiers[t] for t in sorted(tiers, key=lambda t: (order.get(t, len(order)), t))}
