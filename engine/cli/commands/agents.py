"""ctxbudget agents"""

from __future__ import annotations

from engine.cli.options import add_format, add_policy, policy_from

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "list the policy's agents and their profiles"
ORDER = 31


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", help="only the agents of this profile")
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> Result:
    from engine.cli.render import Result
    from engine.diagnostics import LookupFailed

    policy = policy_from(args)
    if args.profile is not None and args.profile not in policy.profiles:
        raise LookupFailed("profile", args.profile, [p for p in policy.profiles if args.profile in p])
    return Result([{"agent": agent, "profile": profile} for agent, profile in policy.agents.items()
                   if args.profile is None or profile == args.profile])


def render_text(result: Result, args: argparse.Namespace) -> None:
    from engine.cli.output import table

    table(["agent", "profile"], [(row["agent"], row["profile"]) for row in result.data])
