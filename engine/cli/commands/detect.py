"""ctxbudget detect TASK | --batch FILE | -i"""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.options import add_context, add_json, add_policy, context_from, policy_from

HELP = "the complexity tier of a task, of every task in a file, or interactively"
DESCRIPTION = """\
Detect the complexity tier of TASK and show the signals that fired.

  ctxbudget detect "Design end-to-end architecture"
  ctxbudget detect "Analyze slow queries" --json
  ctxbudget detect --batch tasks.jsonl > tiers.jsonl
  ctxbudget detect -i

--batch FILE (or - for stdin) reads one task per line — a JSON object with "text" (and "id", "context", ...)
or a plain line of text — and streams one JSON result per task, keeping its "id" (a plain line's id is its
line number), in constant memory. A bad line (not UTF-8, not JSON, nested too deeply, a number out of
range, longer than 4 MiB) is reported on stderr as path:line:col and skipped, every other line is answered,
and the exit code is then 2. -i reads tasks typed on stdin, one per line, until end of input."""
ORDER = 6


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", nargs="?", help="the task description")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--batch", metavar="FILE", help="detect every task of a JSONL or text file (- for stdin)")
    mode.add_argument("-i", "--interactive", action="store_true", help="detect tasks typed one per line")
    parser.add_argument("--explain", action="store_true", help="show the signals, their spans and the scores")
    add_context(parser)
    add_policy(parser)
    add_json(parser)


def run(args: argparse.Namespace) -> int:
    from engine.diagnostics import UsageError

    given = sum(x for x in (args.task is not None, args.batch is not None, args.interactive))
    if given != 1:
        raise UsageError("detect: give a TASK, --batch FILE or -i (one of them)")
    policy = policy_from(args)
    context = context_from(args)
    if args.batch is not None:
        return _batch(policy, args.batch, context)
    if args.interactive:
        return _interactive(policy, context, args)
    _show(policy, args.task, policy.detect(args.task, context), args)
    return 0


def _show(policy: Any, text: str, detection: Any, args: argparse.Namespace) -> None:
    from engine.cli.explain import explain, signal_line
    from engine.cli.output import print_json, say

    if args.json:
        print_json(detection.to_dict())
        return
    say(f"{detection.tier} (confidence {detection.confidence:g})")
    if args.explain:
        explain(text, detection, policy.default_tier, policy.detector.confidence_scale)
    else:
        say(signal_line(detection))


def _batch(policy: Any, source: str, context: dict | None) -> int:
    import os
    import sys

    from engine.cli.output import fancy
    from engine.cli.progress import progress_bar
    from engine.detect.taskfile import TaskLine, read_tasks
    from engine.diagnostics import UsageError
    from engine.jsonio import dumps

    label = "<stdin>" if source == "-" else source
    try:  # bytes: each line is decoded on its own, so a bad byte costs one line
        stream = getattr(sys.stdin, "buffer", sys.stdin) if source == "-" else open(source, "rb")
    except OSError as exc:
        raise UsageError(f"{source}: cannot read: {exc.strerror or exc}") from None
    bad = answered = 0
    write, flush = sys.stdout.write, sys.stdout.flush
    try:
        size = os.fstat(stream.fileno()).st_size if source != "-" else 0
        with progress_bar(bool(size) and fancy() and sys.stderr.isatty(), f"detecting {label}") as advance:
            progress = None if advance is None else (lambda done: advance(min(done, size), size))
            for item in read_tasks(stream, label, progress=progress):
                if not isinstance(item, TaskLine):
                    print(item.format(), file=sys.stderr)
                    bad += 1
                    continue
                detection = policy.detect(item.text, item.context if item.context is not None else context)
                write(dumps({"id": item.id, **detection.to_dict()}) + "\n")
                flush()
                answered += 1
            if advance is not None:
                advance(size, size)
    except OSError as exc:  # a read error mid-file: what was answered stays answered
        raise UsageError(f"{label}: cannot read: {exc.strerror or exc}") from None
    finally:
        if source != "-":
            stream.close()
    if bad:
        print(f"{label}: {bad:,} bad line{'s' if bad > 1 else ''} skipped, {answered:,} "
              f"task{'s' if answered != 1 else ''} answered", file=sys.stderr)
    return 2 if bad else 0


def _interactive(policy: Any, context: dict | None, args: argparse.Namespace) -> int:
    import sys

    prompt = sys.stdin.isatty()
    if prompt:
        print("Type a task and press Enter; an empty line or end of input (Ctrl-D) quits.", file=sys.stderr)
    while True:
        if prompt:
            sys.stderr.write("task> ")
            sys.stderr.flush()
        line = sys.stdin.readline()
        if not line or (prompt and not line.strip()):
            return 0
        text = line.strip()
        if text:
            _show(policy, text, policy.detect(text, context), args)
            sys.stdout.flush()
