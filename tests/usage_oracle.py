"""The reference the analytics engine is checked against: a plain json-per-line loop over a local log, folding
each usage record (engine.usage.record.record_fields, the one definition of a valid record) into the same
groups the engine gives. Slow and simple on purpose; only the tests use it."""

from __future__ import annotations

import json
import os
from datetime import datetime

from engine.analytics.stats import LogScan, UsageStats
from engine.usage.log import MAX_LINE_BYTES, SKIPPED_KEPT, SkippedLine
from engine.usage.record import parse_timestamp, record_fields


def read_plain(path: str | os.PathLike, since: datetime | None = None, until: datetime | None = None) -> LogScan:
    """Read ``path`` line by line with json.loads: the groups, the skipped-line count and their line numbers
    (the reasons say only "skipped": the engine words them)."""
    result = LogScan()
    with open(path, "rb") as handle:
        lines = handle.read().split(b"\n")
    if not lines[-1]:
        lines.pop()
    for number, raw in enumerate(lines, 1):
        result.lines += 1
        try:
            if len(raw) > MAX_LINE_BYTES:
                raise ValueError("overlong")
            fields = record_fields(json.loads(raw))
            if since is not None or until is not None:
                when = parse_timestamp(fields.timestamp)
                if (since is not None and when < since) or (until is not None and when >= until):
                    continue
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError):
            if not raw.strip(b" \t\r"):
                continue  # a blank line is not a record, nor a skipped one
            result.skipped_lines += 1
            if len(result.skipped) < SKIPPED_KEPT:
                result.skipped.append(SkippedLine(number, "skipped"))
            continue
        key = (fields.agent, fields.profile, "", 0) if fields.profile else (fields.agent, "", fields.tier,
                                                                              fields.budget)
        result.groups.setdefault(key, UsageStats()).add(fields)
    return result


def analyze_plain(policy, log, monkeypatch, **options):  # noqa: ANN001, ANN201 - test helper
    """``engine.analytics.analyze`` with the log read by :func:`read_plain` (its ``to_dict()``, with the
    per-tier provenance and daily rows, which only the engine reads, left out)."""
    import engine.analytics as analytics

    with monkeypatch.context() as patch:
        patch.setattr(analytics, "read_log_scan", lambda log, since, until, **_: read_plain(log, since, until))
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
