"""ctxbudget validate [POLICY ...]"""

from __future__ import annotations

import sys

from engine.cli.options import add_format, add_policy

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "check policy files against the schema and the semantic rules"
DESCRIPTION = """\
Check each POLICY (default: the policy --policy / $CTXBUDGET_POLICY / ./ctxbudget.yaml / the bundled default
would load) and print every problem as

  path:line:col: error: message [rule-id]

pointing at the offending YAML node. Schema errors: the best match first, then a count of the rest
(--all shows them). Exit 0 when every policy is valid, 1 when one is not, 2 when a file cannot be read.

  ctxbudget validate policies/*.yaml
  ctxbudget validate --format github ctxbudget.yaml      # annotations in a GitHub pull request"""
ORDER = 10


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", metavar="POLICY", help="policy files to check")
    add_format(parser, github="workflow annotations")
    parser.add_argument("--all", action="store_true", help="show every schema error, not only the best one")
    add_policy(parser)


def run(args: argparse.Namespace) -> Result:
    from engine.cli.output import error
    from engine.cli.render import Result
    from engine.diagnostics import UsageError
    from engine.policy import check_policy

    targets = args.files or [args.policy]
    reports, checked = [], []
    exit_code = 0
    for target in targets:
        try:
            problems, policy = check_policy(target, cache=True)
        except UsageError as exc:
            error(exc)
            reports.append({"path": target, "valid": False, "error": str(exc), "problems": []})
            exit_code = 2
            continue
        errors = [p for p in problems if p.severity == "error"]
        label = policy.source if policy is not None else (problems[0].path if problems else str(target))
        hidden = 0
        shown = problems
        if not args.all and errors and errors[0].rule.startswith("schema-"):
            schema_rest = [p for p in problems[1:] if p.rule.startswith("schema-")]
            hidden = len(schema_rest)
            shown = [problems[0]] + [p for p in problems[1:] if not p.rule.startswith("schema-")]
        reports.append({"path": label, "valid": not errors, "problems": [p.to_dict() for p in problems]})
        if errors and exit_code == 0:
            exit_code = 1
        checked.append((label, problems, shown, hidden, policy))
    return Result({"valid": exit_code == 0, "policies": reports}, view=checked, exit_code=exit_code)


def render_text(result: Result, args: argparse.Namespace) -> None:
    for label, problems, shown, hidden, policy in result.view:
        for problem in shown:
            print(problem.format())
        if hidden:
            print(f"{label}: {hidden} more schema error{'s' if hidden > 1 else ''} (--all shows them)")
        if not any(p.severity == "error" for p in problems):
            summary = (f"{len(policy.agents)} agents, {len(policy.profiles)} profiles, {len(policy.tiers)} tiers"
                       if policy is not None else "")
            print(f"{label}: valid ({summary})")


def render_github(result: Result, args: argparse.Namespace) -> None:
    for label, problems, shown, hidden, policy in result.view:
        for problem in problems if args.all else shown:
            print(problem.github())
