"""The one place the adapter calls the packing job: ``policy.pack`` for an agent and task, narrowed to the
scopes an event injects and to what this thread of the session has not been given yet."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Collection

from engine.claude_code.inject import Item
from engine.records import Record


class Packed(Record):
    """What one injection loads: the allocation it packed against, where its tier came from, the items."""

    allocation: Any
    tier_source: str
    confidence: float | None
    signals: tuple[str, ...]
    log_task: bool
    items: tuple[Item, ...]


def memory_root(policy: Any, cwd: str) -> str:
    """The policy's memory root; a relative one is relative to the project (the event's ``cwd``)."""
    root = os.path.expanduser(str(policy.packer.settings.root))
    return root if os.path.isabs(root) else os.path.join(cwd, root)


def pack_items(policy: Any, agent: str, task: str | None, cwd: str, scopes: Collection[str] | None,
               exclude: Collection[str] = ()) -> Packed:
    """Pack ``agent``'s memory for ``task`` (the default tier when None) from the project's memory root,
    keeping the items of ``scopes`` (all when None) whose ``path#section`` is not in ``exclude``."""
    pack = policy.pack(agent, task=task, root=memory_root(policy, cwd))
    items = tuple(
        Item(i.path, i.section, i.scope, i.tokens, i.text) for i in pack.items
        if (scopes is None or i.scope in scopes) and f"{i.path}#{i.section or ''}" not in exclude
    )
    provenance = pack.provenance
    return Packed(pack.allocation, provenance.get("tier_source") or ("detected" if task else "default"),
                  provenance.get("confidence"), tuple(provenance.get("signals") or ()),
                  bool((getattr(policy, "data", None) or {}).get("log_task")), items)


def count_tokens(policy: Any, text: str) -> int:
    """Tokens of ``text`` by the policy's memory counter (the same count packing uses)."""
    from engine.pack.tokens import counter

    return int(counter(policy.packer.settings.counter)(text))
