"""ctxbudget detect TASK | --batch FILE | -i"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from typing import Any, Iterable, Iterator

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
line number), in constant memory. A bad line is reported on stderr as path:line:col and skipped; the exit
code is then 2. -i reads tasks typed on stdin, one per line, until end of input."""
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
    import json
    import sys

    from engine.detect.taskfile import TaskLine, read_tasks
    from engine.diagnostics import UsageError

    label = "<stdin>" if source == "-" else source
    try:
        stream = sys.stdin if source == "-" else open(source, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{source}: cannot read: {exc.strerror or exc}") from None
    bad = 0
    write, flush = sys.stdout.write, sys.stdout.flush
    try:
        with _batch_progress(stream, label) as lines:
            for item in read_tasks(lines, label):
                if not isinstance(item, TaskLine):
                    print(item.format(), file=sys.stderr)
                    bad += 1
                    continue
                detection = policy.detect(item.text, item.context if item.context is not None else context)
                write(json.dumps({"id": item.id, **detection.to_dict()}, ensure_ascii=False) + "\n")
                flush()
    except UnicodeDecodeError as exc:
        raise UsageError(f"{label}: not UTF-8 text ({exc.reason})") from None
    finally:
        if stream is not sys.stdin:
            stream.close()
    return 2 if bad else 0


@contextmanager
def _batch_progress(stream: Any, label: str) -> Iterator[Iterable[str]]:
    """The lines of ``stream``; on a terminal, with a progress bar over a file's size (stdin has none)."""
    import os
    import sys

    from engine.cli.output import fancy
    from engine.cli.progress import progress_bar

    size = os.fstat(stream.fileno()).st_size if stream is not sys.stdin else 0
    with progress_bar(bool(size) and fancy() and sys.stderr.isatty(), f"detecting {label}") as advance:
        if advance is None:
            yield stream
            return

        def counted() -> Iterator[str]:
            done = 0
            for number, line in enumerate(stream, 1):
                done += len(line)  # characters: bytes for ASCII, near enough for a bar
                if number % 2000 == 0:
                    advance(min(done, size), size)
                yield line
            advance(size, size)

        yield counted()


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
