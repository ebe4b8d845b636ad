"""`ctxbudget expr 'EXPR' [--vars JSON]`: the whole output of each case."""

from __future__ import annotations

import argparse
import json

import pytest

from engine.cli.commands import expr as command
from engine.cli.render import render
from engine.diagnostics import UsageError


@pytest.fixture
def run(capsys):
    """Run the command module as the CLI does (configure, parse, run); returns (code, stdout, stderr)."""

    def go(*argv: str):
        parser = argparse.ArgumentParser(prog="ctxbudget expr")
        command.configure(parser)
        parser.set_defaults(run=command.run)
        args = parser.parse_args(list(argv))
        code = render(command.run(args), args)  # the command's result, printed by the CLI's one renderer
        out, err = capsys.readouterr()
        return code, out, err

    return go


def test_prints_the_value_as_json(run):
    assert run("1 + 2 * 3") == (0, "7\n", "")
    assert run("7 / 2.0") == (0, "3.5\n", "")
    assert run("'ctx' + \"budget\"") == (0, '"ctxbudget"\n', "")
    assert run("[1, 'a', true, null, {'k': 1.5}]") == (0, '[1, "a", true, null, {"k": 1.5}]\n', "")


def test_vars(run):
    variables = json.dumps({"profile": {"base": 20000, "max": 50000}, "tier": {"multiplier": 1.5}})
    assert run("min(profile.base * tier.multiplier, profile.max)", "--vars", variables) == (0, "30000.0\n", "")
    assert run("hits.exists(h, h.startsWith('dbt'))", "--vars", '{"hits": ["dbt-run"]}') == (0, "true\n", "")


def test_json_output(run):
    code, out, err = run("size(x) >= 3", "--vars", '{"x": [1, 2, 3]}', "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"expression": "size(x) >= 3", "value": True}


def test_syntax_error_exits_1_with_a_caret(run):
    assert run("1 +* 2") == (1, "", "ctxbudget: error: unexpected '*' (column 4)\n1 +* 2\n   ^\n")


def test_unknown_name_suggests_vars(run):
    code, out, err = run("stats.samples > 10")
    assert (code, out) == (1, "")
    assert err == ("ctxbudget: error: unknown name 'stats' (known names: none) (column 1)\n"
                   "stats.samples > 10\n^\n"
                   "(give it a value with --vars '{\"stats\": ...}')\n")


def test_evaluation_error_exits_1(run):
    code, out, err = run("m.a / m.b", "--vars", '{"m": {"a": 1, "b": 0}}')
    assert (code, out) == (1, "")
    assert err == "ctxbudget: error: evaluation failed: division by zero (column 5)\n"
    code, out, err = run("m.a / m.b", "--vars", '{"m": {"a": 1, "b": 0}}', "--json")
    assert (code, err) == (1, "")
    assert json.loads(out) == {"expression": "m.a / m.b", "error": {
        "kind": "evaluation", "message": "division by zero", "line": 1, "column": 5}}


@pytest.mark.parametrize("vars_text, message", [
    ("{oops", "--vars is not valid JSON"),
    ("[1, 2]", "--vars must be a JSON object"),
])
def test_bad_vars_are_usage_errors(run, vars_text, message):
    with pytest.raises(UsageError, match=message):
        run("1", "--vars", vars_text)


def test_wired_into_the_cli(capsys, monkeypatch):
    import engine.cli

    if not hasattr(engine.cli, "build_parser"):
        pytest.skip("the CLI framework (engine.cli.build_parser) is not on this branch yet")
    monkeypatch.setenv("NO_COLOR", "1")
    assert engine.cli.main(["expr", "2 * 21"]) == 0
    assert capsys.readouterr().out == "42\n"
    assert engine.cli.main(["expr", "1", "--vars", "[]"]) == 2


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("expression, value", [
    ("1.0/0.0", "+Inf"), ("0.0 - 1.0/0.0", "-Inf"), ("0.0/0.0", "NaN"), ("[1.0/0.0, {'a': 0.0/0.0}]", ["+Inf", {"a": "NaN"}]),
])
def test_json_output_is_strict_json_without_nan_or_infinity(run, expression, value):
    """issue 8 §5: `expr '1.0/0.0' --json` printed Infinity, which strict JSON parsers reject."""
    code, out, err = run(expression, "--json")
    assert code == 0 and err == ""
    assert _strict(out) == {"expression": expression, "value": value}
    code, out, _ = run(expression)
    assert _strict(out) == value


def test_a_costly_expression_is_an_evaluation_error(run):
    code, out, _ = run("l.all(a, l.all(b, l.all(c, !t.contains('zz'))))", "--json",
                       "--vars", json.dumps({"l": list(range(45)), "t": "ab" * 500_000}))
    assert code == 1
    error = _strict(out)["error"]
    assert error["kind"] == "evaluation" and "costs too much" in error["message"]
