"""The ``ctxbudget`` command line.

Each command is one module in :mod:`engine.cli.commands` with ``HELP`` (one line), ``ORDER`` (its place in
``--help``), ``configure(parser)`` and ``run(args) -> int``. Command modules import only argparse-level
things at the top; what a command needs to do its work is imported inside ``run``, so ``ctxbudget budget``
never pays for jsonschema, and ``--help`` pays for nothing.

Exit codes: 0 ok, 1 findings (invalid policy, failed policy test, unknown name, below a gate), 2 usage or
I/O error. No traceback reaches a user for bad input.

Errors go to stderr as text. When the command was given ``--json`` (or ``--format json``), an error is also
printed on stdout as one line of JSON, so a pipeline can parse every outcome::

    {"error": {"code": "usage" | "policy" | "lookup", "message": str, "exit_code": 1 | 2,
               "problems": [Problem.to_dict(), ...], "kind": str | null, "name": str | null,
               "suggestions": [str, ...]}}

``problems`` is filled for an invalid policy; ``kind`` (agent, tier, scope, …), ``name`` and ``suggestions``
for a name that does not resolve.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

from engine import __version__


def command_names() -> list[str]:
    """The command names, from the modules' file names (``log_options`` → ``log-options``)."""
    folder = os.path.join(os.path.dirname(__file__), "commands")
    return [n[:-3].replace("_", "-") for n in os.listdir(folder) if n.endswith(".py") and not n.startswith("_")]


def _commands(only: str | None = None) -> list:
    names = [only] if only else command_names()
    modules = [importlib.import_module(f"engine.cli.commands.{name.replace('-', '_')}") for name in names]
    return sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__))


class _UsageExit(SystemExit):
    """An argparse usage error, already printed as argparse prints it; ``message`` is for ``--json``."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors main() can also render as JSON (still a SystemExit(2) for other
    callers, printed exactly as argparse prints it)."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        text = f"{self.prog}: error: {message}"
        sys.stderr.write(text + "\n")
        raise _UsageExit(text)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, told the terminal width up front: left to find it, argparse imports shutil (and
    with it bz2 and lzma, ~2.5 ms) on every start, because ``add_argument`` builds a formatter."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None):
        if width is None:
            try:
                width = int(os.environ["COLUMNS"])
            except (KeyError, ValueError):
                try:
                    width = os.get_terminal_size(sys.__stdout__.fileno()).columns
                except (OSError, AttributeError, ValueError):
                    width = 80
            width -= 2  # as argparse does
        super().__init__(prog, indent_increment, max_help_position, width)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only``, just that command's (start-up: argparse and the other command
    modules cost tens of milliseconds that a single command does not need)."""
    parser = _Parser(
        prog="ctxbudget",
        formatter_class=_Formatter,
        description="Token budgets for LLM agents' memory, driven by a YAML policy.",
        epilog="The policy is --policy PATH, else $CTXBUDGET_POLICY, else ./ctxbudget.yaml, else the bundled "
               "default. Exit codes: 0 ok, 1 findings, 2 usage or I/O error.",
    )
    parser.add_argument("--version", action="version", version=f"ctxbudget {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _commands(only):
        name = module.__name__.rsplit(".", 1)[-1].replace("_", "-")
        command = sub.add_parser(name, help=module.HELP, description=getattr(module, "DESCRIPTION", module.HELP),
                                 formatter_class=_Formatter)
        module.configure(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ctxbudget`` console script; returns the exit code."""
    from engine.diagnostics import LookupFailed, PolicyError, UsageError

    argv = list(sys.argv[1:] if argv is None else argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in command_names() else None)
    try:
        args = parser.parse_args(argv)
    except _UsageExit as exc:
        if not _asks_json(argv):
            raise
        _json_error("usage", exc.message, 2)
        return 2
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    as_json = bool(getattr(args, "json", False)) or getattr(args, "format", None) == "json"
    try:
        return int(args.run(args) or 0)
    except PolicyError as exc:
        for problem in exc.problems:
            print(problem.format(), file=sys.stderr)
        if as_json:
            more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
            message = (exc.problems[0].format() + more) if exc.problems else "invalid policy"
            _json_error("policy", message, 1, problems=[p.to_dict() for p in exc.problems])
        return 1
    except LookupFailed as exc:
        print(f"ctxbudget: error: {exc}", file=sys.stderr)
        if as_json:
            _json_error("lookup", str(exc), 1, kind=exc.kind, name=exc.name, suggestions=exc.suggestions)
        return 1
    except UsageError as exc:
        print(f"ctxbudget: error: {exc}", file=sys.stderr)
        if as_json:
            _json_error("usage", str(exc), 2)
        return 2
    except BrokenPipeError:  # `ctxbudget agents | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130


def _asks_json(argv: Sequence[str]) -> bool:
    """Whether the command line asks for JSON (read before parsing, for argparse's own errors)."""
    words = list(argv[:argv.index("--")] if "--" in argv else argv)
    for i, word in enumerate(words):
        if len(word) > 3 and "--json".startswith(word):  # argparse takes --js for --json
            return True
        if word == "--format=json" or (word == "--format" and words[i + 1:i + 2] == ["json"]):
            return True
    return False


def _json_error(code: str, message: str, exit_code: int, problems: Sequence[dict] = (), kind: str | None = None,
                name: str | None = None, suggestions: Sequence[str] = ()) -> None:
    """An error as one line of JSON on stdout (the shape is in this module's documentation)."""
    from engine.cli.output import json_line

    error = {"code": code, "message": message, "exit_code": exit_code, "problems": list(problems), "kind": kind,
             "name": name, "suggestions": list(suggestions)}
    try:
        sys.stdout.write(json_line({"error": error}) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):  # stdout closed: the text on stderr has said it
        pass
