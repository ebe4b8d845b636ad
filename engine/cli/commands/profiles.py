"""ctxbudget profiles"""

from __future__ import annotations

from engine.cli.options import add_format, add_policy, policy_from

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "list the policy's budget profiles"
ORDER = 30


def configure(parser: argparse.ArgumentParser) -> None:
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> Result:
    from engine.cli.render import Result
    from engine.records import to_json

    policy = policy_from(args)
    counts = {pid: 0 for pid in policy.profiles}
    for profile in policy.agents.values():
        counts[profile] += 1
    return Result([{**to_json(p), "agents": counts[p.id]} for p in policy.profiles.values()])


def render_text(result: Result, args: argparse.Namespace) -> None:
    from engine.cli.output import table

    rows = [(p["id"], p["base"], p["max"], ", ".join(f"{s} {w:g}" for s, w in p["weights"].items()), p["agents"],
             p["description"]) for p in result.data]
    table(["profile", "base", "max", "weights", "agents", "description"], rows, right=(1, 2, 4))
