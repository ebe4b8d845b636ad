"""ctxbudget evaluate TASK --agent A"""

from __future__ import annotations

from engine.cli.options import add_context, add_format, add_policy, context_from, policy_from

TYPE_CHECKING = False  # a hot command: no argparse or typing at import (the fast path parses without them)
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "the budget of an agent for a task: detect the task's tier, then allocate"
DESCRIPTION = """\
Detect the complexity tier of TASK with the policy's signals (unless --tier gives it), then allocate
AGENT's budget at that tier and split it across memory scopes.

  ctxbudget evaluate "Troubleshoot cross-system freshness" --agent data-architect
  ctxbudget evaluate "List all dbt models" --agent dbt-expert --json
  ctxbudget evaluate "Analyze slow queries" --agent snowflake-expert --explain
  ctxbudget evaluate - --agent data-architect < ticket.txt

TASK - reads the task from stdin (up to 1 MiB of UTF-8), for tasks too long for an argument.

--json prints the keys of `budget --json` plus "confidence" and "signals" (each {"id", "tier", "weight",
"text", "span"}); --explain shows which signals fired, where in the task, and how the scores came out."""
ORDER = 5


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", metavar="TASK",
                        help="the task description; - reads it from stdin (up to 1 MiB)")
    parser.add_argument("--agent", "-a", required=True,
                        help="agent name, full (specialists/dbt-expert) or short (dbt-expert)")
    parser.add_argument("--tier", help="use this tier instead of detecting one")
    parser.add_argument("--explain", action="store_true", help="show the signals, their spans and the scores")
    add_context(parser)
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> Result:
    from engine.cli.render import Result

    policy = policy_from(args)
    task = _task(args.task)
    return Result(policy.evaluate(task, args.agent, context_from(args), args.tier), view=(policy, task))


def render_text(result: Result, args: argparse.Namespace) -> None:
    from engine.cli.explain import explain, signal_line
    from engine.cli.output import say, table

    evaluation, (policy, task) = result.data, result.view
    allocation = evaluation.allocation
    how = "given" if evaluation.detection is None else f"detected, confidence {evaluation.confidence:g}"
    capped = " (capped at the profile's max)" if allocation.capped else ""
    say(f"{allocation.agent}: {allocation.budget:,} tokens — tier {allocation.tier} ×{allocation.multiplier:g} "
        f"({how}), profile {allocation.profile}{capped}")
    if evaluation.detection is not None:
        if args.explain:
            say("")
            explain(task, evaluation.detection, policy.default_tier, policy.detector)
            say("")
        else:
            say(signal_line(evaluation.detection))
    weights = policy.profiles[allocation.profile].weights
    table(["scope", "weight", "tokens"],
          [(scope, weights[scope], tokens) for scope, tokens in allocation.scopes.items()], right=(1, 2))


def _task(value: str) -> str:
    """The task: ``value``, or for ``-`` the one on stdin (imported only then, so a warm start pays nothing)."""
    if value != "-":
        return value
    from engine.cli.task_arg import task_text

    return task_text(value)
