"""ctxbudget agents"""

from __future__ import annotations

import argparse

from engine.cli.options import add_json, add_policy, policy_from

HELP = "list the policy's agents and their profiles"
ORDER = 31


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="only the agents of this profile")
    add_policy(parser)
    add_json(parser)


def run(args: argparse.Namespace) -> int:
    from engine.cli.output import print_json, table
    from engine.diagnostics import LookupFailed

    policy = policy_from(args)
    if args.profile is not None and args.profile not in policy.profiles:
        raise LookupFailed("profile", args.profile, [p for p in policy.profiles if args.profile in p])
    rows = [(agent, profile) for agent, profile in policy.agents.items()
            if args.profile is None or profile == args.profile]
    if args.json:
        print_json([{"agent": agent, "profile": profile} for agent, profile in rows])
        return 0
    table(["agent", "profile"], rows)
    return 0
