"""The quick reading of simple command lines (engine/cli/quick.py) means what argparse means, or declines.

The property: for any command line, ``quick.parse(argv)`` is None, or argparse accepts ``argv`` and gives an
equal Namespace. Checked on a table of the command lines people and hooks type, on a table of the forms it
must leave to argparse, and on command lines generated from every command's own options.
"""

from __future__ import annotations

import contextlib
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.cli import quick
from engine.cli.parser import build_parser, command_names


def _module(name: str):
    import importlib

    return importlib.import_module(f"engine.cli.commands.{name.replace('-', '_')}")


def _argparse(argv: list[str]):
    """argparse's Namespace for ``argv``, or None when it refuses it (its usage error is swallowed)."""
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        try:
            return build_parser(argv[0] if argv and argv[0] in command_names() else None).parse_args(argv)
        except SystemExit:
            return None


def _same(argv: list[str]) -> object:
    fast = quick.parse(argv)
    if fast is not None:
        slow = _argparse(argv)
        assert slow is not None, f"quick accepted what argparse refuses: {argv}"
        assert vars(fast) == vars(slow), argv
    return fast


@pytest.mark.parametrize("argv", [
    ["budget", "dbt-expert", "complex", "--json"],
    ["budget", "dbt-expert"],
    ["budget", "--json", "dbt-expert", "complex"],
    ["budget", "dbt-expert", "complex", "--format", "json"],
    ["budget", "dbt-expert", "--format=text", "--policy", "p.yaml"],
    ["budget", "dbt-expert", "--json", "--format", "text"],  # the last one wins, as in argparse
    ["evaluate", "Analyze slow queries", "--agent", "dbt-expert", "--json"],
    ["evaluate", "--agent", "dbt-expert", "Analyze slow queries"],
    ["evaluate", "-", "-a", "dbt-expert", "--explain", "--tier", "complex", "--context", '{"agent_count": 2}'],
    ["evaluate", "", "--agent", "x"],
    ["evaluate", "--agent=dbt-expert", "--context={}", "task"],
    ["detect", "Design end-to-end architecture", "--json"],
    ["detect", "--batch", "tasks.jsonl"],
    ["detect", "-i", "--explain"],
    ["hook"],
    ["hook", "--policy", "default"],
    ["agents", "--profile", "role-architect"],
    ["profiles", "--json"],
    ["pack", "--agent", "dbt-expert", "--tier", "simple", "--format", "paths", "--budget", "1,500"],
    ["report", "--period", "week", "--format", "html"],
    ["expr", "1 + 2", "--vars", "{}"],
    ["init", "claude-code", "--user", "--dry-run"],
    ["validate"], ["validate", "a.yaml", "b.yaml", "--format", "github"], ["validate", "--all", "-"],
])
def test_the_common_command_lines_are_read_quickly_and_alike(argv: list[str]) -> None:
    assert _same(argv) is not None, f"declined: {argv}"


@pytest.mark.parametrize("argv", [
    [], ["--version"], ["--help"], ["budget", "--help"], ["budget", "-h"],
    ["budget", "dbt-expert", "--js"],                      # an abbreviation: argparse's to expand
    ["budget", "dbt-expert", "complex", "extra"],          # too many
    ["budget", "dbt-expert", "--json", "complex"],         # positionals split by an option
    ["budget"], ["evaluate", "task"], ["evaluate", "task", "--agent"],  # missing
    ["budget", "x", "--format", "yaml"], ["budget", "x", "--format="], ["budget", "x", "--json=1"],
    ["budget", "--", "x"], ["budget", "-5"], ["evaluate", "t", "-adbt-expert"], ["evaluate", "t", "-a=x"],
    ["evaluate", "t", "--agent", "-x y"],                   # a value that looks like an option
    ["detect", "--batch", "f", "-i"],                      # one exclusive group, twice
    ["pack", "--agent", "a", "--budget", "-1"], ["pack", "--agent", "a", "--budget", "lots"],
    ["nosuch"], ["../quick"], ["__init__"], ["Budget", "x"],
    ["log", "--agent", "a", "--tier", "t", "--tokens", "global=1"],  # append: argparse's
    ["validate", "a.yaml", "--all", "b.yaml"],              # nargs="*" split by an option
])
def test_everything_else_is_left_to_argparse(argv: list[str]) -> None:
    assert quick.parse(argv) is None


def _words() -> st.SearchStrategy[list[str]]:
    names = sorted(n for n in command_names() if quick.spec_of(_module(n)) is not None)
    values = ["dbt-expert", "complex", "simple", "json", "text", "md", "paths", "-", "", "x y", "-5", "--", "-h",
              "--js", "3", "week", "claude-code", "a.yaml", "{}", "-x"]

    @st.composite
    def draw(d) -> list[str]:
        name = d(st.sampled_from(names))
        spec = quick.spec_of(_module(name))
        options = sorted(spec.options)
        pieces = st.one_of(st.sampled_from(options), st.sampled_from(values),
                           st.builds(lambda o, v: f"{o}={v}", st.sampled_from(options), st.sampled_from(values)))
        return [name, *d(st.lists(pieces, max_size=6))]

    return draw()


def _plausible() -> st.SearchStrategy[list[str]]:
    """Command lines shaped like real ones (an option's value after it, choices among the values), so that
    most are accepted and compared, not declined."""
    names = sorted(n for n in command_names() if quick.spec_of(_module(n)) is not None)
    values = ["dbt-expert", "complex", "-", "", "x y", "json", "a.yaml", "{}", "7", "1,500"]

    @st.composite
    def draw(d) -> list[str]:
        name = d(st.sampled_from(names))
        spec = quick.spec_of(_module(name))
        words = [d(st.sampled_from(values)) for _ in range(d(st.integers(0, len(spec.positionals) + 1)))]
        at = d(st.integers(0, 2))  # the positionals first, last, or split by the options
        options = []
        for option in d(st.lists(st.sampled_from(sorted(spec.options)), max_size=4)):
            action = spec.options[option]
            if action.kind != "store":
                options.append([option])
                continue
            value = d(st.sampled_from(list(action.choices or []) + values))
            options.append([f"{option}={value}"] if d(st.booleans()) else [option, value])
        flat = [w for o in options for w in o]
        if at == 0:
            return [name, *words, *flat]
        if at == 1:
            return [name, *flat, *words]
        return [name, *words[:1], *flat, *words[1:]]

    return draw()


@settings(max_examples=400, deadline=None)
@given(_plausible())
def test_plausible_command_lines_mean_the_same_or_are_declined(argv: list[str]) -> None:
    _same(argv)


@settings(max_examples=400, deadline=None)
@given(_words())
def test_generated_command_lines_mean_the_same_or_are_declined(argv: list[str]) -> None:
    _same(argv)


def test_a_command_using_an_unrecorded_feature_is_parsed_by_argparse() -> None:
    assert quick.spec_of(_module("log")) is None  # action="append"
    assert quick.spec_of(_module("tune")) is None  # action="append"
    assert quick.spec_of(_module("budget")) is not None


def test_the_hot_commands_are_read_quickly() -> None:
    for name in ("budget", "evaluate", "detect", "hook", "validate"):
        assert quick.spec_of(_module(name)) is not None, name
