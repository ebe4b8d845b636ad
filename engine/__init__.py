"""ctxbudget: token budgets for LLM agents' memory, driven by a YAML policy.

The public API is small and imported lazily so that ``import engine`` stays cheap::

    import engine
    policy = engine.load_policy()                  # bundled default, or a path
    allocation = policy.allocate("dbt-expert", "complex")
"""

# No `from __future__ import annotations` here or in engine.cli: it imports the __future__ module (~0.3 ms of
# `ctxbudget --version`). The annotations below are strings.
TYPE_CHECKING = False  # not `from typing import TYPE_CHECKING`: importing typing costs every start (--version)

from engine.version import __version__

__all__ = ["__version__", "load_policy", "Policy", "PolicyError"]

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from engine.diagnostics import PolicyError
    from engine.policy import Policy, load_policy


def __getattr__(name: str) -> "Any":
    # PEP 562: keep `import engine` free of the policy machinery until it is used.
    if name in ("load_policy", "Policy"):
        from engine import policy

        return getattr(policy, name)
    if name == "PolicyError":
        from engine.diagnostics import PolicyError

        return PolicyError
    raise AttributeError(f"module 'engine' has no attribute {name!r}")
