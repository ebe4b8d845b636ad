"""Where the usage log is: ``--log``, else ``$CTXBUDGET_LOG``, else the policy's ``usage_log``, else a per-user
default (``$XDG_STATE_HOME/ctxbudget/usage.jsonl``, by default ``~/.local/state/ctxbudget/usage.jsonl``).

A policy's ``usage_log`` comes from whoever wrote the policy, so it expands only ``~``, ``$HOME``, ``$XDG_*``
and ``$CTXBUDGET_*`` (any other variable is an error, never part of a file name) and must name a ``.jsonl``
file; :func:`engine.usage.append_record` then writes only to a regular file, never through a symlink.
"""

from __future__ import annotations

import os
from pathlib import Path

TYPE_CHECKING = False  # not typing's: importing typing costs every start (the Stop hook resolves the log here)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

ENV_VAR = "CTXBUDGET_LOG"


def default_log_path() -> Path:
    """The per-user default log."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "ctxbudget" / "usage.jsonl"


def resolve_log_path(explicit: str | os.PathLike | None = None, policy: Any = None) -> Path:
    """The log to use. A relative ``usage_log`` in a policy is relative to that policy's file.

    Raises UsageError when the policy's ``usage_log`` is not a path a policy may name (see
    :func:`engine.policy.locate.log_path_problem`) or uses a variable that is not set.
    """
    if explicit not in (None, ""):
        return Path(os.path.expanduser(str(explicit)))
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(os.path.expanduser(env))
    configured = getattr(policy, "usage_log", None)
    if configured:
        return _policy_log_path(str(configured), policy)
    return default_log_path()


def _policy_log_path(configured: str, policy: Any) -> Path:
    from engine.diagnostics import UsageError
    from engine.policy.locate import expand_policy_path, log_path_problem

    source = getattr(policy, "source", "the policy")
    why = log_path_problem(configured)
    try:
        if why:
            raise ValueError(why)
        path = Path(expand_policy_path(configured))
    except ValueError as exc:
        raise UsageError(f"{source}: usage_log {configured!r}: {exc}") from None
    files = getattr(policy, "files", ())
    if not path.is_absolute() and files:
        path = Path(files[0][0]).parent / path
    return path
