"""Semantic checks of signals beyond the bad inputs in tests/data/bad/: budgets, warnings, the default policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.policy import check_policy


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "ctxbudget.yaml"
    path.write_text("extends: default\ndetection:\n  signals:\n" + body, encoding="utf-8")
    return path


def test_the_default_policy_has_no_signal_problems() -> None:
    problems, policy = check_policy("default")
    assert problems == [] and policy is not None


def test_a_set_too_large_for_its_memory_budget_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same rule that refuses 50 patterns of 36,000 instructions under 64 MiB, under a budget of 1 MiB."""
    monkeypatch.setattr("engine.detect.matcher.SET_MAX_MEM", 1 << 20)
    body = "".join(f"    - {{id: s{i}, pattern: 'x{i}\\pL{{8}}', weights: {{complex: 1}}}}\n" for i in range(40))
    problems, policy = check_policy(_write(tmp_path, body))
    assert policy is None
    assert [(p.rule, p.line, p.col) for p in problems] == [("pattern-set-too-large", 3, 3)]  # at `signals:`


def test_a_signal_named_by_a_condition_has_an_effect(tmp_path: Path) -> None:
    body = ("    - {id: bare, words: [bare]}\n"
            "    - {id: uses-it, when: \"'bare' in hits\", weights: {complex: 1}}\n")
    problems, policy = check_policy(_write(tmp_path, body))
    assert policy is not None and problems == []


def test_warnings_do_not_stop_a_policy(tmp_path: Path) -> None:
    problems, policy = check_policy(_write(tmp_path, "    - {id: bare, words: [bare]}\n"))
    assert policy is not None
    assert [(p.rule, p.severity, p.line) for p in problems] == [("signal-no-effect", "warning", 4)]


@pytest.mark.parametrize(("signal", "message"), [
    ("{id: q, pattern: '(a', weights: {simple: 1}}", "bad RE2 pattern '(a': missing ) ('(a' at column 1"),
    ("{id: q, pattern: 'a\\1', weights: {simple: 1}}", "RE2 has no lookaround or backreferences"),
    ("{id: q, when: 'words >', weights: {simple: 1}}", "signal 'q', condition column 8: unexpected end of expression"),
    ("{id: q, words: [a], pattern: b, when: c}", "found 'words' and 'pattern' and 'when'"),
    ("{id: q, weights: {simple: 1}}", "(found none)"),
])
def test_messages(tmp_path: Path, signal: str, message: str) -> None:
    problems, _ = check_policy(_write(tmp_path, f"    - {signal}\n"))
    assert any(message in p.message for p in problems), [p.format() for p in problems]
