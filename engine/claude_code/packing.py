"""The one place the adapter calls the packing job: ``policy.pack`` for an agent and task, narrowed to the
scopes an event injects and to what this thread of the session has not been given yet."""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Collection

from engine.claude_code.inject import Item
from engine.records import Record


INDEX_SECONDS = 1.5
"""The longest a hook spends bringing the memory index up to date, at most 30 % of the hook's own time-out
(``claude_code.timeout_ms``, 5 s by default; Claude Code's is 10 s as ``ctxbudget init`` installs it). A refresh
past it stops, keeps what it read (the next event goes on from there) and the pack is made from what is
indexed: a 100,000-file root takes about 15 s of CPU to index cold, so a hook would otherwise time out and
inject nothing, every time."""


class Packed(Record):
    """What one injection loads: the allocation it packed against, where its tier came from, the items;
    ``partial``: the memory index was incomplete (its refresh stopped at the hook's deadline)."""

    allocation: Any
    tier_source: str
    confidence: float | None
    signals: tuple[str, ...]
    log_task: bool
    items: tuple[Item, ...]
    partial: bool = False


def memory_root(policy: Any, cwd: str) -> str:
    """The policy's memory root; a relative one is relative to the project (the event's ``cwd``)."""
    root = os.path.expanduser(str(policy.packer.settings.root))
    return root if os.path.isabs(root) else os.path.join(cwd, root)


def index_deadline(policy: Any) -> Any:
    """The deadline of a hook's index refresh (:data:`INDEX_SECONDS`, or 30 % of the hook's time-out when
    that is shorter), from now."""
    from engine.claude_code.settings import HookSettings
    from engine.pack.index import Deadline

    return Deadline(min(INDEX_SECONDS, HookSettings.of(policy).timeout_ms * 0.3 / 1000))


def pack_items(policy: Any, agent: str, task: str | None, cwd: str, scopes: Collection[str] | None,
               exclude: Collection[str] = (), deadline: Any = None) -> Packed:
    """Pack ``agent``'s memory for ``task`` (the default tier when None) from the project's memory root,
    keeping the items of ``scopes`` (all when None) whose ``path#section`` is not in ``exclude``. The index's
    refresh stops at ``deadline`` (default :func:`index_deadline`)."""
    pack = policy.pack(agent, task=task, root=memory_root(policy, cwd),
                       deadline=deadline if deadline is not None else index_deadline(policy))
    items = tuple(
        Item(i.path, i.section, i.scope, i.tokens, i.text) for i in pack.items
        if (scopes is None or i.scope in scopes) and f"{i.path}#{i.section or ''}" not in exclude
    )
    provenance = pack.provenance
    return Packed(pack.allocation, provenance.get("tier_source") or ("detected" if task else "default"),
                  provenance.get("confidence"), tuple(provenance.get("signals") or ()),
                  bool((getattr(policy, "data", None) or {}).get("log_task")), items, pack.partial)


def count_tokens(policy: Any, text: str) -> int:
    """Tokens of ``text`` by the policy's memory counter (the same count packing uses)."""
    from engine.pack.tokens import counter

    return int(counter(policy.packer.settings.counter)(text))
