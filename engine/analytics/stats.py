"""The figures of a group of runs, as the SQL in ``sql/figures.sql`` and ``sql/scope_figures.sql`` gives them.

These are plain records: every number in them is computed by the SQL (DuckDB, or the same SQL on Spark), which
is their only definition — runs, mean / median / p90 / max usage, exceedance rate with its Wilson bounds, scope
shares against weights. Quantiles are read from a histogram of usage in bins of 0.1 percentage point
(:data:`BINS_PER_UNIT`), so a median or p90 is exact to that resolution however many runs there are.
"""

from __future__ import annotations


from engine.records import Record
from engine.usage.log import SkippedLine

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Callable, Mapping

BINS_PER_UNIT = 1000
"""Histogram bins per 100 % of the budget: quantiles are exact to 0.1 percentage point (sql/bins.sql)."""

NO_TIER = "(none)"
"""The tier runs are counted under when their record names none."""


def percent(value: float) -> str:
    """A fraction as people read it: ``0.7716`` is ``77.2 %``."""
    return f"{value * 100:.1f} %"


def rounded(value: float) -> float:
    """A figure as ``analyze --json`` shows it: 4 decimals, and never -0.0."""
    return round(value, 4) + 0.0


class TierStats(Record):
    """The runs of a group at one tier."""

    runs: int
    mean_usage: float
    exceeded: int
    exceedance_rate: float
    exceedance_low: float  # the 95 % Wilson interval of the exceedance rate
    exceedance_high: float

    def summary(self) -> dict:
        return {"runs": self.runs, "mean_usage": rounded(self.mean_usage), "exceeded": self.exceeded,
                "exceedance_rate": rounded(self.exceedance_rate)}


class ScopeStats(Record):
    """One scope of a group: the tokens it loaded, its mean share of a run's load (runs that loaded nothing
    left out; runs without the scope count as 0), the share's sample standard deviation, and the profile's
    weight (None when the profile does not weigh it), the drift (share − weight; None without weights), and
    whether any run loaded it (a weighted scope may not have been)."""

    tokens: int
    share: float
    share_stdev: float
    weight: float | None
    drift: float | None
    seen: bool


class UsageStats(Record):
    """The figures of a group of runs (one agent, its runs under its current profile, or everything)."""

    runs: int = 0
    mean_usage: float = 0.0
    median_usage: float = 0.0
    p90_usage: float = 0.0
    max_usage: float = 0.0
    exceeded: int = 0
    exceedance_rate: float = 0.0
    failed: int = 0
    tokens_loaded: int = 0
    # not in the summary: the report's box plot, the recommendations' confidence
    q1_usage: float = 0.0
    q3_usage: float = 0.0
    min_usage: float = 0.0  # the lowest bin, as the quantiles are
    stdev_usage: float = 0.0
    exceedance_low: float = 0.0  # the 95 % Wilson interval of the exceedance rate
    exceedance_high: float = 1.0
    share_runs: int = 0  # runs that loaded anything (the denominator of the shares)
    tiers: Mapping[str, TierStats] = {}
    scopes: Mapping[str, ScopeStats] = {}  # weighted scopes first (in the profile's order), then as first seen

    def summary(self) -> dict:
        """The figures ``analyze --json`` shows for a group of runs."""
        return {"runs": self.runs, "mean_usage": rounded(self.mean_usage), "median_usage": rounded(self.median_usage),
                "p90_usage": rounded(self.p90_usage), "max_usage": rounded(self.max_usage), "exceeded": self.exceeded,
                "exceedance_rate": rounded(self.exceedance_rate), "failed": self.failed,
                "tokens_loaded": self.tokens_loaded}

    def tier_summary(self) -> dict[str, dict]:
        return {tier: figures.summary() for tier, figures in self.tiers.items()}

    def scope_shares(self) -> dict[str, float]:
        """Each scope's mean share of a run's loaded tokens (scopes the runs loaded, not weights alone)."""
        return {scope: s.share for scope, s in self.scopes.items() if s.seen}


Progress = "Callable[[int, int], None]"  # a type for annotations (typing is not imported at run time)
"""Called with (bytes done, bytes in all) as a log is read."""

GroupKey = tuple[str, str, str, int]
"""(agent as logged, profile as logged, and for runs that name no profile their tier and budget, by which
the profile they were made under is told; else "" and 0)."""


class AgentKey(Record):
    """How the runs of one group key count: for the agent ``name`` (the policy's, or as logged), under
    ``run_profile`` ("" when it is the agent's current profile told by the budget), and whether they are runs
    of the agent's current profile. The policy decides this; sql/figures.sql reads it as the table
    ``agent_keys``."""

    agent: str
    profile: str
    key_tier: str
    key_budget: int
    name: str
    run_profile: str
    is_current: bool


class Weight(Record):
    """One scope weight of an agent's profile (the table ``weights`` of sql/scope_figures.sql)."""

    name: str
    scope: str
    weight: float
    place: int


class Figures(Record):
    """What the figures SQL gives for the agents read: per agent its runs all told and under its current
    profile, everything together, the runs per profile, and per tier across agents (with provenance)."""

    agents: Mapping[str, UsageStats]
    current: Mapping[str, UsageStats]
    overall: UsageStats
    profiles: Mapping[str, Mapping[str, int]]  # agent -> {run profile: runs}
