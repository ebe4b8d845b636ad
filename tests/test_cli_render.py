"""One output option and one renderer (issue 9 point 4): --format (alias --json) is added in one place,
every format a command offers is rendered, and --json means exactly --format json."""

from __future__ import annotations

import argparse
import importlib
import json
import pytest

from conftest import DATA, ROOT

from engine.cli import build_parser

COMMANDS = ROOT / "engine" / "cli" / "commands"


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _option(command: argparse.ArgumentParser, flag: str) -> argparse.Action | None:
    return next((a for a in command._actions if flag in a.option_strings), None)


def test_every_command_that_prints_results_has_the_one_format_option() -> None:
    without = set()
    for name, command in _subparsers().items():
        fmt, alias = _option(command, "--format"), _option(command, "--json")
        if fmt is None:
            assert alias is None, name
            without.add(name)
            continue
        assert "json" in fmt.choices and fmt.default in fmt.choices, name
        assert isinstance(alias, argparse._StoreConstAction), name
        assert (alias.dest, alias.const) == ("format", "json"), name
        module = importlib.import_module(f"engine.cli.commands.{name.replace('-', '_')}")
        if getattr(module, "PRINTS_AS_IT_GOES", False):
            assert name in ("apply", "tune"), name  # they ask before writing; every other command renders
            continue
        for choice in fmt.choices:
            assert choice == "json" or callable(getattr(module, f"render_{choice}", None)), (name, choice)
    # hook answers Claude Code in its own JSON; init prints the settings diff it writes
    assert without == {"hook", "init"}


def test_the_option_is_spelled_in_one_place() -> None:
    """No command module adds --format or --json itself (engine.cli.options.add_format does), and none reads
    args.json (the format is args.format)."""
    for path in sorted(COMMANDS.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert '"--format"' not in text and '"--json"' not in text, path.name
        assert "args.json" not in text, path.name


@pytest.mark.parametrize("args", [
    ["budget", "dbt-expert", "complex"],
    ["evaluate", "Analyze slow queries", "--agent", "dbt-expert"],
    ["detect", "Design end-to-end architecture"],
    ["agents", "--profile", "role-architect"],
    ["profiles"],
    ["signals", "--group", "system"],
    ["test"],
    ["validate", str(DATA / "bad" / "unknown-profile.yaml"), "default"],
    ["expr", "1 + 2"],
    ["expr", "1 / 0"],
    ["budget", "dbt-expret"],  # an error: the one JSON error shape either way
])
def test_json_is_an_alias_of_format_json(run_cli, args: list[str]) -> None:
    by_alias = run_cli(*args, "--json")
    by_name = run_cli(*args, "--format", "json")
    assert by_alias == by_name
    json.loads(by_alias[1])  # one JSON document


def test_text_is_the_default(run_cli) -> None:
    assert run_cli("budget", "dbt-expert", "complex") == run_cli("budget", "dbt-expert", "complex", "--format", "text")


def test_a_format_the_command_does_not_offer_is_a_usage_error(run_cli) -> None:
    code, out, err = run_cli("budget", "dbt-expert", "--format", "html")
    assert code == 2 and out == "" and "invalid choice: 'html'" in err


def test_the_json_comes_from_the_records(run_cli) -> None:
    """The JSON form is generated from the result's records (engine.records.to_json), not per command."""
    from engine import load_policy
    from engine.records import to_json

    allocation = load_policy("default").allocate("dbt-expert", "complex")
    assert json.loads(run_cli("budget", "dbt-expert", "complex", "--json")[1]) == to_json(allocation)


def test_a_missing_renderer_is_a_programming_error() -> None:
    from engine.cli.render import Result, render

    from engine.cli.commands import budget

    args = argparse.Namespace(format="html", run=budget.run)
    with pytest.raises(LookupError, match="render_html"):
        render(Result(None), args)


def test_help_shows_the_option_and_its_alias(run_cli) -> None:
    code, out, _ = run_cli("budget", "--help")
    assert code == 0 and "--format {text,json}" in out and "same as --format json" in out
    _, out, _ = run_cli("validate", "--help")
    out = " ".join(out.split())  # argparse wraps the help to the terminal
    assert "--format {text,json,github}" in out and "github (workflow annotations)" in out
