"""Memory packing: load the right memory into each agent's budget (docs/memory.md).

    pack = policy.pack("dbt-expert", task="Why is the orders model slow?", root=".claude/memory")
    pack.markdown()      # the memory, ready to inject
    pack.manifest()      # budget, per-scope allowances and use, loaded and skipped items

The job compiles the policy's ``memory:`` section (:class:`MemorySettings`, checked by
:mod:`engine.pack.rules`) into a :class:`Packer`, which keeps an SQLite index per memory root
(:mod:`engine.pack.index`). Importing this package is cheap: sqlite3 loads with the packer.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start (a hook is a new process)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

__all__ = ["Pack", "PackItem", "Packer", "Skipped", "MemorySettings", "build_packer"]


def build_packer(data: Any, scopes: tuple[str, ...], programs: Any) -> Any:
    """The :class:`Packer` of a policy's ``memory:`` section; ``programs`` compiles its relevance
    expression (a :class:`~engine.policy.programs.ProgramTable`)."""
    from engine.model import RELEVANCE_FEATURES
    from engine.pack.packer import Packer
    from engine.pack.settings import MemorySettings

    settings = MemorySettings.from_data(data)
    return Packer(settings, programs.get(settings.relevance, RELEVANCE_FEATURES), scopes)


def __getattr__(name: str) -> Any:
    if name in ("Pack", "PackItem", "Skipped"):
        from engine.pack import result

        return getattr(result, name)
    if name == "Packer":
        from engine.pack.packer import Packer

        return Packer
    if name == "MemorySettings":
        from engine.pack.settings import MemorySettings

        return MemorySettings
    raise AttributeError(name)
