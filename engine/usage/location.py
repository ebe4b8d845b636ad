"""Where the usage log is: ``--log``, else ``$CTXBUDGET_LOG``, else the policy's ``usage_log``, else a per-user
default (``$XDG_STATE_HOME/ctxbudget/usage.jsonl``, by default ``~/.local/state/ctxbudget/usage.jsonl``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

ENV_VAR = "CTXBUDGET_LOG"


def default_log_path() -> Path:
    """The per-user default log."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "ctxbudget" / "usage.jsonl"


def resolve_log_path(explicit: str | os.PathLike | None = None, policy: Any = None) -> Path:
    """The log to use. A relative ``usage_log`` in a policy is relative to that policy's file."""
    if explicit not in (None, ""):
        return Path(os.path.expanduser(str(explicit)))
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(os.path.expanduser(env))
    configured = policy.data.get("usage_log") if policy is not None else None
    if configured:
        path = Path(os.path.expanduser(os.path.expandvars(configured)))
        files = getattr(policy, "files", ())
        if not path.is_absolute() and files:
            path = Path(files[0][0]).parent / path
        return path
    return default_log_path()
