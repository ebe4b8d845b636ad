"""ctxbudget test [POLICY]"""

from __future__ import annotations

from engine.cli.options import add_format, add_policy

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "run the policy's golden examples (exit 1 on a mismatch)"
DESCRIPTION = """\
Run the golden examples a policy carries under `examples:` — agent + tier → budget, and task → tier — and
report each mismatch. Exit 0 when all pass, 1 when one fails or the policy is invalid.

A policy that extends another runs only the examples its own file writes: the parents' pin the parents'
numbers, which a team's policy usually changes on purpose. --inherited runs those too.

  ctxbudget test
  ctxbudget test my-policy.yaml --json
  ctxbudget test team.yaml --inherited"""
ORDER = 15


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", metavar="POLICY", help="policy file (default: as --policy)")
    parser.add_argument("--inherited", action="store_true",
                        help="also run the examples inherited from the policies it extends")
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> Result:
    from engine.cli.render import Result
    from engine.golden import inherited_count, knows_origins, run_examples
    from engine.policy import load_policy

    policy = load_policy(args.file or args.policy)
    if not knows_origins(policy):  # a cached entry from before: read the chain again
        policy = load_policy(args.file or args.policy, cache=False)
    results = run_examples(policy, inherited=args.inherited)
    failed = [r for r in results if not r.passed]
    not_run = 0 if args.inherited else inherited_count(policy)
    return Result({"policy": policy.source, "passed": len(results) - len(failed), "failed": len(failed),
                   "inherited_not_run": not_run, "results": results}, view=failed, exit_code=1 if failed else 0)


def render_text(result: Result, args: argparse.Namespace) -> None:
    from engine.cli.output import say, table

    summary, failed = result.data, result.view
    if failed:
        headers = ["kind", "#", "subject", "expected", "actual"] + (["from"] if args.inherited else [])
        rows = [(r.kind, r.index, r.subject, _show(r.expected), r.detail or _show(r.actual), r.origin or "(own)")
                for r in failed]
        table(headers, [row[:len(headers)] for row in rows], title="failed examples")
    say(_summary(summary["policy"], summary["passed"] + summary["failed"], summary["failed"],
                 summary["inherited_not_run"]))


def _summary(source: str, ran: int, failed: int, not_run: int) -> str:
    if not not_run:
        return f"{source}: {ran - failed} of {ran} examples pass"
    skipped = f"{not_run} inherited example{'s' if not_run != 1 else ''} not run (--inherited runs them)"
    if not ran:
        return f"{source}: no examples of its own; {skipped}"
    return f"{source}: {ran - failed} of {ran} examples pass; {skipped}"


def _show(value: object) -> str:
    if isinstance(value, dict) and set(value) <= {"budget", "scopes"}:
        text = f"{value['budget']:,}"
        if "scopes" in value:
            text += " (" + ", ".join(f"{k} {v:,}" for k, v in value["scopes"].items()) + ")"
        return text
    return str(value)
