"""Policies: locate → read (with positions) → merge ``extends`` → schema → semantic checks → compile.

The pipeline in one place::

    problems, policy = check_policy(path)     # for `ctxbudget validate`
    policy = load_policy(path)                # raises PolicyError with the problems
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.diagnostics import PolicyError, Problem
from engine.policy.compiled import Policy
from engine.policy.locate import locate_policy

__all__ = ["Policy", "PolicyError", "check_policy", "load_policy", "locate_policy"]


def check_policy(path: str | os.PathLike | None = None) -> tuple[list[Problem], Policy | None]:
    """Validate the policy at ``path`` (located as the CLI does when None): its problems, and the compiled
    policy when there are none. Raises UsageError when the file cannot be read."""
    from engine.policy.extends import display_path, load_chain
    from engine.policy.schema import schema_problems
    from engine.policy.semantics import semantic_problems

    file = locate_policy(path)
    label = str(path) if path not in (None, "") and Path(str(path)).exists() else display_path(file)
    try:
        loaded = load_chain(file, label)
    except PolicyError as exc:
        return exc.problems, None
    problems = schema_problems(loaded.doc)
    if problems:
        return problems, None
    problems = semantic_problems(loaded.doc)
    if any(p.severity == "error" for p in problems):
        return problems, None
    policy = Policy.from_data(loaded.doc.data, source=label, files=tuple(loaded.files))
    return problems, policy


def load_policy(path: str | os.PathLike | None = None) -> Policy:
    """The compiled policy at ``path`` (``--policy`` / ``$CTXBUDGET_POLICY`` / ``./ctxbudget.yaml`` / the
    bundled default when None). Raises :class:`PolicyError` when it is invalid."""
    problems, policy = check_policy(path)
    if policy is None:
        raise PolicyError(problems)
    return policy
