"""ctxbudget hook (Claude Code runs it for each event)"""

from __future__ import annotations

from engine.cli.options import add_policy

TYPE_CHECKING = False  # a hot command (a new process on every prompt): no argparse at import
if TYPE_CHECKING:  # pragma: no cover
    import argparse

HELP = "Claude Code hook: one event's JSON on stdin, the memory to inject on stdout (never fails a session)"
DESCRIPTION = """\
Claude Code runs this for each hook event (`ctxbudget init claude-code` sets it up). It reads the event's
JSON on stdin and prints the hook's JSON: on SessionStart the main agent's global memory, on
UserPromptSubmit the memory for the prompt (its tier detected), on SubagentStart the subagent's memory for
the task its Task call gave it. Other events are recorded (InstructionsLoaded, PreToolUse of Task/Agent,
PostToolUse, PostToolUseFailure and PermissionDenied of Task/Agent, Stop, SubagentStop, SessionEnd) and
print nothing.

It fails open: any error (a bad policy, an unknown agent, a missing memory root, a corrupt index, garbage on
stdin, running past the timeout) ends with exit 0, nothing on stdout, and one line in the hook log
($CTXBUDGET_HOOK_LOG, else $XDG_STATE_HOME/ctxbudget/hook.log). See docs/claude-code.md."""
ORDER = 75

DEFAULT_TIMEOUT_MS = 5000


def configure(parser: argparse.ArgumentParser) -> None:
    add_policy(parser)


def run(args: argparse.Namespace) -> int:
    import sys

    event = hook = None
    try:
        _arm(DEFAULT_TIMEOUT_MS)
        from engine.claude_code.payload import read_event

        event = read_event(sys.stdin.buffer)
        from engine.claude_code.hook import Hook
        from engine.policy import load_policy

        policy = load_policy(_policy_path(args, event.cwd))
        hook = Hook(policy, event)
        _arm(hook.settings.timeout_ms)
        output = hook.handle()
        _arm(0)
        for problem in hook.problems:  # a run not recorded: the event went on, the log says what was lost
            _log_failure(event, problem)
        if output:
            from engine.cli.output import json_line

            sys.stdout.write(json_line(output) + "\n")
            sys.stdout.flush()
    except BaseException as exc:  # noqa: BLE001 - a hook fails open, whatever went wrong
        _arm(0)
        _log_failure(event, exc)
    return 0


def _policy_path(args: argparse.Namespace, cwd: str) -> str | None:
    """--policy, else $CTXBUDGET_POLICY, else the project's ctxbudget.yaml, else the bundled default."""
    import os

    from engine.policy.locate import ENV_VAR, LOCAL_FILE

    if args.policy or os.environ.get(ENV_VAR):
        return args.policy
    local = os.path.join(cwd, LOCAL_FILE)
    return local if os.path.isfile(local) else "default"


class _Timeout(BaseException):
    """Raised by the timer (a BaseException, as KeyboardInterrupt is: no ``except Exception`` may swallow it)."""


def _arm(milliseconds: int) -> None:
    """Raise _Timeout after ``milliseconds`` (0 disarms); POSIX only, elsewhere Claude Code's timeout holds."""
    try:  # the C module `signal` wraps: the wrapper's import makes IntEnums of every constant, ~0.8 ms a hook
        import _signal as signal
    except ImportError:  # pragma: no cover - another Python than CPython
        import signal

    if not hasattr(signal, "setitimer"):  # pragma: no cover
        return
    if milliseconds > 0:
        def expire(signum, frame):
            raise _Timeout(f"gave up after {milliseconds} ms")

        signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, max(milliseconds, 0) / 1000)


def _log_failure(event, exc: BaseException) -> None:
    """One line in the hook log: when, which event and session, what went wrong."""
    import os
    import time

    try:
        path = os.environ.get("CTXBUDGET_HOOK_LOG") or os.path.join(
            os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state"),
            "ctxbudget", "hook.log")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        what = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:500]
        where = "-" if event is None else f"{event.name} session={event.session_id}"
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {where} {what}\n"
        # O_NONBLOCK: a FIFO nobody reads at the moment fails at once (ENXIO) instead of blocking the hook
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o600)
        try:
            if os.fstat(fd).st_size > 1 << 20:  # keep the log bounded: start again past 1 MiB
                os.ftruncate(fd, 0)
            os.write(fd, line.encode("utf-8", "replace"))
        finally:
            os.close(fd)
    except BaseException:  # noqa: BLE001 - nowhere to report: stay silent, stay open
        pass
