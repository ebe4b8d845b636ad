"""With --json (or --format json) every outcome is JSON on stdout: errors too, in one shape."""

from __future__ import annotations

import argparse
import io
import json
import sys

import pytest

from conftest import DATA

KEYS = ["code", "message", "exit_code", "problems", "kind", "name", "suggestions"]


def _error(out: str) -> dict:
    lines = out.splitlines()
    assert len(lines) == 1, out  # one line: a JSON document, and a JSONL stream stays one
    error = json.loads(lines[0])["error"]
    assert list(error) == KEYS
    return error


def test_an_invalid_policy(run_cli) -> None:
    bad = str(DATA / "bad" / "wrong-type.yaml")
    code, out, err = run_cli("budget", "dbt-expert", "--policy", bad, "--json")
    error = _error(out)
    assert code == 1 == error["exit_code"] and error["code"] == "policy"
    assert [(p["path"], p["line"], p["col"], p["rule"]) for p in error["problems"]] == [(bad, 5, 11, "schema-type")]
    assert error["message"] == err.strip()  # the same text as on stderr
    assert (error["kind"], error["name"], error["suggestions"]) == (None, None, [])


def test_an_invalid_policy_with_several_problems(run_cli, tmp_path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\nextends: default\nagents:\n  a: nosuch\n  b: nosuch-either\n", encoding="utf-8")
    code, out, _ = run_cli("test", str(path), "--json")
    error = _error(out)
    assert code == 1 and len(error["problems"]) == 2
    assert error["message"].endswith("[unknown-profile] (and 1 more)")


@pytest.mark.parametrize(("args", "kind", "name", "suggestions"), [
    (["budget", "dbt-expret", "--json"], "agent", "dbt-expret", ["specialists/dbt-expert"]),
    (["evaluate", "x", "--agent", "dbt-expert", "--tier", "hugee", "--json"], "tier", "hugee", []),
    (["log", "--agent", "dbt-expert", "--tier", "medium", "--tokens", "glboal=1", "--log", "{log}", "--json"],
     "scope", "glboal", ["global"]),
])
def test_a_name_that_does_not_resolve(run_cli, tmp_path, args, kind, name, suggestions) -> None:
    args = [a.replace("{log}", str(tmp_path / "u.jsonl")) for a in args]
    code, out, err = run_cli(*args)
    error = _error(out)
    assert code == 1 == error["exit_code"]
    assert (error["code"], error["kind"], error["name"], error["suggestions"]) == ("lookup", kind, name, suggestions)
    assert err == f"ctxbudget: error: {error['message']}\n"


@pytest.mark.parametrize(("args", "message"), [
    (["evaluate", "x", "--agent", "dbt-expert", "--context", "[1]", "--json"], "--context: must be a JSON object"),
    (["detect", "x", "--policy", "/nonexistent/p.yaml", "--json"], "cannot read"),
    (["analyze", "--log", "/nonexistent/u.jsonl", "--json"], "/nonexistent/u.jsonl"),
    (["report", "--period", "week", "--log", "/nonexistent/u.jsonl", "--format", "json"], "/nonexistent/u.jsonl"),
])
def test_a_usage_or_io_error(run_cli, args, message) -> None:
    code, out, err = run_cli(*args)
    error = _error(out)
    assert code == 2 == error["exit_code"] and error["code"] == "usage"
    assert message in error["message"] and error["message"] in err


def test_a_usage_error_reading_stdin(run_cli, monkeypatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    code, out, _ = run_cli("detect", "-", "--json")
    assert code == 2 and _error(out)["message"] == "TASK '-': stdin holds no task (it is empty)"


@pytest.mark.parametrize(("args", "message"), [
    (["evaluate", "--json"], "ctxbudget evaluate: error: the following arguments are required: TASK, --agent/-a"),
    (["budget", "dbt-expert", "--json", "--bogus"], "ctxbudget: error: unrecognized arguments: --bogus"),
    (["validate", "--format", "json", "--all", "--format", "yaml"], "argument --format: invalid choice: 'yaml'"),
    (["validate", "--format=json", "--nope"], "unrecognized arguments: --nope"),
    (["log", "--agent", "a", "--tier", "t", "--tokens", "global", "--js"], "expected SCOPE=N"),
    (["nosuch-command", "--json"], "invalid choice: 'nosuch-command'"),
])
def test_an_argparse_usage_error(run_cli, args, message) -> None:
    code, out, err = run_cli(*args)
    error = _error(out)
    assert code == 2 == error["exit_code"] and error["code"] == "usage"
    assert message in error["message"]
    assert err.startswith("usage: ctxbudget") and error["message"] in err  # stderr as argparse prints it


@pytest.mark.parametrize("args", [
    ["evaluate"], ["budget", "dbt-expret"], ["budget", "dbt-expert", "--policy", str(DATA / "bad" / "wrong-type.yaml")],
    ["evaluate", "x", "--agent", "dbt-expert", "--context", "[1]"], ["budget", "--", "--json"],
])
def test_without_json_errors_stay_off_stdout(run_cli, args) -> None:
    code, out, err = run_cli(*args)
    assert code in (1, 2) and out == "" and err


def _commands_with_json() -> list[str]:
    from engine.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(name for name, command in sub.choices.items()
                  if any("--json" in a.option_strings for a in command._actions))


def test_every_command_with_json_reports_its_usage_errors_as_json(run_cli) -> None:
    names = _commands_with_json()
    assert {"budget", "evaluate", "detect", "test", "log", "analyze"} <= set(names)
    for name in names:
        code, out, _ = run_cli(name, "--json", "--no-such-option")
        error = _error(out)
        assert (code, error["code"]) == (2, "usage"), name
        assert "--no-such-option" in error["message"] or "required" in error["message"], name


def test_the_documented_shape_is_the_one_printed(run_cli) -> None:
    import re

    import engine.cli

    documented = engine.cli.__doc__ or ""
    assert all(f'"{key}"' in documented for key in KEYS)
    readme = (DATA.parents[1] / "README.md").read_text(encoding="utf-8")
    shown = next(json.loads(b) for b in re.findall(r"```json\n(.*?)```", readme, re.S) if '"error"' in b)
    code, out, _ = run_cli("budget", shown["error"]["name"], "--json")
    assert code == shown["error"]["exit_code"] and json.loads(out) == shown
