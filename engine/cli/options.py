"""Options several commands share, and loading the policy they name."""

from __future__ import annotations

import argparse


def add_policy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", metavar="PATH",
                        help="policy file (default: $CTXBUDGET_POLICY, else ./ctxbudget.yaml, else the bundled "
                             "default); 'default' names the bundled one")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for machines")


def add_write_mode(parser: argparse.ArgumentParser) -> None:
    """--dry-run | --yes, for commands that edit a file (see :func:`engine.cli.output.confirm_and_write`)."""
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="show the diff, write nothing")
    mode.add_argument("--yes", "-y", action="store_true", help="write without asking")


def policy_from(args: argparse.Namespace):
    """The compiled policy ``args.policy`` names (raises PolicyError / UsageError for the CLI to report)."""
    from engine.policy import load_policy

    return load_policy(getattr(args, "policy", None))


def add_context(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--context", metavar="JSON",
                        help="what the caller knows about the task, as a JSON object, seen by the policy's `when` "
                             "conditions (for example '{\"agent_count\": 3, \"previous_tier\": \"complex\"}')")


def context_from(args: argparse.Namespace) -> dict | None:
    """The ``--context`` object, or None; UsageError when it is not a JSON object (or not one within the bounds
    of :func:`engine.jsonio.loads`: nesting, size, number range)."""
    from engine.diagnostics import UsageError
    from engine.jsonio import JSONInputError, loads

    raw = getattr(args, "context", None)
    if raw is None:
        return None
    try:
        value = loads(raw)
    except JSONInputError as exc:
        where = f" at column {exc.colno}" if exc.lineno == 1 else f" at line {exc.lineno} column {exc.colno}" \
            if exc.lineno else ""
        raise UsageError(f"--context: not valid JSON ({exc.msg}{where})") from None
    if not isinstance(value, dict):
        raise UsageError("--context: must be a JSON object, such as '{\"agent_count\": 2}'")
    return value
