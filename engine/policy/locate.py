"""Which policy a command uses: ``--policy``, else ``$CTXBUDGET_POLICY``, else ``./ctxbudget.yaml``, else the
bundled default."""

from __future__ import annotations

import os
from pathlib import Path

from engine.resources import bundled_policy

ENV_VAR = "CTXBUDGET_POLICY"
LOCAL_FILE = "ctxbudget.yaml"


def locate_policy(path: str | os.PathLike | None = None) -> Path:
    """The policy file to load. ``path`` may also name a bundled policy (``default``)."""
    chosen = path if path not in (None, "") else os.environ.get(ENV_VAR) or None
    if chosen is not None:
        chosen_path = Path(chosen)
        if not chosen_path.exists():
            bundled = bundled_policy(str(chosen))
            if bundled is not None:
                return bundled
        return chosen_path
    local = Path(LOCAL_FILE)
    if local.is_file():
        return local
    default = bundled_policy("default")
    assert default is not None, "the bundled default policy is missing from the installation"
    return default
