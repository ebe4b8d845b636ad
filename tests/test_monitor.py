"""The budget monitor: loads, alerts once per threshold, soft and hard enforcement, the record it appends."""

from __future__ import annotations

import errno
import json
import logging
import os

import pytest

import engine
from engine.monitor import Alert, BudgetExceeded, monitor


@pytest.fixture(scope="module")
def policy():
    return engine.load_policy()


@pytest.mark.parametrize("loads, alerts", [
    ([1000], []),
    ([15000], ["info"]),
    ([14999, 1], ["info"]),
    ([15000, 3000], ["info", "warning"]),
    ([19000, 500, 500], ["info", "warning", "critical"]),
    ([25000], ["info", "warning", "critical"]),  # one load past three thresholds: three alerts, in order
    ([15000, 1, 1, 1], ["info"]),  # once each
])
def test_alerts_fire_once_at_each_threshold(policy, loads, alerts):
    seen: list[Alert] = []
    with monitor(policy, "dbt-expert", tier="medium", log=False, on_alert=seen.append) as run:  # budget 20,000
        for tokens in loads:
            run.load("global", tokens)
    assert [a.level for a in seen] == alerts
    assert list(run.status().alerts) == alerts


def test_alerts_go_to_logging_and_nothing_is_printed(policy, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="engine.monitor"):
        with monitor(policy, "dbt-expert", tier="medium", log=False) as run:
            run.load("agent_patterns", 21000)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("INFO", "specialists/dbt-expert: info: 105% of the budget loaded (21,000 of 20,000 tokens; threshold 75%)"),
        ("WARNING", "specialists/dbt-expert: warning: 105% of the budget loaded (21,000 of 20,000 tokens; "
                    "threshold 90%)"),
        ("ERROR", "specialists/dbt-expert: critical: 105% of the budget loaded (21,000 of 20,000 tokens; "
                  "threshold 100%)"),
    ]
    assert capsys.readouterr() == ("", "")


def test_status(policy):
    with monitor(policy, "dbt-expert", tier="complex", log=False) as run:
        run.load("global", 6000)
        run.load("agent_patterns", 12000)
        run.load("global", 1000)
        status = run.status()
    assert status.to_dict() == {
        "agent": "specialists/dbt-expert", "profile": "specialist-narrow", "tier": "complex", "budget": 30000,
        "loaded": 19000, "usage": 19000 / 30000, "remaining": 11000,
        "scopes": {"global": 7000, "agent_patterns": 12000}, "alerts": [], "exceeded": False, "refused_tokens": 0,
        "log_error": None}


def read(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_soft_enforcement_loads_past_the_budget_and_records_it(policy, tmp_path):
    log = tmp_path / "u.jsonl"
    with monitor(policy, "dbt-expert", tier="simple", log=log) as run:  # budget 10,000
        run.load("global", 8000)
        assert run.try_load("agent_recent", 4000) is True
    [record] = read(log)
    assert (record["tokens_loaded"], record["usage"], record["exceeded"], record["success"]) == (12000, 1.2, True, True)
    assert record["alerts"] == ["info", "warning", "critical"]
    assert record["scopes"] == {"global": 8000, "agent_recent": 4000}


def test_hard_enforcement_refuses_and_records_the_refusal(policy, tmp_path):
    log = tmp_path / "u.jsonl"
    with monitor(policy, "dbt-expert", tier="simple", log=log, enforcement="hard") as run:
        run.load("global", 8000)
        assert run.try_load("agent_recent", 4000) is False
        with pytest.raises(BudgetExceeded, match="would exceed the budget"):
            run.load("agent_recent", 2001)
        run.load("agent_recent", 2000)  # exactly the budget is allowed
        assert run.status().remaining == 0
    [record] = read(log)
    assert (record["tokens_loaded"], record["refused_tokens"], record["exceeded"], record["success"]) == \
        (10000, 6001, True, True)


def test_a_hard_policy_refuses_by_default(tmp_path):
    path = tmp_path / "hard.yaml"
    path.write_text("extends: default\nenforcement: hard\n")
    with monitor(engine.load_policy(path), "dbt-expert", log=False) as run:
        assert run.try_load("global", 20001) is False


def test_a_block_that_raises_is_recorded_as_failed(policy, tmp_path):
    log = tmp_path / "u.jsonl"
    with pytest.raises(RuntimeError):
        with monitor(policy, "aws-expert", tier="medium", log=log) as run:
            run.load("global", 100)
            raise RuntimeError("warehouse unreachable")
    [record] = read(log)
    assert (record["success"], record["error"], record["tokens_loaded"]) == (False, "warehouse unreachable", 100)
    assert record["agent"] == "specialists/aws-expert" and record["profile"] == "specialist-broad"
    assert record["policy_hash"].startswith("sha256:") and record["duration_s"] >= 0


def test_run_fail_marks_the_record_without_raising(policy, tmp_path):
    log = tmp_path / "u.jsonl"
    with monitor(policy, "aws-expert", log=log) as run:
        run.fail("gave up")
    assert read(log)[0]["error"] == "gave up" and read(log)[0]["tier"] == "medium"


class Detecting:
    """A policy that can detect a task's tier (as the detection job adds)."""

    def __init__(self, policy, tier):
        self._policy, self._tier = policy, tier

    def __getattr__(self, name):
        return getattr(self._policy, name)

    def detect(self, text, context=None):
        return type("Detection", (), {"tier": self._tier, "confidence": 0.9})()


@pytest.mark.parametrize("task, tier, detects, expected", [
    ("Design end-to-end architecture", None, "multi-system", "multi-system"),
    ("Design end-to-end architecture", "simple", "multi-system", "simple"),  # an explicit tier wins
    (None, None, "complex", "medium"),  # no task: the default tier
])
def test_the_tier_of_a_task(policy, task, tier, detects, expected):
    from engine.monitor import monitor

    with monitor(Detecting(policy, detects), "dbt-expert", task=task, tier=tier, log=False) as run:
        pass
    assert run.status().tier == expected


@pytest.mark.parametrize("tokens", [-1, 1.5, "10", float("nan"), float("inf"), float("-inf"), True, 2**53,
                                    pytest.param(10**5000, id="5001-digits"), pytest.param(-10**5000, id="-5001-digits")])
def test_bad_token_counts_are_refused_before_anything_is_recorded(policy, tokens, tmp_path):
    log = tmp_path / "u.jsonl"
    with monitor(policy, "dbt-expert", log=log) as run:
        run.load("global", 10)
        with pytest.raises(ValueError, match="tokens must be a whole number from 0 to 9,007,199,254,740,991"):
            run.load("global", tokens)
        with pytest.raises(ValueError, match="whole number"):
            run.try_load("agent_patterns", tokens)
        assert (run.loaded, dict(run.scopes)) == (10, {"global": 10})
    assert json.loads(log.read_text())["scopes"] == {"global": 10}


@pytest.mark.parametrize("scope", ["", None, 3])
def test_a_scope_is_a_non_empty_string(policy, scope):
    with monitor(policy, "dbt-expert", log=False) as run:
        with pytest.raises(ValueError, match="a scope is a non-empty string"):
            run.load(scope, 10)
        assert run.loaded == 0


def test_a_run_loads_at_most_max_tokens_in_all(policy):
    from engine.usage.record import MAX_TOKENS

    with monitor(policy, "dbt-expert", log=False) as run:
        run.load("global", MAX_TOKENS)
        with pytest.raises(ValueError, match="at most"):
            run.load("global", 1)
        assert run.loaded == MAX_TOKENS


def test_an_unwritable_log_does_not_hide_the_blocks_error(policy, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(KeyError):
        with monitor(policy, "dbt-expert", log=blocker / "u.jsonl"):
            raise KeyError("x")
    assert "cannot write the usage record" in caplog.text


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("how", ["not a folder", "disk full", "/dev/full", "record too large"])
def test_a_failed_log_write_keeps_the_blocks_result(policy, tmp_path, caplog, monkeypatch, how):
    """Disk full (or any unwritable log) after a successful block: no exception, the caller keeps its result;
    the failure goes to logging (ERROR, engine.monitor) and to the run's status."""
    import engine.usage.log

    log = tmp_path / "u.jsonl"
    if how == "not a folder":
        (tmp_path / "file").write_text("")
        log = tmp_path / "file" / "u.jsonl"
    elif how == "disk full":
        monkeypatch.setattr(engine.usage.log.os, "write", _disk_full)
    elif how == "/dev/full":
        if not os.path.exists("/dev/full"):
            pytest.skip("no /dev/full on this system")
        log = "/dev/full"
    result = None
    with caplog.at_level(logging.ERROR, logger="engine.monitor"):
        with monitor(policy, "dbt-expert", tier="medium", log=log) as run:
            run.load("global", 1200)
            if how == "record too large":
                run.fail("x" * (2 << 20))  # over the log's 1 MiB line limit
            result = "the caller's answer"
    assert result == "the caller's answer"
    assert run.log_error is not None and run.log_error.startswith("cannot write the usage record to ")
    assert run.status().log_error == run.log_error and run.status().to_dict()["log_error"] == run.log_error
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert run.log_error in caplog.records[0].getMessage()
    if how == "disk full":
        assert "No space left on device" in run.log_error


def test_a_written_record_leaves_no_log_error(policy, tmp_path):
    with monitor(policy, "dbt-expert", tier="medium", log=tmp_path / "u.jsonl") as run:
        run.load("global", 1200)
    assert run.log_error is None and run.status().log_error is None


@pytest.mark.parametrize("task, tier", [
    ("Show current Snowflake status", "simple"),
    ("Analyze slow queries", "complex"),
    ("Design end-to-end architecture", "multi-system"),
])
def test_the_policy_detects_the_tier_of_a_task(policy, tmp_path, task, tier):
    log = tmp_path / "u.jsonl"
    with monitor(policy, "dbt-expert", task=task, log=log) as run:
        run.load("global", 1000)
    assert run.status().tier == tier and read(log)[0]["tier"] == tier
