"""ctxbudget detect TASK | --batch FILE | -i"""

from __future__ import annotations

from engine.cli.options import add_context, add_format, add_policy, context_from, policy_from

TYPE_CHECKING = False  # a hot command: no argparse or typing at import (the fast path parses without them)
if TYPE_CHECKING:  # pragma: no cover
    import argparse
    from typing import Any, Callable

    from engine.cli.render import Result

HELP = "the complexity tier of a task, of every task in a file, or interactively"
DESCRIPTION = """\
Detect the complexity tier of TASK and show the signals that fired.

  ctxbudget detect "Design end-to-end architecture"
  ctxbudget detect "Analyze slow queries" --json
  ctxbudget detect --batch tasks.jsonl > tiers.jsonl
  ctxbudget detect -i
  ctxbudget detect - < ticket.txt

--batch FILE (or - for stdin) reads one task per line — a JSON object with "text" (and "id", "context", ...)
or a plain line of text — and streams one JSON result per task, keeping its "id" (a plain line's id is its
line number), in constant memory. A bad line (not UTF-8, not JSON, nested too deeply, a number out of
range, longer than 4 MiB) is reported on stderr as path:line:col and skipped, every other line is answered,
and the exit code is then 2. -i reads tasks typed on stdin, one per line, until end of input (with line
editing and history when stdin and stdout are a terminal). TASK - reads one task from stdin (up to 1 MiB of
UTF-8)."""
ORDER = 6


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("task", nargs="?", metavar="TASK",
                        help="the task description; - reads it from stdin (up to 1 MiB)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--batch", metavar="FILE", help="detect every task of a JSONL or text file (- for stdin)")
    mode.add_argument("-i", "--interactive", action="store_true", help="detect tasks typed one per line")
    parser.add_argument("--explain", action="store_true", help="show the signals, their spans and the scores")
    add_context(parser)
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> Result | int:
    from engine.cli.render import Result
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
    task = _task(args.task)
    return Result(policy.detect(task, context), view=(policy, task))


def render_text(result: Result, args: argparse.Namespace) -> None:
    from engine.cli.explain import explain, signal_line
    from engine.cli.output import say

    detection, (policy, text) = result.data, result.view
    say(f"{detection.tier} (confidence {detection.confidence:g})")
    if args.explain:
        explain(text, detection, policy.default_tier, policy.detector)
    else:
        say(signal_line(detection))


def _batch(policy: Any, source: str, context: dict | None) -> int:
    import os
    import sys

    from engine.cli.output import fancy
    from engine.cli.progress import progress_bar
    from engine.detect.taskfile import TaskLine, read_tasks
    from engine.diagnostics import OutputError, UsageError
    from engine.jsonio import dumps
    from engine.records import to_json

    label = "<stdin>" if source == "-" else source
    if source == "-" and sys.stdin is None:  # started with stdin closed (`<&-`)
        raise UsageError(f"{label}: there is no stdin to read the tasks from")
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
                try:
                    write(dumps({"id": item.id, **to_json(detection)}) + "\n")
                    flush()
                except BrokenPipeError:  # `ctxbudget detect --batch F | head`: the reader has what it wanted
                    raise
                except OSError as exc:
                    raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None
                answered += 1
            if advance is not None:
                advance(size, size)
    except BrokenPipeError:
        raise
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
    import re
    import sys

    from engine.cli.render import Result, render

    control = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")  # C0 codes but tab and newline, DEL, C1
    if sys.stdin is None:  # started with stdin closed (`<&-`)
        from engine.diagnostics import UsageError

        raise UsageError("there is no stdin to read the tasks from")
    terminal = sys.stdin.isatty()
    read_line = _line_reader(terminal)
    if terminal:
        print("Type a task and press Enter; an empty line or end of input (Ctrl-D) quits.", file=sys.stderr)
    while True:
        try:
            line = read_line()
        except _Unreadable as exc:
            print(f"ignored: {exc}", file=sys.stderr)
            continue
        if line is None or (terminal and not line.strip()):
            return 0
        text = line.strip()
        if not text:
            continue
        if control.search(text):
            # An arrow or function key read without line editing arrives as an escape sequence: not a task.
            print("ignored: the line holds terminal control codes (an arrow key?), not a task", file=sys.stderr)
            continue
        render(Result(policy.detect(text, context), view=(policy, text)), args)
        sys.stdout.flush()


class _Unreadable(Exception):
    """A line of ``detect -i`` that cannot be a task (not UTF-8, too long): skipped, with this message."""


def _line_reader(terminal: bool) -> Callable[[], str | None]:
    """A function returning the next line typed (None at the end of input; :class:`_Unreadable` for a line
    that cannot be a task).

    On a terminal (stdin and stdout both), ``input()`` with :mod:`readline` imported: arrow keys edit the line
    and recall earlier tasks (history in memory only; no file is written). With stdout redirected, Python's
    ``input()`` would not use readline, so the prompt goes to stderr and the line is read as typed; lines are
    then read as bytes, at most the task bound at a time."""
    import sys

    from engine.cli.task_arg import MAX_TASK_BYTES

    if terminal and sys.stdout.isatty():
        try:
            import readline
        except ImportError:  # pragma: no cover - Python built without readline (Windows)
            readline = None
        if readline is not None:
            readline.set_completer(lambda text, state: None)  # Tab completes nothing (not file names)

        def typed() -> str | None:
            try:
                return input("task> ")
            except EOFError:
                sys.stdout.write("\n")
                return None
            except UnicodeDecodeError:
                raise _Unreadable("the line is not UTF-8 text") from None

        return typed

    stream = getattr(sys.stdin, "buffer", None)

    def plain() -> str | None:
        if terminal:
            sys.stderr.write("task> ")
            sys.stderr.flush()
        if stream is None:  # a text stream without bytes beneath (an embedding application's)
            return sys.stdin.readline() or None
        raw = stream.readline(MAX_TASK_BYTES + 1)
        if not raw:
            return None
        if len(raw) > MAX_TASK_BYTES and not raw.endswith(b"\n"):
            while raw and not raw.endswith(b"\n"):  # drop the rest of the line, a bounded piece at a time
                raw = stream.readline(1 << 16)
            raise _Unreadable(f"the line is larger than {MAX_TASK_BYTES:,} bytes")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Unreadable(f"the line is not UTF-8 text (byte {exc.start + 1}: {exc.reason})") from None

    return plain


def _task(value: str) -> str:
    """The task: ``value``, or for ``-`` the one on stdin (imported only then, so a warm start pays nothing)."""
    if value != "-":
        return value
    from engine.cli.task_arg import task_text

    return task_text(value)
