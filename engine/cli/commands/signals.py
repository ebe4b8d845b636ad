"""ctxbudget signals"""

from __future__ import annotations

from typing import Any

from engine.cli.options import add_format, add_policy, policy_from

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "list the policy's complexity signals"
DESCRIPTION = """\
List the signals of the policy's `detection:` section in evaluation order: what makes each fire (words,
an RE2 pattern, or a `when` condition), the weights it adds per tier, its boost and its group.

  ctxbudget signals
  ctxbudget signals --group system --json"""
ORDER = 32


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--group", help="only the signals of this group")
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> Result:
    from engine.cli.render import Result
    from engine.diagnostics import LookupFailed

    policy = policy_from(args)
    signals = policy.signals
    if args.group is not None:
        groups = sorted({s.group for s in signals if s.group})
        if args.group not in groups:
            raise LookupFailed("group", args.group, groups)
        signals = tuple(s for s in signals if s.group == args.group)
    return Result(list(signals))


def render_text(result: Result, args: argparse.Namespace) -> None:
    from engine.cli.output import table

    rows = [(s.id, s.kind, _what(s), ", ".join(f"{t} {w:+g}" for t, w in s.weights.items()),
             f"{s.boost:+d}" if s.boost else "", s.group or "") for s in result.data]
    table(["signal", "kind", "fires on", "weights", "boost", "group"], rows)


def _what(signal: Any, width: int = 60) -> str:
    """What makes a signal fire, shortened to ``width`` characters."""
    if signal.kind == "words":
        text = ", ".join(signal.words)
    elif signal.kind == "pattern":
        text = " | ".join(signal.patterns)
    else:
        text = signal.when or ""
    return text if len(text) <= width else text[: width - 1] + "…"
