"""The reference the analytics engine is checked against: a plain json-per-line loop over a local log, folding
each usage record (engine.usage.record.record_fields, the one definition of a valid record) into running totals
per group key, and every figure derived from them in plain Python — written apart from the SQL on purpose, so
that the two definitions check each other. Slow and simple; only the tests use it."""

from __future__ import annotations

import json
import math
import os
from datetime import datetime

from engine.analytics.stats import BINS_PER_UNIT, NO_TIER, Figures, ScopeStats, TierStats, UsageStats
from engine.recommend.confidence import wilson_interval
from engine.usage.log import MAX_LINE_BYTES, SKIPPED_KEPT, SkippedLine, loads_line
from engine.usage.record import RecordFields, parse_timestamp, record_fields


class Totals:
    """Running totals over a group of runs: constant memory per group, mergeable."""

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
        total = sum(f.scopes.values())
        self.runs += 1
        self.usage_sum += f.usage
        self.usage_sq += f.usage * f.usage
        self.usage_max = max(self.usage_max, f.usage)
        self.exceeded += bool(f.exceeded)
        self.failed += not f.success
        key = int(f.usage * BINS_PER_UNIT + 0.5)
        self.histogram[key] = self.histogram.get(key, 0) + 1
        tier = self.tiers.setdefault(f.tier or NO_TIER, [0, 0.0, 0])
        tier[0] += 1
        tier[1] += f.usage
        tier[2] += bool(f.exceeded)
        if total > 0:
            self.tokens += total
            self.share_runs += 1
            for scope, tokens in f.scopes.items():
                acc = self.scopes.setdefault(scope, [0, 0.0, 0.0])
                share = tokens / total
                acc[0] += tokens
                acc[1] += share
                acc[2] += share * share

    def merge(self, other: "Totals") -> "Totals":
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
        for name, values in other.tiers.items():
            tier = self.tiers.setdefault(name, [0, 0.0, 0])
            for i, value in enumerate(values):
                tier[i] += value
        for name, values in other.scopes.items():
            acc = self.scopes.setdefault(name, [0, 0.0, 0.0])
            for i, value in enumerate(values):
                acc[i] += value
        return self

    def quantile(self, numerator: int, denominator: int) -> float:
        """The nearest-rank quantile numerator/denominator (the rank exact, in integers)."""
        rank = max(1, -(-numerator * self.runs // denominator))
        seen = 0
        for key in sorted(self.histogram):
            seen += self.histogram[key]
            if seen >= rank:
                return key / BINS_PER_UNIT
        return 0.0

    def figures(self, weights: dict[str, float] | None) -> UsageStats:
        n = self.runs
        if not n:
            return UsageStats()
        low, high = wilson_interval(self.exceeded, n)
        variance = (self.usage_sq - self.usage_sum * self.usage_sum / n) / (n - 1) if n > 1 else 0.0
        tiers = {}
        for tier, (runs, total, exceeded) in self.tiers.items():
            tiers[tier] = TierStats(runs, total / runs, exceeded, exceeded / runs, *wilson_interval(exceeded, runs))
        scopes = {}
        if weights is not None:
            k = self.share_runs
            for scope in list(weights) + [s for s in self.scopes if s not in weights]:
                tokens, share_sum, share_sq = self.scopes.get(scope, (0, 0.0, 0.0))
                share = share_sum / k if k else 0.0
                spread = math.sqrt(max((share_sq - share_sum * share_sum / k) / (k - 1), 0.0)) if k > 1 else 0.0
                scopes[scope] = ScopeStats(tokens, share, spread, weights.get(scope),
                                           share - weights.get(scope, 0.0) if weights else None,
                                           scope in self.scopes)
        return UsageStats(n, self.usage_sum / n, self.quantile(1, 2), self.quantile(9, 10), self.usage_max,
                          self.exceeded, self.exceeded / n, self.failed, self.tokens, self.quantile(1, 4),
                          self.quantile(3, 4), self.quantile(0, 1), math.sqrt(max(variance, 0.0)), low, high,
                          self.share_runs, tiers, scopes)


class PlainScan:
    """The interface of ``engine.analytics.duck.DuckScan`` over :func:`read_plain`'s groups."""

    def __init__(self, groups: dict[tuple, Totals], skipped_lines: int, skipped: list[SkippedLine]) -> None:
        self.groups, self.skipped_lines, self.skipped = groups, skipped_lines, skipped

    def __enter__(self) -> "PlainScan":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def keys(self) -> list[tuple]:
        return sorted(self.groups)

    def figures(self, agent_keys, weights) -> Figures:  # noqa: ANN001 - AgentKey and Weight rows
        by_name: dict[str, dict[str, float]] = {}
        for w in weights:
            by_name.setdefault(w.name, {})[w.scope] = w.weight
        whole: dict[str, Totals] = {}
        current: dict[str, Totals] = {}
        overall = Totals()
        profiles: dict[str, dict[str, int]] = {}
        for key in agent_keys:
            group = self.groups[key[:4]]
            whole.setdefault(key.name, Totals()).merge(group)
            overall.merge(group)
            if key.is_current:
                current.setdefault(key.name, Totals()).merge(group)
            runs = profiles.setdefault(key.name, {})
            runs[key.run_profile] = runs.get(key.run_profile, 0) + group.runs
        return Figures({n: t.figures(by_name.get(n, {})) for n, t in whole.items()},
                       {n: t.figures(by_name.get(n, {})) for n, t in current.items()},
                       overall.figures(None), profiles)

    def tiers(self) -> None:
        return None

    def daily(self) -> None:
        return None


def read_plain(path: str | os.PathLike, since: datetime | None = None, until: datetime | None = None) -> PlainScan:
    """Read ``path`` line by line with json.loads: the groups, the skipped-line count and their line numbers
    (the reasons say only "skipped": the engine words them)."""
    groups: dict[tuple, Totals] = {}
    skipped_lines, skipped = 0, []
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    if not lines[-1]:
        lines.pop()
    if lines and lines[0].startswith(b"\xef\xbb\xbf"):  # a byte order mark that starts the file: not the line's
        lines[0] = lines[0][3:]
    for number, raw in enumerate(lines, 1):
        try:
            if len(raw) > MAX_LINE_BYTES:
                raise ValueError("overlong")
            fields = record_fields(loads_line(raw))  # a key twice: its first value; no lone surrogates
            if since is not None or until is not None:
                when = parse_timestamp(fields.timestamp)
                if (since is not None and when < since) or (until is not None and when >= until):
                    continue
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError):
            if not raw.strip(b" \t\r"):
                continue  # a blank line is not a record, nor a skipped one
            skipped_lines += 1
            if len(skipped) < SKIPPED_KEPT:
                skipped.append(SkippedLine(number, "skipped"))
            continue
        key = (fields.agent, fields.profile, "", 0) if fields.profile else (fields.agent, "", fields.tier,
                                                                              fields.budget)
        groups.setdefault(key, Totals()).add(fields)
    return PlainScan(groups, skipped_lines, skipped)


def analyze_plain(policy, log, monkeypatch, **options):  # noqa: ANN001, ANN201 - test helper
    """``engine.analytics.analyze`` with the log read and every figure computed by this module (its
    ``to_dict()``, with the per-tier provenance, which only the engine reads, left out)."""
    import engine.analytics as analytics

    with monkeypatch.context() as patch:
        patch.setattr(analytics, "open_scan", lambda log, since, until, **_: read_plain(log, since, until))
        data = analytics.analyze(policy, log, **options).to_dict()
    del data["tiers"]
    return data


def comparable(data: dict) -> dict:
    """An ``analyze --json`` answer without what only the engine has (per-tier provenance) and with the skipped
    lines by number only (the reader words the reasons)."""
    data = dict(data)
    data.pop("tiers", None)
    data["skipped"] = [s["line"] for s in data["skipped"]]
    return data
