"""ctxbudget tune LABELS.jsonl [--policy P] [--dry-run | --yes]"""

from __future__ import annotations

import argparse

from engine.cli.options import add_format, add_policy, add_write_mode

HELP = "fit the signal weights and confidence calibration to labelled tasks (shows the diff first)"
DESCRIPTION = """\
Fit the weights of the policy's weighted signals to the labelled tasks of LABELS (JSONL: {"id", "text",
"tier", "context"?} per line) by multinomial logistic regression with an L2 penalty chosen by k-fold
cross-validation, and calibrate the confidence (Platt scaling of the score margin, written to
detection.calibration) so that it is the probability that the detected tier is right. Shows the policy's
accuracy before, the cross-validated accuracy after, the calibration error before and after (out of fold),
and the unified diff; comments and formatting of the file are kept and the result is validated before
anything is written. On a terminal tune asks before writing; elsewhere pass --yes (or --dry-run).
With --calibrate-only the weights stay as they are. Exit 1 when the edited policy would not validate.

  ctxbudget tune labels.jsonl --policy ctxbudget.yaml --dry-run
  ctxbudget tune labels.jsonl --policy ctxbudget.yaml --calibrate-only --yes"""
ORDER = 42
# It asks before it writes, so it prints as it goes (engine.cli.render): the diff, then the question.
PRINTS_AS_IT_GOES = True


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labels", metavar="LABELS.jsonl", help="labelled tasks, one JSON object per line")
    parser.add_argument("--folds", type=int, default=5, metavar="K", help="cross-validation folds (default 5)")
    parser.add_argument("--l2", type=float, action="append", metavar="X",
                        help="an L2 penalty to try (repeat to try several; default 0.001 0.003 0.01 0.03)")
    parser.add_argument("--calibrate-only", action="store_true", help="keep the weights; fit the calibration only")
    add_write_mode(parser)
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    from engine.apply import ApplyPlan, policy_file, write_plan
    from engine.cli.commands.accuracy import _labelled
    from engine.cli.options import policy_from
    from engine.cli.output import confirm_and_write, print_json, refuse_invalid, say, stdin_is_terminal
    from engine.detect.tune import DEFAULT_L2, TuneError, plan_tune
    from engine.diagnostics import UsageError

    if args.folds < 2:
        raise UsageError("--folds takes a whole number of at least 2")
    if args.l2 is not None and any(not 0 <= x <= 100 for x in args.l2):
        raise UsageError("--l2 takes a penalty between 0 and 100")
    as_json = args.format == "json"  # tune asks before it writes: it prints as it goes
    policy = policy_from(args)
    path = policy_file(policy)  # refuses the bundled policy
    tasks, problems = _labelled(args.labels, {t.id for t in policy.tiers})
    if problems:
        for problem in problems:
            print(problem.format(), file=sys.stderr)
        return 2
    if len({task[2] for task in tasks}) < 2:
        raise UsageError(f"{args.labels}: tune needs labelled tasks of at least two tiers")
    try:
        plan = plan_tune(policy, tasks, path, folds=args.folds, l2=tuple(args.l2 or DEFAULT_L2),
                         calibrate_only=args.calibrate_only)
    except TuneError as exc:
        raise UsageError(str(exc)) from None
    if not plan.valid:
        return refuse_invalid(plan, as_json, "tuned")
    write = plan.changed and not args.dry_run
    if write and not args.yes and (as_json or not stdin_is_terminal()):
        if not as_json:
            sys.stdout.write(plan.diff())
        raise UsageError("not writing without --yes when not on a terminal (or --dry-run to only see the diff)")
    writer = ApplyPlan(plan.path, plan.label, plan.original, plan.updated)
    if as_json:
        if write:
            write_plan(writer)
        print_json(plan.to_dict(written=write))
        return 0
    sys.stdout.write(plan.diff())
    say(f"{plan.tasks} labelled tasks: accuracy {plan.accuracy_before:.1%} with the policy's weights"
        + ("" if plan.cv_accuracy is None else
           f", {plan.cv_accuracy:.1%} cross-validated with the fitted ones ({args.folds} folds, L2 {plan.l2:g})"))
    say(f"calibration: slope {plan.calibration[0]:g}, intercept {plan.calibration[1]:g}; expected calibration "
        f"error {plan.ece_before:.3f} before, {plan.ece_after:.3f} after (out of fold)")
    for stale in plan.stale_examples:
        print(f"{plan.label}: warning: golden example now fails: {stale} (update `examples:`)", file=sys.stderr)
    if not plan.changed:
        say(f"nothing to change in {plan.label}")
        return 0
    return confirm_and_write(args, f"write the tuned values to {plan.label}? [y/N] ", lambda: write_plan(writer), plan.label)
