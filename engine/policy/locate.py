"""Which policy a command uses — ``--policy``, else ``$CTXBUDGET_POLICY``, else ``./ctxbudget.yaml``, else the
bundled default — and reading its bytes within the size a policy may have."""

from __future__ import annotations

import os

from engine.resources import bundled_policy

ENV_VAR = "CTXBUDGET_POLICY"
LOCAL_FILE = "ctxbudget.yaml"
MAX_BYTES = 1 << 20  # 1 MiB: a policy of 3,000 signals is about 300 KB


def locate_policy(path: str | os.PathLike | None = None) -> str:
    """The path of the policy file to load. ``path`` may also name a bundled policy (``default``)."""
    chosen = os.fspath(path) if path not in (None, "") else os.environ.get(ENV_VAR) or None
    if chosen is not None:
        if not os.path.exists(chosen):
            bundled = bundled_policy(chosen)
            if bundled is not None:
                return bundled
        return chosen
    if os.path.isfile(LOCAL_FILE):
        return LOCAL_FILE
    default = bundled_policy("default")
    if default is None:  # pragma: no cover - a broken installation
        raise FileNotFoundError("the bundled default policy is missing from the installation")
    return default


def display_path(path: str | os.PathLike) -> str:
    """A path as a person wants to read it: relative to the working directory when under it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive
        return os.fspath(path)
    return os.fspath(path) if rel == ".." or rel.startswith(".." + os.sep) else rel


def read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of ``path``, refusing to read more than a policy may hold (one byte over tells)."""
    with open(path, "rb") as handle:
        return handle.read(MAX_BYTES + 1)
