"""ctxbudget init claude-code [--project | --user] [--dry-run]"""

from __future__ import annotations

import argparse

HELP = "set up an integration: merge ctxbudget's hooks into Claude Code's settings"
DESCRIPTION = """\
Merge ctxbudget's hook entries into Claude Code's settings: the project's .claude/settings.json (--project,
the default) or yours (~/.claude/settings.json, --user). Every existing setting and hook is kept; running it
again changes nothing. Prints the diff; --dry-run prints it and writes nothing.

  ctxbudget init claude-code
  ctxbudget init claude-code --user --dry-run"""
ORDER = 74


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", choices=["claude-code"], help="what to set up")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--project", action="store_true", help="the project's .claude/settings.json (default)")
    where.add_argument("--user", action="store_true", help="your ~/.claude/settings.json")
    parser.add_argument("--settings", metavar="PATH", help="this settings file instead")
    parser.add_argument("--command", default="ctxbudget hook",
                        help="the hook command Claude Code runs (default: %(default)r; use an absolute path when "
                             "ctxbudget is not on Claude Code's PATH)")
    parser.add_argument("--dry-run", action="store_true", help="show the diff, write nothing")


def run(args: argparse.Namespace) -> int:
    import sys

    from engine.cli.output import error
    from engine.claude_code.install import SettingsError, is_ours, merge_settings, settings_path, write_settings
    from engine.diagnostics import UsageError

    if not is_ours(args.command):
        raise UsageError(f"--command must run 'ctxbudget hook' (or 'python -m engine hook'), not {args.command!r}")
    path = args.settings or settings_path("user" if args.user else "project")
    try:
        merge = merge_settings(path, args.command)
    except SettingsError as exc:
        error(exc)
        return 1
    if not merge.changed:
        print(f"{path}: ctxbudget's hooks are already set up; nothing to change")
        return 0
    sys.stdout.write(merge.diff())
    if args.dry_run:
        print(f"(dry run: {path} not written)")
        return 0
    try:
        write_settings(merge)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    print(f"{path}: ctxbudget's hooks set up (see docs/claude-code.md)")
    return 0
