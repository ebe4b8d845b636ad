"""ctxbudget budget AGENT [TIER]"""

from __future__ import annotations

import argparse

from engine.cli.options import add_json, add_policy, policy_from

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
    add_json(parser)


def run(args: argparse.Namespace) -> int:
    from engine.cli.output import print_json, say, table

    policy = policy_from(args)
    allocation = policy.allocate(args.agent, args.tier)
    if args.json:
        print_json(allocation.to_dict())
        return 0
    capped = " (capped at the profile's max)" if allocation.capped else ""
    say(f"{allocation.agent}: {allocation.budget:,} tokens — profile {allocation.profile}, "
        f"tier {allocation.tier} ×{allocation.multiplier:g}{capped}")
    weights = policy.profiles[allocation.profile].weights
    table(["scope", "weight", "tokens"],
          [(scope, weights[scope], tokens) for scope, tokens in allocation.scopes.items()], right=(1, 2))
    return 0
