"""Usage statistics that stream: constant memory per group of runs, mergeable across chunks and processes.

Quantiles come from a histogram of usage in bins of 0.1 percentage point (:data:`BINS_PER_UNIT`), so a
median or p90 is exact to that resolution however many runs there are.
"""

from __future__ import annotations

import math
from typing import Mapping

from engine.usage.record import RecordFields

BINS_PER_UNIT = 1000
"""Histogram bins per 100 % of the budget: quantiles are exact to 0.1 percentage point."""

NO_TIER = "(none)"
"""The tier runs are counted under when their record names none."""


class UsageStats:
    """Running totals over a group of runs (one agent under one profile, or everything)."""

    __slots__ = ("runs", "usage_sum", "usage_sq", "usage_max", "exceeded", "failed", "tokens", "histogram",
                 "tiers", "scopes", "share_runs")

    def __init__(self) -> None:
        self.runs = 0
        self.usage_sum = 0.0
        self.usage_sq = 0.0
        self.usage_max = 0.0
        self.exceeded = 0
        self.failed = 0
        self.tokens = 0
        self.histogram: dict[int, int] = {}
        self.tiers: dict[str, list] = {}  # tier -> [runs, usage sum, exceeded]
        self.scopes: dict[str, list] = {}  # scope -> [tokens, share sum, share² sum] (shares of a run's load)
        self.share_runs = 0  # runs that loaded anything (the denominator of the shares)

    def add(self, f: RecordFields) -> None:
        """Count one run."""
        scopes = f.scopes
        total = 0
        for tokens in scopes.values():  # first, so a bad value changes nothing
            total += tokens
        usage = f.usage
        exceeded = f.exceeded
        self.runs += 1
        self.usage_sum += usage
        self.usage_sq += usage * usage
        if usage > self.usage_max:
            self.usage_max = usage
        if exceeded:
            self.exceeded += 1
        if not f.success:
            self.failed += 1
        key = int(usage * BINS_PER_UNIT + 0.5)
        histogram = self.histogram
        histogram[key] = histogram.get(key, 0) + 1
        tier = self.tiers.get(f.tier or NO_TIER)
        if tier is None:
            tier = self.tiers[f.tier or NO_TIER] = [0, 0.0, 0]
        tier[0] += 1
        tier[1] += usage
        if exceeded:
            tier[2] += 1
        if total > 0:
            self.tokens += total
            self.share_runs += 1
            accumulators = self.scopes
            for scope, tokens in scopes.items():
                acc = accumulators.get(scope)
                if acc is None:
                    acc = accumulators[scope] = [0, 0.0, 0.0]
                share = tokens / total
                acc[0] += tokens
                acc[1] += share
                acc[2] += share * share

    def merge(self, other: "UsageStats") -> "UsageStats":
        """Add ``other``'s runs to these (in place); returns self."""
        self.runs += other.runs
        self.usage_sum += other.usage_sum
        self.usage_sq += other.usage_sq
        self.usage_max = max(self.usage_max, other.usage_max)
        self.exceeded += other.exceeded
        self.failed += other.failed
        self.tokens += other.tokens
        self.share_runs += other.share_runs
        for key, count in other.histogram.items():
            self.histogram[key] = self.histogram.get(key, 0) + count
        for name, (runs, total, exceeded) in other.tiers.items():
            tier = self.tiers.setdefault(name, [0, 0.0, 0])
            tier[0] += runs
            tier[1] += total
            tier[2] += exceeded
        for name, values in other.scopes.items():
            acc = self.scopes.setdefault(name, [0, 0.0, 0.0])
            for i, value in enumerate(values):
                acc[i] += value
        return self

    # -- derived figures --------------------------------------------------------------------------------

    @property
    def mean(self) -> float:
        return self.usage_sum / self.runs if self.runs else 0.0

    @property
    def stdev(self) -> float:
        """Sample standard deviation of usage."""
        if self.runs < 2:
            return 0.0
        variance = (self.usage_sq - self.usage_sum * self.usage_sum / self.runs) / (self.runs - 1)
        return math.sqrt(max(variance, 0.0))

    @property
    def exceedance_rate(self) -> float:
        return self.exceeded / self.runs if self.runs else 0.0

    def quantile(self, q: float) -> float:
        """The nearest-rank ``q`` quantile of usage (0 < q ≤ 1), to the histogram's resolution."""
        if not self.runs:
            return 0.0
        rank = max(1, math.ceil(q * self.runs))
        seen = 0
        for key in sorted(self.histogram):
            seen += self.histogram[key]
            if seen >= rank:
                return key / BINS_PER_UNIT
        return self.usage_max  # pragma: no cover - ranks never pass the total

    def scope_shares(self) -> dict[str, float]:
        """Each scope's mean share of a run's loaded tokens (runs that loaded nothing are left out)."""
        n = self.share_runs
        return {scope: (acc[1] / n if n else 0.0) for scope, acc in self.scopes.items()}

    def share_stdev(self, scope: str) -> float:
        """Sample standard deviation of ``scope``'s share across runs (runs without the scope count as 0)."""
        n = self.share_runs
        acc = self.scopes.get(scope)
        if acc is None or n < 2:
            return 0.0
        variance = (acc[2] - acc[1] * acc[1] / n) / (n - 1)
        return math.sqrt(max(variance, 0.0))

    def drift(self, weights: Mapping[str, float]) -> dict[str, float]:
        """Share minus weight, per scope in either (a weighted scope never loaded drifts by -weight)."""
        shares = self.scope_shares()
        names = list(weights) + [s for s in shares if s not in weights]
        return {s: shares.get(s, 0.0) - float(weights.get(s, 0.0)) for s in names}

    def summary(self) -> dict:
        """The figures ``analyze --json`` shows for a group of runs."""
        return {
            "runs": self.runs,
            "mean_usage": _r(self.mean),
            "median_usage": _r(self.quantile(0.5)),
            "p90_usage": _r(self.quantile(0.9)),
            "max_usage": _r(self.usage_max),
            "exceeded": self.exceeded,
            "exceedance_rate": _r(self.exceedance_rate),
            "failed": self.failed,
            "tokens_loaded": self.tokens,
        }

    def tier_summary(self) -> dict[str, dict]:
        return {tier: {"runs": runs, "mean_usage": _r(total / runs), "exceeded": exceeded,
                       "exceedance_rate": _r(exceeded / runs)}
                for tier, (runs, total, exceeded) in self.tiers.items()}


def _r(value: float) -> float:
    return round(value, 4) + 0.0  # + 0.0 turns -0.0 into 0.0
