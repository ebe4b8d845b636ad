"""The ``ctxbudget`` command line.

Each command is one module in :mod:`engine.cli.commands` with ``HELP`` (one line), ``ORDER`` (its place in
``--help``), ``configure(parser)`` and ``run(args) -> int``. Command modules import only argparse-level
things at the top; what a command needs to do its work is imported inside ``run``, so ``ctxbudget budget``
never pays for jsonschema, and ``--help`` pays for nothing.

Exit codes: 0 ok, 1 findings (invalid policy, failed policy test, unknown name, below a gate), 2 usage or
I/O error. No traceback reaches a user for bad input.
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
    parser = argparse.ArgumentParser(
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
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.run(args) or 0)
    except PolicyError as exc:
        for problem in exc.problems:
            print(problem.format(), file=sys.stderr)
        return 1
    except LookupFailed as exc:
        print(f"ctxbudget: error: {exc}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"ctxbudget: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `ctxbudget agents | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130
