"""ctxbudget budget AGENT [TIER]"""

from __future__ import annotations

from engine.cli.options import add_format, add_policy, policy_from

TYPE_CHECKING = False  # a hot command: no argparse or typing at import (the fast path parses without them)
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "the token budget of an agent at a complexity tier, split across memory scopes"
DESCRIPTION = """\
The token budget of AGENT at TIER (the policy's default tier when omitted): min(base × multiplier, max),
split across the profile's memory scopes into integers that sum to the budget.

  ctxbudget budget dbt-expert complex
  ctxbudget budget roles/data-architect-role multi-system --json"""
ORDER = 20


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("agent", help="agent name, full (specialists/dbt-expert) or short (dbt-expert)")
    parser.add_argument("tier", nargs="?", help="complexity tier (default: the policy's default tier)")
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> Result:
    from engine.cli.render import Result

    policy = policy_from(args)
    return Result(policy.allocate(args.agent, args.tier), view=policy)


def render_text(result: Result, args: argparse.Namespace) -> None:
    from engine.cli.output import say, table

    allocation, policy = result.data, result.view
    capped = " (capped at the profile's max)" if allocation.capped else ""
    say(f"{allocation.agent}: {allocation.budget:,} tokens — profile {allocation.profile}, "
        f"tier {allocation.tier} ×{allocation.multiplier:g}{capped}")
    weights = policy.profiles[allocation.profile].weights
    table(["scope", "weight", "tokens"],
          [(scope, weights[scope], tokens) for scope, tokens in allocation.scopes.items()], right=(1, 2))
