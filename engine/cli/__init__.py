"""The ``ctxbudget`` command line.

Each command is one module in :mod:`engine.cli.commands` with ``HELP`` (one line), ``ORDER`` (its place in
``--help``), ``configure(parser)`` and ``run(args)``, which returns a :class:`engine.cli.render.Result` that
:func:`engine.cli.render.render` prints in the format ``--format`` / ``--json`` chose (or, for a command that
streams or asks, prints as it goes and returns the exit code). Command modules import only argparse-level
things at the top; what a command needs to do its work is imported inside ``run``, so ``ctxbudget budget``
never pays for jsonschema, and ``--help`` pays for nothing.

Start-up (every Claude Code hook is a new process): ``--version`` is answered before anything is imported; a
simple command line is read by :mod:`engine.cli.quick` from the command's own ``configure`` without argparse
(anything else goes to argparse, which gives the same answer or its usual error); the short commands run
with the cyclic garbage collector off. The hot commands' modules import neither argparse nor typing at the
top. ``tests/test_startup.py`` checks what each imports.

Exit codes: 0 ok, 1 findings (invalid policy, failed policy test, unknown name, below a gate), 2 usage or
I/O error. No traceback reaches a user for bad input.

Errors go to stderr as text, whatever the format. When the command was given ``--format json`` (or its
alias ``--json``), an error is also printed on stdout as one line of JSON, so a pipeline can parse every
outcome::

    {"error": {"code": "usage" | "policy" | "lookup", "message": str, "exit_code": 1 | 2,
               "problems": [Problem.to_dict(), ...], "kind": str | null, "name": str | null,
               "suggestions": [str, ...]}}

``problems`` is filled for an invalid policy; ``kind`` (agent, tier, scope, …), ``name`` and ``suggestions``
for a name that does not resolve.
"""

import gc
import sys

TYPE_CHECKING = False  # not typing's: `ctxbudget --version` imports nothing it does not print
if TYPE_CHECKING:  # pragma: no cover
    from typing import Sequence

_PARSER_NAMES = ("build_parser", "command_names", "_commands", "_Parser", "_Formatter", "_UsageExit")


def __getattr__(name: str):
    # PEP 562: the parser (argparse and the command modules) loads when a command needs it.
    if name in _PARSER_NAMES:
        from engine.cli import parser

        return getattr(parser, name)
    raise AttributeError(f"module 'engine.cli' has no attribute {name!r}")


# Commands that answer one question and exit (and `detect TASK`, not --batch or -i): the cyclic garbage
# collector stays off for their whole run.
# Start-up allocates many objects and no cycles worth collecting (imports, the cache entry's JSON), and the
# collections it triggers cost a warm `budget --json` ~3 ms and `evaluate --json` ~3-5 ms of CPU (interleaved
# medians, `gc.disable()` against not, this machine). `pack` does what `hook` does on a prompt (detect, then pack):
# a warm pack of a 2,000-file store spent ~9 % of its instructions in collections of the index's rows (callgrind),
# and a cold one's peak memory is the same without them (46 MB for that store's 3M tokens: the index's rows and
# texts hold no cycles). Every other command runs with it, as Python's default.
_SHORT = frozenset({"budget", "evaluate", "hook", "pack"})


def main(argv: "Sequence[str] | None" = None) -> int:
    """Entry point of the ``ctxbudget`` console script; returns the exit code."""
    exiting = argv is None  # the console script and `python -m engine`: the process ends when main returns
    argv = list(sys.argv[1:] if argv is None else argv)
    if sys.stdout is None and argv[:1] != ["hook"]:  # started with stdout closed (`ctxbudget … >&-`): do nothing
        print("ctxbudget: error: cannot write the output: stdout is closed", file=sys.stderr)  # (a hook fails open)
        return 2
    if argv == ["--version"]:  # before argparse and the command modules: nothing of the engine is needed
        from engine import __version__

        try:
            sys.stdout.write(f"ctxbudget {__version__}\n")
        except OSError as exc:  # `ctxbudget --version > /dev/full`, `| true`
            from engine.cli.output import not_written

            return not_written(exc)
        return _flushed(0)
    try:
        code = _run(argv)
    except SystemExit:  # argparse's --help (0) and its usage errors (2): what they printed must reach stdout
        if _flushed(0) == 0:
            raise
        return 2
    code = _flushed(code)
    if exiting and argv[:1] and argv[0] in _SHORT:
        # The interpreter's finalization collects every object three times over (a warm pack of a 2,000-file store
        # spent ~4 % of its instructions there): frozen, they are skipped. Reference counting still frees what is
        # not in a cycle; the memory indexes' SQLite connections, which may be, are closed first (their WAL files
        # checkpointed and removed, as the collection would have had them). Only the short commands, whose
        # resources are those (no DuckDB database, no file left to a finalizer); an in-process caller (one that
        # passes argv) keeps its collector as it was.
        index = sys.modules.get("engine.pack.index")
        if index is not None:
            index.close_all()
        gc.freeze()
    return code


def _run(argv: "list[str]") -> int:
    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        # a file name from bytes that are not UTF-8 (lone surrogates in Python) prints as those bytes, as `ls`
        # prints it, instead of failing (a UTF-8 locale's stdout is strict; the C locale's is not)
        sys.stdout.reconfigure(errors="surrogateescape")
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _main(argv, collecting)
    finally:
        if collecting:
            gc.enable()


def _flushed(code: int) -> int:
    """``code``, once what stdout still holds is flushed: a full disk or a closed pipe shows here, not as a
    traceback at exit (2 when the output could not be written, said on stderr)."""
    try:
        if sys.stdout is not None:  # (None: a hook started with stdout closed)
            sys.stdout.flush()
    except OSError as exc:
        from engine.cli.output import not_written

        return not_written(exc, code)
    return code


def _main(argv: "list[str]", collecting: bool) -> int:
    from engine.cli.quick import parse

    args = parse(argv)  # a simple command line, read without argparse (start-up); None: argparse reads it
    if args is None:
        from engine.cli.options import asks_json
        from engine.cli.parser import _UsageExit, build_parser, command_names

        first = next((a for a in argv if not a.startswith("-")), None)
        parser = build_parser(first if first in command_names() else None)
        try:
            args = parser.parse_args(argv)
        except _UsageExit as exc:
            if not asks_json(argv):
                raise
            _json_error("usage", exc.message, 2)
            return 2
        if not getattr(args, "run", None):
            parser.print_help(sys.stderr)
            return 2
    from engine.cli.output import drop_stdout, error
    from engine.diagnostics import LookupFailed, OutputError, PolicyError, UsageError

    command = args.run.__module__.rsplit(".", 1)[-1]
    if collecting and not (command in _SHORT or (command == "detect" and getattr(args, "task", None) is not None)):
        gc.enable()
    as_json = getattr(args, "format", None) == "json"
    try:
        outcome = args.run(args)
        if isinstance(outcome, tuple):  # a Result: the one renderer prints it in the chosen --format
            from engine.cli.render import render

            try:
                return render(outcome, args)
            except BrokenPipeError:
                raise
            except OSError as exc:  # stdout: a full disk, a device that refuses writes
                raise OutputError(f"cannot write the output: {exc.strerror or exc}") from None
        return int(outcome or 0)
    except PolicyError as exc:
        for problem in exc.problems:
            print(problem.format(), file=sys.stderr)
        if as_json:
            more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
            message = (exc.problems[0].format() + more) if exc.problems else "invalid policy"
            _json_error("policy", message, 1, problems=[p.to_dict() for p in exc.problems])
        return 1
    except LookupFailed as exc:
        error(exc)
        if as_json:
            _json_error("lookup", str(exc), 1, kind=exc.kind, name=exc.name, suggestions=exc.suggestions)
        return 1
    except OutputError as exc:  # stdout refuses what is written: nothing more goes there
        error(exc)
        drop_stdout()
        return 2
    except UsageError as exc:
        error(exc)
        if as_json:
            _json_error("usage", str(exc), 2)
        return 2
    except BrokenPipeError:  # `ctxbudget agents | head`
        drop_stdout()
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130


def _json_error(code: str, message: str, exit_code: int, problems: "Sequence[dict]" = (), kind: "str | None" = None,
                name: "str | None" = None, suggestions: "Sequence[str]" = ()) -> None:
    """An error as one line of JSON on stdout (the shape is in this module's documentation)."""
    from engine.cli.output import drop_stdout, json_line

    error = {"code": code, "message": message, "exit_code": exit_code, "problems": list(problems), "kind": kind,
             "name": name, "suggestions": list(suggestions)}
    try:
        sys.stdout.write(json_line({"error": error}) + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):  # stdout closed or refusing writes: the text on stderr has said it
        drop_stdout()
