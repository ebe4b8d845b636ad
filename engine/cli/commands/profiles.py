"""ctxbudget profiles"""

from __future__ import annotations

import argparse

from engine.cli.options import add_json, add_policy, policy_from

HELP = "list the policy's budget profiles"
ORDER = 30


def configure(parser: argparse.ArgumentParser) -> None:
    add_policy(parser)
    add_json(parser)


def run(args: argparse.Namespace) -> int:
    from engine.cli.output import print_json, table

    policy = policy_from(args)
    counts = {pid: 0 for pid in policy.profiles}
    for profile in policy.agents.values():
        counts[profile] += 1
    if args.json:
        print_json([{**p.to_dict(), "agents": counts[p.id]} for p in policy.profiles.values()])
        return 0
    rows = [(p.id, p.base, p.max, ", ".join(f"{s} {w:g}" for s, w in p.weights.items()), counts[p.id],
             p.description) for p in policy.profiles.values()]
    table(["profile", "base", "max", "weights", "agents", "description"], rows, right=(1, 2, 4))
    return 0
