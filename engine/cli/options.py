"""Options several commands share, and loading the policy they name.

The output option is added here and nowhere else: :func:`add_format` gives a command ``--format`` (``text``
and ``json``, plus the command's own renderings) with ``--json`` as its alias; every command then reads
``args.format``, and :mod:`engine.cli.render` turns the command's result into that format.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: the hot commands import this module before their parser exists
if TYPE_CHECKING:  # pragma: no cover
    import argparse
    from typing import Sequence


def add_policy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", metavar="PATH",
                        help="policy file (default: $CTXBUDGET_POLICY, else ./ctxbudget.yaml, else the bundled "
                             "default); 'default' names the bundled one")


def add_format(parser: argparse.ArgumentParser, default: str = "text", **more: str) -> None:
    """``--format`` and its alias ``--json``: ``default`` (``text`` unless the command's main rendering has
    another name, such as ``md``), ``json``, and the command's own renderings (``name="what it is"``). The
    command module renders each name but ``json`` with a ``render_NAME(result, args)`` function (see
    :mod:`engine.cli.render`)."""
    formats = {default: "", "json": "for machines", **more}
    described = ", ".join(f"{name} ({what})" if what else name for name, what in formats.items() if name != default)
    parser.add_argument("--format", choices=tuple(formats), default=default,
                        help=f"output: {default} (default), {described}")
    parser.add_argument("--json", action="store_const", const="json", dest="format", help="same as --format json")


def asks_json(argv: Sequence[str]) -> bool:
    """Whether a command line asks for JSON, read before it is parsed (for the parser's own errors)."""
    words = list(argv[:argv.index("--")] if "--" in argv else argv)
    for i, word in enumerate(words):
        if len(word) > 3 and "--json".startswith(word):  # argparse takes --js for --json
            return True
        if word == "--format=json" or (word == "--format" and words[i + 1:i + 2] == ["json"]):
            return True
    return False


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
