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


# -- names from many hands are shown, not acted on -------------------------------------------------------------

NAMES = [tuple(None if cell == "-" else json.loads(cell) for cell in line.split("\t"))
         for line in (DATA / "names-hostile.txt").read_text(encoding="utf-8").splitlines()
         if line and not line.startswith("#")]


@pytest.mark.parametrize("text, shown", [(name, shown) for name, shown, _ in NAMES if shown is not None])
def test_printable_shows_what_a_terminal_would_act_on_as_escapes(text: str, shown: str) -> None:
    from engine.cli.output import printable

    assert printable(text) == shown
    assert printable("line one\n" + text, newlines=True) == "line one\n" + shown


def test_tables_show_markup_and_control_characters_in_cells_as_text(capsys, monkeypatch) -> None:
    """A rich table (a terminal) reads no markup in a cell: `[/oops]` once crashed it (MarkupError) and
    `[link=…]` wrote a link; the plain table escapes control characters too."""
    from engine.cli import output

    rows = [["[/oops]", 1], ["[bold red]x[/bold red]", 2], ["evil\x1b[2J", 3]]
    output.table(["agent", "runs"], rows, right=[1])
    plain = capsys.readouterr().out
    assert "[/oops]" in plain and "evil\\x1b[2J" in plain and "\x1b" not in plain
    monkeypatch.setattr(output, "fancy", lambda: True)
    monkeypatch.setenv("COLUMNS", "120")
    output.table(["agent", "runs"], rows, right=[1])
    fancy = capsys.readouterr().out
    assert "[/oops]" in fancy and "[bold red]x[/bold red]" in fancy and "evil\\x1b[2J" in fancy


def test_analyze_shows_names_from_the_log_as_text(run_cli, tmp_path) -> None:
    record = {"timestamp": "2025-10-01T10:00:00Z", "profile": "p\x1b[31m", "tier": "complex", "budget": 30000,
              "tokens_loaded": 15000, "scopes": {"glo\x1bbal": 15000}}
    log = tmp_path / "u.jsonl"
    log.write_text("".join(json.dumps(dict(record, agent=agent)) + "\n"
                           for agent in ("evil\x1b]0;pwned\x07", "specialists/dbt-expert")))
    code, out, err = run_cli("analyze", "--log", str(log))
    assert code == 0 and "\x1b" not in out and "evil\\x1b]0;pwned\\x07" in out and "glo\\x1bbal" in out


@pytest.mark.parametrize("name, shown", [(name, shown) for name, _, shown in NAMES if shown is not None])
def test_markdown_text_shows_a_name_as_it_is(name: str, shown: str) -> None:
    from engine.text import markdown_text

    assert markdown_text(name) == shown


def test_the_markdown_report_shows_names_from_the_log_as_text(run_cli, tmp_path) -> None:
    """Agent names come from a usage log: in the Markdown report they stay text (no HTML, link or table cell
    made of them), wherever the report is rendered."""
    log = tmp_path / "u.jsonl"
    lines = []
    for i in range(12):
        for agent in ("<b>html</b>", "[x](javascript:alert(1))", "pipe|agent"):
            lines.append(json.dumps({"timestamp": f"2025-10-{1 + i:02d}T10:00:00Z", "agent": agent, "profile": "p",
                                     "tier": "complex", "budget": 30000, "tokens_loaded": 29000 + 200 * i,
                                     "exceeded": i % 2 == 0, "scopes": {"global": 10000}}))
    log.write_text("\n".join(lines) + "\n")
    code, out, _ = run_cli("report", "--period", "month", "--log", str(log), "--until", "2025-11-01")
    assert code == 0
    assert "<b>" not in out and "](javascript" not in out.replace("\\]", "") and "pipe|agent" not in out
    assert "| \\<b\\>html\\</b\\> |" in out and "- **pipe\\|agent**:" in out


def test_problems_and_errors_quote_values_as_text(run_cli, tmp_path) -> None:
    """A problem's line starts with the policy's path, and an error quotes what it could not read: a file name
    can hold an ESC, which is shown as an escape (values the messages quote with repr() already are)."""
    policy = tmp_path / "p\x1b[2J.yaml"
    policy.write_text('extends: default\nagents:\n  "x\\e[2Jevil": specialist-narrow\n')
    code, out, err = run_cli("validate", str(policy))
    assert code == 1 and "\x1b" not in out + err
    assert "p\\x1b[2J.yaml:3:3: error: $.agents['x\\x1b[2Jevil']" in out + err
    code, out, err = run_cli("validate", str(tmp_path / "gone\x1b[2J.yaml"))
    assert code == 2 and "\x1b" not in err and "gone\\x1b[2J.yaml: cannot read" in err
