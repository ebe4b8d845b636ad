"""Usage analytics: streaming statistics, filters, name resolution, and one answer however the log is split."""

from __future__ import annotations

import json
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest

import engine
from engine.analytics import OTHER_PROFILE, analyze, duck
from engine.analytics.stats import NO_TIER
from engine.diagnostics import LookupFailed
from engine.usage.log import MAX_LINE_BYTES, OVERLONG, SkippedLine, read_log
from usage_oracle import analyze_plain, comparable
from usage_synth import START, native_record, seed_record, write_known_log


@pytest.fixture(scope="module")
def policy():
    return engine.load_policy()


@pytest.mark.parametrize("usages, median, p90, maximum", [
    ([0.5], 0.5, 0.5, 0.5),
    ([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], 0.5, 0.9, 1.0),
    ([0.3] * 50, 0.3, 0.3, 0.3),
    ([0.2, 0.9, 0.4], 0.4, 0.9, 0.9),
    ([0.77161], 0.772, 0.772, 0.77161),  # quantiles to 0.1 point, max exact
    ([i / 100 for i in range(1, 71)], 0.35, 0.63, 0.7),  # the rank of p90 is 63 exactly (0.9 * 70 in floats is not)
])
def test_quantiles(policy, tmp_path, monkeypatch, usages, median, p90, maximum):
    """The SQL's nearest-rank quantiles (sql/figures.sql), and the oracle's, on known usages."""
    records = [dict(native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, int(u * 20000),
                                  {"global": 1}), usage=u) for u in usages]
    log = write(tmp_path / "u.jsonl", records)
    analysis = analyze(policy, log)
    stats = analysis.agents["specialists/dbt-expert"].stats
    assert (stats.median_usage, stats.p90_usage, stats.max_usage) == (median, p90, maximum)
    assert stats.mean_usage == pytest.approx(sum(usages) / len(usages))
    assert comparable(analysis.to_dict()) == comparable(analyze_plain(policy, log, monkeypatch))


@pytest.mark.parametrize("exceeded, runs", [(0, 1), (3, 10), (30, 100), (10, 10), (0, 40)])
def test_wilson_bounds_come_from_the_counts(policy, tmp_path, exceeded, runs):
    from engine.recommend.confidence import wilson_interval

    records = [native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000,
                             25000 if i < exceeded else 10000, {"global": 1}) for i in range(runs)]
    stats = analyze(policy, write(tmp_path / "u.jsonl", records)).agents["specialists/dbt-expert"].stats
    assert (stats.exceeded, stats.runs) == (exceeded, runs)
    assert (stats.exceedance_low, stats.exceedance_high) == pytest.approx(wilson_interval(exceeded, runs), abs=1e-12)
    assert stats.tiers["medium"].exceedance_high == pytest.approx(stats.exceedance_high, abs=1e-12)


def test_the_known_log(policy, tmp_path):
    data = analyze(policy, write_known_log(tmp_path / "k.jsonl")).to_dict()
    assert (data["runs"], data["skipped_lines"], len(data["agents"])) == (295, 0, 5)
    dbt = data["agents"]["specialists/dbt-expert"]
    assert (dbt["runs"], dbt["exceeded"], dbt["exceedance_rate"], dbt["max_usage"], dbt["p90_usage"]) == \
        (100, 30, 0.3, 1.1, 1.1)
    assert dbt["tiers"] == {"medium": {"runs": 100, "mean_usage": dbt["mean_usage"], "exceeded": 30,
                                       "exceedance_rate": 0.3}}
    assert dbt["scopes"]["agent_patterns"]["weight"] == 0.5 and abs(dbt["scopes"]["agent_patterns"]["drift"]) < 0.01
    aws = data["agents"]["specialists/aws-expert"]
    assert aws["runs"] == 50 and aws["mean_usage"] == pytest.approx(0.30, abs=0.01)
    snowflake = data["agents"]["specialists/snowflake-expert"]["scopes"]
    assert snowflake["agent_patterns"]["share"] == pytest.approx(0.7, abs=0.005)
    assert snowflake["agent_patterns"]["drift"] == pytest.approx(0.2, abs=0.005)


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def at(day: int, hour: int = 0) -> datetime:
    return datetime(2025, 10, day, hour, tzinfo=timezone.utc)


@pytest.mark.parametrize("since, until, runs", [
    (None, None, 10),
    (at(5), None, 6),
    (None, at(5), 4),
    (at(3), at(7), 4),
    (at(20), None, 0),
])
def test_the_period(policy, tmp_path, since, until, runs):
    log = write(tmp_path / "u.jsonl", [native_record(at(1 + i), "specialists/dbt-expert", "specialist-narrow",
                                                     20000, 10000, {"global": 10000}) for i in range(10)])
    assert analyze(policy, log, since=since, until=until).runs == runs


def test_names_in_the_log_resolve_to_the_policys_agents(policy, tmp_path):
    records = [native_record(START, name, "specialist-narrow", 20000, 10000, {"global": 10000})
               for name in ("dbt-expert", "specialists/dbt-expert", "DBT-Expert", "retired/old-agent")]
    analysis = analyze(policy, write(tmp_path / "u.jsonl", records))
    assert {n: (a.stats.runs, a.known, a.profile) for n, a in analysis.agents.items()} == {
        "specialists/dbt-expert": (3, True, "specialist-narrow"),
        "retired/old-agent": (1, False, "specialist-narrow"),
    }
    only = analyze(policy, tmp_path / "u.jsonl", agent="dbt-expert")
    assert list(only.agents) == ["specialists/dbt-expert"] and only.runs == 3
    retired = analyze(policy, tmp_path / "u.jsonl", agent="retired/old-agent")
    assert list(retired.agents) == ["retired/old-agent"]
    with pytest.raises(LookupFailed, match="unknown agent 'nobody'"):
        analyze(policy, tmp_path / "u.jsonl", agent="nobody")


def test_runs_under_an_earlier_profile_are_kept_apart(policy, tmp_path):
    records = [native_record(START, "specialists/dbt-expert", profile, 20000, 10000, {"global": 10000})
               for profile in ["specialist-narrow"] * 4 + ["role-architect"] * 3]
    [item] = analyze(policy, write(tmp_path / "u.jsonl", records)).agents.values()
    assert (item.stats.runs, item.current().runs) == (7, 4)
    assert item.to_dict()["profiles"] == {"specialist-narrow": 4, "role-architect": 3}


@pytest.mark.parametrize("fast", [True, False])
def test_one_answer_whichever_reader(policy, tmp_path, monkeypatch, fast):
    """DuckDB's JSON reader, the line-by-line reader and a plain json loop give one answer."""
    log = write_known_log(tmp_path / "k.jsonl")
    with open(log, "a") as handle:
        handle.write("garbage\n")
        handle.write(log.read_text().splitlines()[0] + "\n")
        handle.write('{"torn')
    monkeypatch.setattr(duck, "FAST", fast)
    got = analyze(policy, log).to_dict()
    assert duck.last_reader == ("json" if fast else "lines")
    assert comparable(got) == comparable(analyze_plain(policy, log, monkeypatch))
    assert got["runs"] == 296 and got["skipped_lines"] == 2
    assert [s["line"] for s in got["skipped"]] == [296, 298]
    assert got["skipped"][1]["reason"] == "torn line (the file ends in the middle of it)"


def test_progress_is_reported_in_bytes(policy, tmp_path):
    log = write_known_log(tmp_path / "k.jsonl")
    seen: list[tuple[int, int]] = []
    analyze(policy, log, progress=lambda done, total: seen.append((done, total)))
    size = log.stat().st_size
    assert seen == [(0, size), (size, size)]


def test_an_empty_log(policy, tmp_path):
    (tmp_path / "u.jsonl").write_text("")
    data = analyze(policy, tmp_path / "u.jsonl").to_dict()
    assert (data["runs"], data["agents"], data["overall"]["mean_usage"]) == (0, {}, 0.0)


# -- hostile logs (issue 8): skipped and counted, never a traceback, bounded memory ---------------------------

HOSTILE = Path(__file__).parent / "data" / "usage-hostile.jsonl"


def test_hostile_records_are_skipped_and_counted(policy, monkeypatch):
    nested = ["not a JSON object", "missing key 'budget'"]
    data = analyze(policy, HOSTILE).to_dict()
    assert comparable(data) == comparable(analyze_plain(policy, HOSTILE, monkeypatch))
    assert (data["runs"], data["skipped_lines"]) == (2, 6)
    assert [(s["line"], s["reason"]) for s in data["skipped"]] == [
        (2, "'tier' and 'profile' must be strings"), (4, "'tier' and 'profile' must be strings"),
        (5, "'tier' and 'profile' must be strings"), (6, nested[0]), (7, nested[1]),
        (8, "'tier' and 'profile' must be strings")]
    assert data["overall"]["tiers"] == {"medium": {"runs": 1, "mean_usage": 0.75, "exceeded": 0,
                                                   "exceedance_rate": 0.0},
                                        NO_TIER: {"runs": 1, "mean_usage": 0.75, "exceeded": 0,
                                                  "exceedance_rate": 0.0}}


def test_the_log_reader_skips_the_same_lines():
    reader = read_log(HOSTILE)
    assert [r.tier for r in reader] == ["medium", ""]
    assert [s.line for s in reader.skipped] == [2, 4, 5, 6, 7, 8]


@pytest.mark.parametrize("where", ["middle", "end", "unterminated"])
def test_an_overlong_line_is_skipped_without_being_read_whole(policy, tmp_path, monkeypatch, where):
    good = json.dumps(native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, 10000,
                                    {"global": 10000})) + "\n"
    huge = '{"x": "' + "a" * (24 << 20) + '"}'
    text = {"middle": good + huge + "\n" + good, "end": good + good + huge + "\n",
            "unterminated": good + good + huge}[where]
    log = tmp_path / "u.jsonl"
    log.write_text(text)
    monkeypatch.setattr(duck, "CHUNK_BYTES", 1 << 20)
    tracemalloc.start()
    try:
        data = analyze(policy, log).to_dict()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (data["runs"], data["skipped_lines"]) == (2, 1)
    assert data["skipped"] == [{"line": 2 if where == "middle" else 3, "reason": OVERLONG}]
    assert peak < 8 << 20  # the line is 24 MiB; a chunk is 1 MiB and a line at most MAX_LINE_BYTES
    reader = read_log(log)
    assert len(list(reader)) == 2 and reader.skipped == [SkippedLine(data["skipped"][0]["line"], OVERLONG)]


def test_a_line_of_exactly_the_bound_is_read(tmp_path):
    record = native_record(START, "a", "p", 100, 10, {"global": 10})
    record["error"] = ""
    line = json.dumps(record)
    record["error"] = "e" * (MAX_LINE_BYTES - len(line))
    log = tmp_path / "u.jsonl"
    log.write_text(json.dumps(record) + "\n")
    assert len(log.read_bytes()) == MAX_LINE_BYTES + 1
    reader = read_log(log)
    assert len(list(reader)) == 1 and reader.skipped_lines == 0


def test_an_agent_only_the_log_knows_answers_to_its_short_name(policy, tmp_path):
    records = [native_record(START, name, "specialist-narrow", 20000, 10000, {"global": 10000})
               for name in ("specialists/looker-expert", "specialists/looker-expert", "specialists/dbt-expert")]
    log = write(tmp_path / "u.jsonl", records)
    only = analyze(policy, log, agent="looker-expert")
    assert (list(only.agents), only.runs) == (["specialists/looker-expert"], 2)
    with pytest.raises(LookupFailed, match="unknown agent 'looker'"):
        analyze(policy, log, agent="looker")


def test_seed_records_without_a_profile_are_told_apart_by_their_budget(policy, tmp_path):
    def seed(budget, tier="medium"):
        record = seed_record(START, "specialists/dbt-expert", "", budget, budget // 2, {"global": budget // 2},
                             tier=tier)
        del record["profile"]
        return record

    # 20,000 at medium is specialist-narrow (current); 35,000 is specialist-broad; 12,345 is no profile's
    records = [seed(20000)] * 3 + [seed(30000, "complex")] + [seed(35000)] * 4 + [seed(12345)] * 2
    [item] = analyze(policy, write(tmp_path / "u.jsonl", records)).agents.values()
    assert (item.stats.runs, item.current().runs) == (10, 4)
    assert item.profiles == {"": 4, "specialist-broad": 4, OTHER_PROFILE: 2}
