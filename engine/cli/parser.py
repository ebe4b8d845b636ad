"""The argument parser of the ``ctxbudget`` command line (see :mod:`engine.cli`); imported only by commands that
parse arguments, so ``ctxbudget --version`` pays for neither argparse nor the command modules."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

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

    def _print_message(self, message: str, file=None) -> None:  # noqa: ANN001 - argparse's signature
        # argparse drops a write that fails; `--help > /dev/full` must not exit 0 with the help lost
        if message and file is sys.stdout:
            try:
                file.write(message)
            except OSError as exc:
                from engine.cli.output import not_written

                raise SystemExit(not_written(exc)) from None
            return
        super()._print_message(message, file)


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
