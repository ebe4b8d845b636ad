"""ctxbudget test [POLICY]"""

from __future__ import annotations

import argparse

from engine.cli.options import add_json, add_policy

HELP = "run the policy's golden examples (exit 1 on a mismatch)"
DESCRIPTION = """\
Run the golden examples a policy carries under `examples:` — agent + tier → budget, and task → tier — and
report each mismatch. Exit 0 when all pass, 1 when one fails or the policy is invalid.

  ctxbudget test
  ctxbudget test my-policy.yaml --json"""
ORDER = 15


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", metavar="POLICY", help="policy file (default: as --policy)")
    add_policy(parser)
    add_json(parser)


def run(args: argparse.Namespace) -> int:
    from engine.cli.output import print_json, say, table
    from engine.golden import run_examples
    from engine.policy import load_policy

    policy = load_policy(args.file or args.policy)
    results = run_examples(policy)
    failed = [r for r in results if not r.passed]
    if args.json:
        print_json({"policy": policy.source, "passed": len(results) - len(failed), "failed": len(failed),
                    "results": [r.to_dict() for r in results]})
        return 1 if failed else 0
    if failed:
        table(["kind", "#", "subject", "expected", "actual"],
              [(r.kind, r.index, r.subject, _show(r.expected), r.detail or _show(r.actual)) for r in failed],
              title="failed examples")
    say(f"{policy.source}: {len(results) - len(failed)} of {len(results)} examples pass")
    return 1 if failed else 0


def _show(value: object) -> str:
    if isinstance(value, dict) and set(value) <= {"budget", "scopes"}:
        text = f"{value['budget']:,}"
        if "scopes" in value:
            text += " (" + ", ".join(f"{k} {v:,}" for k, v in value["scopes"].items()) + ")"
        return text
    return str(value)
