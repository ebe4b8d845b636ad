"""Printing results: JSON for machines; rich tables on a terminal; plain aligned text when piped or when
``NO_COLOR`` is set (rich is then not even imported).

Every command's JSON goes through :func:`print_json` or :func:`json_line` (that is, :func:`engine.jsonio.dumps`):
strict JSON, where a non-finite float (NaN, an infinity) is written as ``null``.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Sequence

from engine.text import printable


def print_json(value: Any) -> None:
    """``value`` as indented strict JSON on stdout."""
    from engine.jsonio import dumps

    sys.stdout.write(dumps(value, indent=2) + "\n")


def json_line(value: Any) -> str:
    """``value`` as strict JSON on one line (a JSONL record, without its newline)."""
    from engine.jsonio import dumps

    return dumps(value)


def stdin_is_terminal() -> bool:
    """Whether a person can answer on stdin (False when it is a pipe, a file, or closed: ``… <&-``)."""
    return sys.stdin is not None and sys.stdin.isatty()


def fancy() -> bool:
    """Whether to draw with rich: a terminal, colour allowed."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None = None,
          right: Sequence[int] = ()) -> None:
    """A table; columns whose index is in ``right`` are right-aligned (numbers). Cells are data: they are shown
    as text (:func:`printable`; rich reads no markup in them)."""
    cells = [[printable(_cell(v)) for v in row] for row in rows]
    if fancy():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        t = Table(title=title, title_justify="left")
        for i, h in enumerate(headers):
            t.add_column(h, justify="right" if i in right else "left")
        for row in cells:
            t.add_row(*map(Text, row))  # Text: "[/x]" or "[link=…]" in a name is shown, not read as markup
        Console().print(t)
        return
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        parts = [v.rjust(w) if i in right else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))]
        return "  ".join(parts).rstrip()

    out = [title] if title else []
    out += [line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells]
    sys.stdout.write("\n".join(out) + "\n")


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:g}"
    return "" if value is None else str(value)


def error(message: object) -> None:
    """``ctxbudget: error: message`` on stderr, its quoted names shown as text (:func:`printable`)."""
    print(printable(f"ctxbudget: error: {message}"), file=sys.stderr)


def say(text: str = "") -> None:
    sys.stdout.write(printable(text, newlines=True) + "\n")


def refuse_invalid(plan: Any, as_json: bool, what: str) -> int:
    """The end of a command whose edited policy would not validate (``plan.valid`` false): the plan as JSON
    when asked, its problems and one error line on stderr, exit 1 — the file is not touched."""
    if as_json:
        print_json(plan.to_dict(written=False))
    for problem in plan.problems:
        print(problem.format(), file=sys.stderr)
    print(f"ctxbudget: error: the {what} policy would not validate; {plan.label} is unchanged", file=sys.stderr)
    return 1


def confirm_and_write(args, question: str, write, label: str) -> int:
    """The end of a command that edits a file: nothing with ``--dry-run``; else ask ``question`` unless
    ``--yes``; then ``write()`` and say so. Returns the exit code (0)."""
    if args.dry_run:
        say("dry run: nothing written")
        return 0
    if not args.yes and input(question).strip().lower() not in ("y", "yes"):
        say("nothing written")
        return 0
    write()
    say(f"wrote {label}")
    return 0


def not_written(exc: OSError, code: int = 0) -> int:
    """The exit code when writing stdout failed with ``exc``: a reader that stopped early (`| head -1`) is no
    error (``code`` stands); anything else (a full disk, a device that refuses writes) is said, exit 2."""
    drop_stdout()
    if isinstance(exc, BrokenPipeError):
        return code
    print(f"ctxbudget: error: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
    return 2


def drop_stdout() -> None:
    """Point stdout at the null device, so that the interpreter's own flush at exit fails no more."""
    import os

    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no file descriptor (a test's capture)
        pass
