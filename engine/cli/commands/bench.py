"""ctxbudget bench"""

from __future__ import annotations

from engine.cli.options import add_format, add_policy, policy_from

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "measure detection throughput and latency with a policy"
DESCRIPTION = """\
Time the policy's detector task by task over a corpus (JSONL with "text", or one task per line; default: a
bundled corpus of 62 realistic tasks) and print tasks per second and the p50/p99 latency in microseconds.

  ctxbudget bench
  ctxbudget bench --corpus tasks.jsonl --policy ctxbudget.yaml --seconds 3"""
ORDER = 41


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", metavar="FILE", help="tasks to time (default: the bundled sample corpus)")
    parser.add_argument("--seconds", type=float, default=1.0, help="how long to time (default 1)")
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> Result | int:
    import sys
    import time

    from engine.cli.render import Result
    from engine.detect.taskfile import TaskLine, read_tasks
    from engine.detect.throughput import sample_corpus, time_detection
    from engine.diagnostics import UsageError

    if not 0 < args.seconds <= 600:
        raise UsageError("--seconds takes a duration between 0 and 600")
    policy = policy_from(args)
    started = time.perf_counter()
    detector = policy.detector
    compile_ms = (time.perf_counter() - started) * 1e3
    path = args.corpus or str(sample_corpus())
    texts, bad = [], 0
    try:
        with open(path, encoding="utf-8") as stream:
            for item in read_tasks(stream, path):
                if isinstance(item, TaskLine):
                    texts.append(item.text)
                else:
                    print(item.format(), file=sys.stderr)
                    bad += 1
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: not UTF-8 text ({exc.reason})") from None
    if bad:
        return 2
    if not texts:
        raise UsageError(f"{path}: no tasks")
    result = time_detection(detector.detect, texts, args.seconds)
    return Result({"policy": policy.source, "corpus": path, "signals": len(detector.signals),
                   "compile_ms": round(compile_ms, 2), **result.to_dict()}, view=result)


def render_text(result: Result, args: argparse.Namespace) -> None:
    from engine.cli.output import say

    data, result = result.data, result.view
    say(f"{data['policy']}: {data['signals']} signals, compiled in {data['compile_ms']:.1f} ms")
    say(f"{data['corpus']}: {result.tasks} tasks, {result.mean_chars:.0f} characters on average")
    say(f"{result.per_second:,.0f} tasks/s over {result.calls:,} detections; "
        f"p50 {result.p50_us:.1f} µs, p99 {result.p99_us:.1f} µs per task")
