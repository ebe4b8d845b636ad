"""Scope names are checked, and under hard enforcement a policy may hold each scope to its share."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

import engine
from engine.diagnostics import LookupFailed
from engine.monitor import BudgetExceeded, monitor

# dbt-expert at complex: 30,000 tokens = global 6,000 + agent_recent 9,000 + agent_patterns 15,000


def _policy(tmp_path: Path, *lines: str):
    path = tmp_path / "ctxbudget.yaml"
    path.write_text("\n".join(["version: 1", "extends: default", *lines]) + "\n", encoding="utf-8")
    return engine.load_policy(path)


@pytest.mark.parametrize(("enforcement", "scope_enforcement"), [("soft", "soft"), ("hard", "soft"),
                                                                ("hard", "hard"), ("soft", "hard")])
def test_an_unknown_scope_is_an_error_with_a_suggestion(tmp_path, enforcement, scope_enforcement) -> None:
    policy = _policy(tmp_path, f"enforcement: {enforcement}", f"scope_enforcement: {scope_enforcement}")
    with monitor(policy, "dbt-expert", tier="complex", log=False) as run:
        with pytest.raises(LookupFailed) as raised:
            run.load("glboal", 100)
        assert str(raised.value) == ("unknown scope 'glboal' (scopes: global, agent_recent, agent_patterns); "
                                     "did you mean 'global'?")
        assert (raised.value.kind, raised.value.suggestions) == ("scope", ["global"])
        with pytest.raises(LookupFailed, match="unknown scope 'nosuch'"):
            run.try_load("nosuch", 1)  # not a refusal: False would hide the typo
        with pytest.raises(LookupFailed, match="did you mean 'agent_recent'"):
            run.try_load("agent-recent", 1)
    assert (run.loaded, run.refused_tokens, run.scopes) == (0, 0, {})


def test_a_scope_of_the_policy_the_profile_does_not_weigh_is_known(tmp_path) -> None:
    policy = _policy(tmp_path, "scopes: [global, agent_recent, agent_patterns, team]",
                     "profiles: {role-architect: {weights: {global: 0.25, agent_recent: 0.15, agent_patterns: 0.5, "
                     "team: 0.1}}}", "enforcement: hard", "scope_enforcement: hard")
    with monitor(policy, "dbt-expert", tier="complex", log=False) as run:  # specialist-narrow: no team share
        assert run.try_load("team", 1) is False  # known, but its share is 0
        assert run.try_load("global", 6000) is True
    with monitor(policy, "data-architect", tier="simple", log=False) as run:
        assert run.try_load("team", 3750) is True  # 37,500 × 0.1
        assert run.try_load("team", 1) is False


def test_soft_scope_enforcement_lets_a_scope_pass_its_share(tmp_path) -> None:
    policy = _policy(tmp_path, "enforcement: hard")  # scope_enforcement: soft by default
    assert policy.scope_enforcement == "soft"
    with monitor(policy, "dbt-expert", tier="complex", log=False) as run:
        run.load("global", 20000)  # 14,000 past global's share: allowed, the budget is what binds
        assert run.try_load("agent_patterns", 10001) is False
    assert (run.loaded, run.refused_tokens, run.scopes) == (20000, 10001, {"global": 20000})


def test_hard_scope_enforcement_refuses_a_load_past_the_scope_share(tmp_path, caplog) -> None:
    policy = _policy(tmp_path, "enforcement: hard", "scope_enforcement: hard")
    log = tmp_path / "usage.jsonl"
    with caplog.at_level(logging.WARNING, logger="engine.monitor"):
        with monitor(policy, "dbt-expert", tier="complex", log=log) as run:
            run.load("global", 5000)
            assert run.try_load("global", 1001) is False  # 6,001 > 6,000
            run.load("global", 1000)  # exactly the share is allowed
            with pytest.raises(BudgetExceeded) as raised:
                run.load("agent_recent", 9001)
            run.load("agent_patterns", 15000)
    exc = raised.value
    assert (exc.scope, exc.tokens, exc.share, exc.scope_loaded) == ("agent_recent", 9001, 9000, 0)
    assert str(exc) == ("specialists/dbt-expert: loading 9,001 tokens of 'agent_recent' would exceed the scope's "
                        "share (0 of 9,000 loaded from 'agent_recent')")
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING][:2] == [
        "refused: specialists/dbt-expert: loading 1,001 tokens of 'global' would exceed the scope's share "
        "(5,000 of 6,000 loaded from 'global')",
        "refused: specialists/dbt-expert: loading 9,001 tokens of 'agent_recent' would exceed the scope's share "
        "(0 of 9,000 loaded from 'agent_recent')"]
    record = json.loads(log.read_text(encoding="utf-8"))
    assert (record["tokens_loaded"], record["refused_tokens"], record["exceeded"]) == (21000, 10002, True)
    assert record["scopes"] == {"global": 6000, "agent_patterns": 15000}


def test_the_budget_is_checked_before_the_share(tmp_path) -> None:
    policy = _policy(tmp_path, "enforcement: hard", "scope_enforcement: hard")
    with monitor(policy, "dbt-expert", tier="complex", log=False) as run:
        with pytest.raises(BudgetExceeded, match="would exceed the budget") as raised:
            run.load("global", 30001)
    assert raised.value.share is None


def test_scope_enforcement_has_no_effect_under_soft_enforcement(tmp_path) -> None:
    policy = _policy(tmp_path, "scope_enforcement: hard")
    with monitor(policy, "dbt-expert", tier="complex", log=False) as run:
        run.load("global", 40000)
    assert (run.loaded, run.refused_tokens, run.exceeded) == (40000, 0, True)


def test_the_run_can_override_both(tmp_path) -> None:
    policy = _policy(tmp_path)
    with monitor(policy, "dbt-expert", tier="complex", log=False, enforcement="hard",
                        scope_enforcement="hard") as run:
        assert run.try_load("global", 6001) is False
    with pytest.raises(ValueError, match="scope_enforcement is 'soft' or 'hard'"):
        monitor(policy, "dbt-expert", tier="complex", log=False, scope_enforcement="strict")


@pytest.mark.parametrize("value", ["strict", "Hard", 1, True])
def test_scope_enforcement_is_validated(tmp_path, value, run_cli) -> None:
    path = tmp_path / "ctxbudget.yaml"
    path.write_text(f"version: 1\nextends: default\nscope_enforcement: {json.dumps(value)}\n", encoding="utf-8")
    code, out, _ = run_cli("validate", str(path))
    assert code == 1 and f"{path}:3:20:" in out and "[schema-enum]" in out


def test_log_rejects_an_unknown_scope_and_writes_nothing(tmp_path, run_cli) -> None:
    log = tmp_path / "usage.jsonl"
    code, out, err = run_cli("log", "--agent", "dbt-expert", "--tier", "medium", "--tokens", "global=1000",
                             "--tokens", "nosuch=3000", "--log", str(log))
    assert (code, out) == (1, "")
    assert err == ("ctxbudget: error: unknown scope 'nosuch' (scopes: global, agent_recent, agent_patterns)\n")
    assert not log.exists()
    code, _, err = run_cli("log", "--agent", "dbt-expert", "--tier", "medium", "--tokens", "agent_pattern=1",
                           "--log", str(log))
    assert code == 1 and "did you mean 'agent_patterns'?" in err and not log.exists()


def test_log_under_hard_scope_enforcement_records_the_refusal(tmp_path, run_cli) -> None:
    path = tmp_path / "ctxbudget.yaml"
    path.write_text("version: 1\nextends: default\nenforcement: hard\nscope_enforcement: hard\n", encoding="utf-8")
    log = tmp_path / "usage.jsonl"
    code, out, _ = run_cli("log", "--policy", str(path), "--agent", "dbt-expert", "--tier", "medium",
                           "--tokens", "global=5000", "--tokens", "agent_patterns=9000", "--log", str(log), "--json")
    record = json.loads(out)
    assert code == 0
    # medium: 20,000 = global 4,000 + agent_recent 6,000 + agent_patterns 10,000
    assert (record["tokens_loaded"], record["refused_tokens"]) == (9000, 5000)
    assert record["scopes"] == {"agent_patterns": 9000}
