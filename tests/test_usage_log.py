"""The usage log: record format, safe appends, a reader that skips what it cannot read, where the log is."""

from __future__ import annotations

import json
import multiprocessing
from datetime import datetime, timezone
from pathlib import Path

import pytest

import engine
from engine.usage import (CorruptRecord, UsageRecord, append_record, default_log_path, read_log,
                          resolve_log_path)
from engine.resources import schema_path
from engine.monitor import monitor

RECORD = UsageRecord(datetime(2025, 10, 14, 20, tzinfo=timezone.utc), "specialists/dbt-expert", "specialist-narrow",
                     "medium", 20000, 15432, 0.7716, False, {"global": 3200, "agent_recent": 4100,
                                                              "agent_patterns": 8132}, ("info",), 0, 1.5, True,
                     None, "sha256:0123456789abcdef")

SEED_LINE = {"timestamp": "2025-10-14T20:00:00Z", "agent": "specialists/dbt-expert", "profile": "specialist-narrow",
             "task_complexity": "medium", "budget_allocated": 20000, "tokens_loaded": 15432, "usage_pct": 77.16,
             "scopes_loaded": {"global": 3200, "agent_recent": 4100, "agent_patterns": 8132},
             "exceeded_budget": False, "warnings_triggered": ["75%"]}


def validator():
    from jsonschema import Draft202012Validator

    schema = json.loads(Path(schema_path("usage-record")).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_a_record_round_trips_and_matches_its_schema(tmp_path):
    log = tmp_path / "usage.jsonl"
    append_record(log, RECORD)
    line = log.read_text()
    assert line.endswith("\n") and line.count("\n") == 1
    data = json.loads(line)
    assert data["timestamp"] == "2025-10-14T20:00:00.000Z"
    assert list(validator().iter_errors(data)) == []
    assert list(read_log(log)) == [RECORD]


@pytest.mark.parametrize("scopes_key", ["scopes_loaded", "scope_breakdown"])
def test_the_seeds_format_is_read(tmp_path, scopes_key):
    line = dict(SEED_LINE)
    line[scopes_key] = line.pop("scopes_loaded")
    log = tmp_path / "seed.jsonl"
    log.write_text(json.dumps(line) + "\n")
    [record] = list(read_log(log))
    assert (record.agent, record.profile, record.tier, record.budget, record.tokens_loaded) == \
        ("specialists/dbt-expert", "specialist-narrow", "medium", 20000, 15432)
    assert record.usage == pytest.approx(0.7716)
    assert record.scopes == {"global": 3200, "agent_recent": 4100, "agent_patterns": 8132}
    assert record.alerts == ("info",) and record.exceeded is False and record.success is True


def test_seed_scope_breakdown_with_nested_tokens():
    line = dict(SEED_LINE, scope_breakdown={"global": {"tokens": 3200, "pct": 20.7}})
    del line["scopes_loaded"]
    assert UsageRecord.from_dict(line).scopes == {"global": 3200}


GOOD = json.dumps(RECORD.to_dict())


@pytest.mark.parametrize("bad, reason", [
    ('{"timestamp": "2025-10-14T20:00:00Z", "agent": "a", "bud', "torn line"),
    ("not json at all", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    (json.dumps({k: v for k, v in RECORD.to_dict().items() if k != "agent"}), "missing key 'agent'"),
    (json.dumps(dict(RECORD.to_dict(), budget="20000")), "non-negative integers"),
    (json.dumps(dict(RECORD.to_dict(), usage=-1)), "usage must be a non-negative number"),
    (json.dumps(dict(RECORD.to_dict(), timestamp="yesterday")), "not an ISO 8601 time"),
    (json.dumps(dict(RECORD.to_dict(), scopes={"global": "many"})), "per-scope tokens"),
    (json.dumps(dict(RECORD.to_dict(), exceeded="no")), "true or false"),
])
def test_the_reader_skips_counts_and_reports_a_bad_line(tmp_path, bad, reason):
    log = tmp_path / "usage.jsonl"
    torn = reason == "torn line"
    log.write_text(f"{GOOD}\n\n{bad}{'' if torn else chr(10)}" + ("" if torn else GOOD + "\n"))
    reader = read_log(log)
    assert len(list(reader)) == (1 if torn else 2)
    assert reader.skipped_lines == 1
    assert reader.skipped[0].line == 3 and reason in reader.skipped[0].reason


def test_an_append_after_a_torn_line_starts_a_new_line(tmp_path):
    log = tmp_path / "usage.jsonl"
    log.write_text(GOOD + "\n" + GOOD[:40])
    append_record(log, RECORD)
    reader = read_log(log)
    assert len(list(reader)) == 2 and reader.skipped_lines == 1


def test_from_dict_rejects_what_is_not_a_record():
    with pytest.raises(CorruptRecord, match="not a JSON object"):
        UsageRecord.from_dict([])


def test_an_oversized_record_is_refused(tmp_path):
    with pytest.raises(ValueError, match="at most"):
        append_record(tmp_path / "u.jsonl", dict(RECORD.to_dict(), error="x" * (1 << 20)))


# -- many writers at once ------------------------------------------------------------------------------------

WRITERS, RUNS_EACH = 8, 2000


def _write_runs(log: str, worker: int) -> None:
    policy = engine.load_policy()
    agents = list(policy.agents)
    for i in range(RUNS_EACH):
        with monitor(policy, agents[(worker + i) % len(agents)], tier="medium", log=log) as run:
            run.load("global", 1000 + i)
            run.load("agent_patterns", worker * 100 + 7)


def test_many_processes_append_without_losing_or_mixing_records(tmp_path):
    log = tmp_path / "usage.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_runs, args=(str(log), w)) for w in range(WRITERS)]
    for process in workers:
        process.start()
    for process in workers:
        process.join()
    assert [p.exitcode for p in workers] == [0] * WRITERS
    with open(log, "a") as handle:  # a writer that died mid-line
        handle.write('{"timestamp": "2025-10-14T20:00:00Z", "agent": "specialists/dbt-exp')
    check = validator()
    lines = log.read_text().split("\n")
    assert len(lines) == WRITERS * RUNS_EACH + 1
    records = [json.loads(line) for line in lines[:-1]]
    assert all(not list(check.iter_errors(r)) for r in records[::97])
    reader = read_log(log)
    assert sum(1 for _ in reader) == WRITERS * RUNS_EACH and reader.skipped_lines == 1
    per_writer = sorted(r["scopes"]["agent_patterns"] for r in records)
    assert per_writer == sorted(w * 100 + 7 for w in range(WRITERS) for _ in range(RUNS_EACH))

    from engine.analytics import analyze

    analysis = analyze(engine.load_policy(), log).to_dict()
    assert analysis["runs"] == WRITERS * RUNS_EACH
    assert analysis["skipped_lines"] == 1
    assert analysis["skipped"] == [{"line": WRITERS * RUNS_EACH + 1,
                                    "reason": "torn line (the file ends in the middle of it)"}]


# -- where the log is ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("explicit, env, configured, expected", [
    ("cli.jsonl", "env.jsonl", "policy.jsonl", "cli.jsonl"),
    (None, "env.jsonl", "policy.jsonl", "env.jsonl"),
    (None, None, "policy.jsonl", "<policy dir>/policy.jsonl"),
    (None, None, "/var/log/agents.jsonl", "/var/log/agents.jsonl"),
    (None, None, None, "<default>"),
])
def test_the_log_location(tmp_path, monkeypatch, explicit, env, configured, expected):
    policy_file = tmp_path / "ctxbudget.yaml"
    policy_file.write_text("extends: default\n" + (f"usage_log: {configured}\n" if configured else ""))
    policy = engine.load_policy(policy_file)
    monkeypatch.delenv("CTXBUDGET_LOG", raising=False)
    if env:
        monkeypatch.setenv("CTXBUDGET_LOG", env)
    want = {"<policy dir>/policy.jsonl": tmp_path / "policy.jsonl",
            "<default>": default_log_path()}.get(expected, Path(expected))
    assert resolve_log_path(explicit, policy) == want


def test_the_default_log_is_per_user(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_log_path() == tmp_path / "ctxbudget" / "usage.jsonl"


@pytest.mark.parametrize("field, value, message", [
    ("tokens_loaded", -1, "tokens_loaded must be a whole number"),
    ("tokens_loaded", 2**53, "tokens_loaded must be a whole number"),
    ("tokens_loaded", 1.0, "tokens_loaded must be a whole number"),
    ("refused_tokens", True, "refused_tokens must be a whole number"),
    ("scopes", {"global": float("nan")}, "per-scope tokens"),
    ("scopes", {"global": -5}, "per-scope tokens"),
    ("usage", float("inf"), "usage must be a finite non-negative number"),
    ("usage", float("nan"), "usage must be a finite non-negative number"),
    ("duration_s", float("inf"), "duration_s must be a finite"),
    ("duration_s", -1.0, "duration_s must be a finite"),
    ("tier", 3, "tier must be a string"),
    ("budget", -1, "budget must be a non-negative integer"),
    ("budget", 2**63, "budget must be at most 9,223,372,036,854,775,807"),
])
def test_a_record_no_log_should_hold_is_a_value_error(field, value, message) -> None:
    """The Python API refuses such a record before anything is written (CorruptRecord is a ValueError), built
    or changed with ``_replace``."""
    with pytest.raises(ValueError, match=message):
        RECORD._replace(**{field: value})
    with pytest.raises(ValueError, match=message):
        UsageRecord(**{**RECORD._asdict(), field: value})


@pytest.mark.parametrize("change, reason", [
    ({"tokens_loaded": 1e400}, "budget and tokens loaded"),
    ({"scopes": {"global": 1e400}}, "per-scope tokens"),
    ({"scopes": {"global": -3}}, "per-scope tokens"),
    ({"refused_tokens": "many"}, "'refused_tokens' must be a non-negative integer"),
    ({"refused_tokens": 1e400}, "'refused_tokens' must be a non-negative integer"),
    ({"usage": 10**400}, "usage must be a non-negative number"),
])
def test_hostile_numbers_in_a_log_line_are_corrupt_records(change, reason) -> None:
    line = {**RECORD.to_dict(), **change}
    with pytest.raises(CorruptRecord, match=reason):
        UsageRecord.from_dict(json.loads(json.dumps(line)))


def test_an_odd_duration_in_a_log_line_is_dropped() -> None:
    for duration in (float("inf"), 10**400, -1, True, "1.5"):
        assert UsageRecord.from_dict({**RECORD.to_dict(), "duration_s": duration}).duration_s is None


def test_the_record_fields_are_defined_once() -> None:
    """UsageRecord is the one definition: the schema, the log line, the analytic tuple, the provenance a reader
    defaults and a monitor fills all follow its fields (issue 9)."""
    from engine.monitor import _provenance_fields
    from engine.usage import RECORD_FIELDS
    from engine.usage.record import (ANALYTIC_FIELDS, PROVENANCE_FIELDS, RecordFields, _provenance,
                                     record_fields)

    schema = json.loads(Path(schema_path("usage-record")).read_text())
    assert tuple(schema["properties"]) == RECORD_FIELDS == UsageRecord._fields
    assert tuple(RECORD.to_dict()) == RECORD_FIELDS
    assert set(schema["required"]) <= set(ANALYTIC_FIELDS)
    assert RecordFields._fields == ANALYTIC_FIELDS and set(ANALYTIC_FIELDS) <= set(RECORD_FIELDS)
    assert tuple(_provenance({})) == PROVENANCE_FIELDS == RECORD_FIELDS[-len(PROVENANCE_FIELDS):]
    every = {name: f"value of {name}" for name in (*PROVENANCE_FIELDS, "not a field")}
    assert tuple(_provenance_fields(every)) == PROVENANCE_FIELDS
    # the analytic tuple of a log line holds the record's values (the timestamp as its text)
    line = RECORD.to_dict()
    fields = record_fields(line)
    assert fields._replace(timestamp=RECORD.timestamp, scopes=dict(fields.scopes)) == tuple(
        getattr(RECORD, name) for name in ANALYTIC_FIELDS)
    assert fields.timestamp == line["timestamp"] == "2025-10-14T20:00:00.000Z"


def test_the_log_line_is_the_generated_json_form() -> None:
    """Timestamps in UTC with milliseconds, usage and confidence to 6 decimals, durations to 3."""
    record = RECORD._replace(usage=1 / 3, duration_s=2 / 3, confidence=0.1234567,
                             timestamp=datetime.fromisoformat("2025-10-14T22:00:00.5+02:00"))
    line = record.to_dict()
    assert (line["timestamp"], line["usage"], line["duration_s"], line["confidence"]) == (
        "2025-10-14T20:00:00.500Z", 0.333333, 0.667, 0.123457)
    assert line["scopes"] == {"global": 3200, "agent_recent": 4100, "agent_patterns": 8132}
    assert line["alerts"] == ["info"] and line["signals"] == [] and line["duration_s"] is not None
    assert RECORD._replace(duration_s=None).to_dict()["duration_s"] is None
    validator().validate(line)
