"""ctxbudget recommend [--log P] [--json]"""

from __future__ import annotations

from engine.cli.log_options import add_agent, add_log, add_period
from engine.cli.options import add_format, add_policy

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "one recommendation per agent from the usage log: upgrade, downgrade, adjust-weights, maintain"
DESCRIPTION = """\
One action per agent — upgrade (next larger profile), downgrade (next smaller), adjust-weights, maintain or
insufficient-data — with the reason, the evidence and a confidence that grows with the number of runs. The
rules and their thresholds are the policy's `recommendations:` (see docs/usage.md); only runs recorded under
the agent's current profile count. `ctxbudget apply` writes the confident ones into the policy.

  ctxbudget recommend --days 30
  ctxbudget recommend --json"""
ORDER = 52


def configure(parser: argparse.ArgumentParser) -> None:
    add_log(parser, engine=True)
    add_period(parser)
    add_agent(parser)
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> Result:
    from engine.cli.log_options import analyze_log, since_from
    from engine.cli.options import policy_from
    from engine.cli.render import Result
    from engine.recommend import recommend

    policy = policy_from(args)
    since = since_from(args)
    analysis = analyze_log(args, policy, since=since, until=args.until, agent=args.agent)
    return Result(list(recommend(policy, analysis)), view=(policy, analysis, since))


def render_text(result: Result, args: argparse.Namespace) -> None:
    policy, analysis, since = result.view
    print_recommendations(policy, result.data, analysis, since, args.until)


def print_recommendations(policy, recommendations, analysis, since=None, until=None) -> None:  # noqa: ANN001
    """The table, then how many changes `apply` would write (counted by apply's own rules) and its command."""
    from engine.apply import plan_changes, suggested_command
    from engine.cli.output import say, table

    if not recommendations:
        say(f"no runs to recommend from ({analysis.runs} runs in the log for this selection)")
        return
    table(["agent", "profile", "action", "confidence", "reason"],
          [(r.agent, r.profile, r.action, f"{r.confidence:.2f}", r.reason) for r in recommendations],
          right=(3,))
    plan = plan_changes(policy, recommendations)
    sure = plan.changes
    if sure:
        say(f"\n{len(sure)} change{'s' if len(sure) > 1 else ''} at confidence ≥ "
            f"{policy.recommendations.min_confidence:g}; this shows the policy edit:\n  "
            f"{suggested_command(policy, analysis.log, since, until)}")
