"""ctxbudget accuracy LABELS.jsonl"""

from __future__ import annotations

from engine.cli.options import add_format, add_policy, policy_from

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "how well the policy's detection agrees with labelled tasks (exit 1 below --min)"
DESCRIPTION = """\
Detect every task of LABELS (JSONL: {"id", "text", "tier", "agent"?, "context"?} per line) and compare with
its label: accuracy, precision and recall per tier, the confusion matrix, what the errors cost in tokens
(over- and under-allocation against the budgets the labels give, for each task's agent or else the policy's
first agent), the expected calibration error of the confidence, and the misclassified tasks. With --min X,
exit 1 when the accuracy is below X (a CI gate); a bad line exits 2.

  ctxbudget accuracy ../shared/data/complexity-dev.jsonl --min 0.8
  ctxbudget accuracy labels.jsonl --policy ctxbudget.yaml --json

A bad line (not UTF-8, not JSON, no "text" or "tier", an unknown tier) is reported on stderr as
path:line:col and left out; every other line is still measured and the report shown."""
ORDER = 40


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("labels", metavar="LABELS.jsonl", help="labelled tasks, one JSON object per line")
    parser.add_argument("--min", type=float, metavar="X", help="exit 1 when the accuracy is below X (0..1)")
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> Result | int:
    import sys

    from engine.cli.render import Result
    from engine.detect.accuracy import measure
    from engine.diagnostics import UsageError

    if args.min is not None and not 0 <= args.min <= 1:
        raise UsageError("--min takes a fraction between 0 and 1")
    policy = policy_from(args)
    tasks, problems = _labelled(args.labels, {t.id for t in policy.tiers})
    for problem in problems:
        print(problem.format(), file=sys.stderr)
    if problems:
        print(f"{args.labels}: {len(problems):,} bad line{'s' if len(problems) > 1 else ''} left out, "
              f"{len(tasks):,} labelled task{'s' if len(tasks) != 1 else ''} measured", file=sys.stderr)
        if not tasks:
            return 2
    report = measure(policy, tasks)
    below = args.min is not None and report.accuracy < args.min
    code = 2 if problems else 1 if below else 0
    return Result({**report.to_dict(), "min": args.min, "passed": not below, "bad_lines": len(problems)},
                  view=report, exit_code=code)


def render_text(result: Result, args: argparse.Namespace) -> None:
    from engine.cli.output import say, table

    report, below = result.view, not result.data["passed"]
    say(f"{args.labels}: {report.correct} of {report.total} tasks detected as labelled — accuracy "
        f"{report.accuracy:.1%}" + (f" (minimum {args.min:.1%})" if args.min is not None else ""))
    table(["tier", "precision", "recall", "tasks"],
          [(t.tier, _pct(t.precision), _pct(t.recall), t.support) for t in report.per_tier], right=(1, 2, 3))
    table(["labelled \\ detected", *report.tiers],
          [(e, *report.confusion[e].values()) for e in report.tiers], right=tuple(range(1, len(report.tiers) + 1)),
          title="confusion matrix")
    cost = report.cost
    if cost is not None:
        share = (lambda n: f" ({n / cost.labelled_tokens:.1%} of the {cost.labelled_tokens:,} the labels give)"
                 if cost.labelled_tokens else "")
        say(f"cost of the errors: {cost.over_tokens:,} tokens over-allocated on {cost.over_tasks} task(s)"
            f"{share(cost.over_tokens)}, {cost.under_tokens:,} under-allocated on {cost.under_tasks} task(s)"
            f"{share(cost.under_tokens)}"
            + (f"; tasks without a known agent costed as {cost.reference_agent}" if cost.reference_agent else ""))
    say(f"calibration: expected calibration error {report.calibration_error:.3f} "
        f"(mean confidence {report.mean_confidence:.2f}, accuracy {report.accuracy:.2f})")
    if report.misses:
        table(["id", "expected", "detected", "confidence", "task"],
              [(m.id, m.expected, m.detected, m.confidence, _short(m.text)) for m in report.misses],
              title="misclassified")
    if below:
        say(f"accuracy {report.accuracy:.1%} is below the minimum {args.min:.1%}")


def _labelled(path: str, tiers: set[str]) -> tuple[list, list]:
    from engine.detect.taskfile import TaskLine, read_tasks
    from engine.diagnostics import Problem, UsageError

    tasks, problems = [], []
    try:
        with open(path, "rb") as stream:  # each line decoded on its own: a bad byte costs one line
            for item in read_tasks(stream, path):
                if not isinstance(item, TaskLine):
                    problems.append(item)
                elif item.raw is None or item.tier is None:
                    problems.append(Problem(path, item.line, 1, "task-label", "a labelled task is a JSON object "
                                            "with \"text\" and \"tier\""))
                elif item.tier not in tiers:
                    problems.append(Problem(path, item.line, 1, "unknown-tier",
                                            f"unknown tier {item.tier!r} (tiers: {', '.join(sorted(tiers))})"))
                else:
                    agent = item.raw.get("agent") if isinstance(item.raw, dict) else None
                    tasks.append((item.id, item.text, item.tier, item.context, agent))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if not tasks and not problems:
        raise UsageError(f"{path}: no labelled tasks")
    return tasks, problems


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _short(text: str, width: int = 70) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
