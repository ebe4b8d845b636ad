"""ctxbudget apply [--log P] [--policy P] [--dry-run | --yes]"""

from __future__ import annotations

import argparse

from engine.cli.log_options import add_log, add_period
from engine.cli.options import add_format, add_policy, add_write_mode

HELP = "write the confident recommendations into the policy file (shows the diff first)"
DESCRIPTION = """\
Edit the policy file with the recommendations at the policy's min_confidence or above: an agent moves to the
next larger or smaller profile; a profile's scope weights are adjusted when all its agents with enough data
ask for it. Every comment, the key order and the formatting of the file are kept; the unified diff is shown
and the result is validated before anything is written. On a terminal apply asks before writing; elsewhere
pass --yes (or --dry-run to only see the diff). Exit 1 when the edited policy would not validate, or when
the policy changed on disk while apply ran (nothing is written; run it again). A read-only policy is not
rewritten (exit 2). The file keeps its mode and line endings and is replaced atomically.

  ctxbudget apply --dry-run --days 30
  ctxbudget apply --policy ctxbudget.yaml --yes"""
ORDER = 53
# It asks before it writes, so it prints as it goes (engine.cli.render): the diff, then the question.
PRINTS_AS_IT_GOES = True


def configure(parser: argparse.ArgumentParser) -> None:
    add_log(parser, engine=True)
    add_period(parser)
    add_write_mode(parser)
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    from engine.cli.output import error
    from engine.apply import PolicyChanged

    try:
        return _run(args)
    except PolicyChanged as exc:  # another edit won the race: exit 1, the file as the other writer left it
        error(exc)
        return 1


def _run(args: argparse.Namespace) -> int:
    import sys

    from engine.apply import check_writable, plan_apply, policy_file, write_plan
    from engine.cli.log_options import analyze_log, since_from
    from engine.cli.options import policy_from
    from engine.cli.output import confirm_and_write, print_json, refuse_invalid, say, stdin_is_terminal
    from engine.diagnostics import UsageError
    from engine.recommend import recommend

    as_json = args.format == "json"  # apply asks before it writes: it prints as it goes
    policy = policy_from(args)
    policy_file(policy)  # refuse the bundled policy before reading a large log
    analysis = analyze_log(args, policy, since=since_from(args), until=args.until)
    plan = plan_apply(policy, recommend(policy, analysis))
    if not plan.valid:
        return refuse_invalid(plan, as_json, "edited")
    write = bool(plan.changes) and not args.dry_run
    if write:
        check_writable(plan.path, plan.label)  # a read-only policy: say so before showing and asking
    if write and not args.yes:
        if as_json or not stdin_is_terminal():
            if not as_json:
                sys.stdout.write(plan.diff())
            raise UsageError("not writing without --yes when not on a terminal (or --dry-run to only see the diff)")
    if as_json:
        if write:
            write_plan(plan)
        print_json(plan.to_dict(written=write))
        return 0
    for skipped in plan.skipped:
        say(f"skipped: {skipped.agent}: {skipped.action}: {skipped.why}")
    if not plan.changes:
        say(f"nothing to apply: no recommendation at confidence ≥ {policy.recommendations.min_confidence:g} "
            f"changes {plan.label}")
        return 0
    sys.stdout.write(plan.diff())
    for change in plan.changes:
        say(f"{change.action}: {change.description} (confidence {change.confidence:.2f})")
    for stale in plan.stale_examples:
        print(f"{plan.label}: warning: golden example now fails: {stale} (update `examples:`)", file=sys.stderr)
    if plan.reformatted:
        say(f"note: ruamel.yaml also reformats {plan.reformatted} line(s) of {plan.label} it cannot keep as written")
    return confirm_and_write(args, f"write {len(plan.changes)} change(s) to {plan.label}? [y/N] ", lambda: write_plan(plan), plan.label)
