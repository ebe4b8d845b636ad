"""ctxbudget log --agent A (--tier T | --task TEXT) --tokens SCOPE=N ..."""

from __future__ import annotations

import argparse

from engine.cli.log_options import add_log
from engine.cli.options import add_format, add_policy

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from engine.cli.render import Result

HELP = "record one agent run in the usage log (for shell scripts and agents not written in Python)"
DESCRIPTION = """\
Record one run of AGENT: the tokens it loaded per memory scope, checked against its budget at the tier
(given, or detected from the task) exactly as the Python monitor does — alerts, enforcement and all — and
appended to the usage log as one line.

  ctxbudget log --agent dbt-expert --tier medium --tokens global=3200 --tokens agent_patterns=8132
  ctxbudget log --agent aws-expert --task "Analyze slow queries" --tokens global=9000 --failed "timed out"

The log is --log, else $CTXBUDGET_LOG, else the policy's usage_log, else ~/.local/state/ctxbudget/usage.jsonl."""
ORDER = 50


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", required=True, metavar="A", help="agent name, full or short")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--tier", metavar="T", help="the task's complexity tier")
    which.add_argument("--task", metavar="TEXT", help="the task; its tier is detected by the policy")
    parser.add_argument("--tokens", action="append", required=True, type=_scope_tokens, metavar="SCOPE=N",
                        help="tokens loaded from one of the policy's scopes (repeat for each scope; an unknown "
                             "scope is an error)")
    parser.add_argument("--failed", metavar="MSG", help="the run failed, because MSG")
    parser.add_argument("--duration", type=_seconds, metavar="SECONDS", help="how long the run took")
    add_log(parser)
    add_policy(parser)
    add_format(parser)


def _scope_tokens(text: str) -> tuple[str, int]:
    """``SCOPE=N``: N a whole number of tokens from 0 to MAX_TOKENS (``1,000`` and ``1_000`` allowed); a
    negative, fractional or non-finite N (``-5``, ``1.5``, ``inf``, ``nan``, ``1e400``) is refused here, before
    anything is recorded."""
    from engine.usage.record import MAX_TOKENS

    scope, sep, number = text.partition("=")
    shown = text if len(text) <= 60 else text[:59] + "…"
    if not sep or not scope.strip():
        raise argparse.ArgumentTypeError(f"expected SCOPE=N, not {shown!r}")
    digits = number.strip().replace("_", "").replace(",", "")
    if digits.startswith("-") and digits[1:].isdigit():
        raise argparse.ArgumentTypeError(f"tokens cannot be negative: {shown!r}")
    if not digits.isascii() or not digits.isdigit():
        raise argparse.ArgumentTypeError(f"expected SCOPE=N with N a whole number of tokens, not {shown!r}")
    if len(digits.lstrip("0")) > len(str(MAX_TOKENS)) or int(digits) > MAX_TOKENS:
        raise argparse.ArgumentTypeError(f"at most {MAX_TOKENS:,} tokens, not {shown!r}")
    return scope.strip(), int(digits)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}")
    return value


def run(args: argparse.Namespace) -> Result:
    from engine.cli.log_options import log_path
    from engine.cli.options import policy_from
    from engine.cli.render import Result
    from engine.diagnostics import UsageError
    from engine.monitor import monitor, policy_digest
    from engine.usage import append_record

    policy = policy_from(args)
    path = log_path(args, policy, must_exist=False)
    with monitor(policy, args.agent, task=args.task, tier=args.tier, log=False) as watched:
        for scope, tokens in args.tokens:
            watched.try_load(scope, tokens)
        if args.failed is not None:
            watched.fail(args.failed)
    record = watched.record(duration_s=args.duration, policy_hash=policy_digest(policy))
    try:
        append_record(path, record)
    except OSError as exc:
        raise UsageError(f"cannot write the usage log {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a record over the log's line limit (a very long --failed message)
        raise UsageError(f"cannot write the usage log {path}: {exc}") from None
    return Result(record, view=path)


def render_text(result: Result, args: argparse.Namespace) -> None:
    from engine.cli.output import say

    record, path = result.data, result.view
    refused = f", {record.refused_tokens:,} refused" if record.refused_tokens else ""
    alerts = f" [{', '.join(record.alerts)}]" if record.alerts else ""
    outcome = "" if record.success else f" — failed: {record.error}"
    say(f"{record.agent} @ {record.tier}: {record.tokens_loaded:,} of {record.budget:,} tokens "
        f"({record.usage:.1%}){refused}{alerts}{outcome} → {path}")

