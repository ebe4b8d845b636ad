"""What a pack returns: :class:`Pack` (items per scope, the manifest, markdown ready to inject)."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Mapping, Sequence

from engine.model import Allocation
from engine.records import Record, to_dict


class PackItem(Record):
    """One loaded piece of memory: a whole file (``section`` None) or one section of a split file."""

    path: str  # relative to the memory root, with forward slashes
    section: str | None
    scope: str
    tokens: int  # tokens loaded
    file_tokens: int  # tokens of the whole file
    score: float
    why: str
    text: str
    pinned: bool = False

    _json_omit = ("text", "pinned")
    to_dict = to_dict


class Skipped(Record):
    """A candidate that was not loaded, and why."""

    path: str
    section: str | None
    reason: str

    to_dict = to_dict


class Pack(Record):
    """The memory chosen for one agent invocation.

    ``allowances``: the budget's split per scope; ``used``: tokens loaded per scope (spill included);
    ``spilled``: tokens each scope loaded beyond its allowance from others' leftovers; ``items`` in load
    order; ``passed_over``: the candidates not loaded, as the packer found them (:attr:`skipped` writes their
    reasons); ``provenance``: where the tier came from (see :attr:`engine.usage.UsageRecord.tier_source`);
    ``stats``: what the index refresh did; ``log_error``: why its usage record could not be written, when it
    could not (set with ``_replace`` once the record was tried).
    """

    allocation: Allocation
    root: str
    allowances: Mapping[str, int]
    used: Mapping[str, int]
    spilled: Mapping[str, int]
    items: tuple[PackItem, ...]
    # (path, section, reason): the reason is text, or (tokens, left, scope, allowance) for a candidate that did
    # not fit, written only when asked (most packs never show their skipped items)
    passed_over: Sequence[tuple]
    provenance: Mapping[str, Any]
    stats: Any
    seconds: float
    log_error: str | None = None

    @property
    def skipped(self) -> tuple[Skipped, ...]:
        """The candidates not loaded, with why."""
        return tuple(Skipped(path, section, reason if isinstance(reason, str) else _DOES_NOT_FIT.format(*reason))
                     for path, section, reason in self.passed_over)

    @property
    def partial(self) -> bool:
        """Whether the index this pack was made from was incomplete: its refresh stopped at a deadline (a hook's
        time limit) with changed files not read yet, or before it had walked every folder; the next refresh goes
        on where it stopped."""
        return bool(getattr(self.stats, "partial", False))

    @property
    def agent(self) -> str:
        return self.allocation.agent

    @property
    def budget(self) -> int:
        return self.allocation.budget

    @property
    def tokens(self) -> int:
        """Tokens loaded in all."""
        return sum(item.tokens for item in self.items)

    def __repr__(self) -> str:
        return f"Pack(agent={self.agent!r}, budget={self.budget}, tokens={self.tokens}, items={len(self.items)})"

    def manifest(self) -> dict:
        """The JSON manifest (docs/memory.md)."""
        a = self.allocation
        return {
            "agent": a.agent, "profile": a.profile, "tier": a.tier, "budget": a.budget, "tokens": self.tokens,
            "root": self.root,
            "scopes": {s: {"allowance": self.allowances[s], "used": self.used.get(s, 0),
                           "spilled": self.spilled.get(s, 0)} for s in self.allowances},
            "provenance": {k: v for k, v in self.provenance.items() if k != "task"},
            "loaded": [to_dict(item) for item in self.items],
            # to_dict(Skipped(...)) written out: thousands of them on a large store (tests/test_pack.py checks it)
            "skipped": [{"path": path, "section": section,
                         "reason": reason if isinstance(reason, str) else _DOES_NOT_FIT.format(*reason)}
                        for path, section, reason in self.passed_over],
            "warnings": [f"{p}: corrupt sidecar ignored" for p in self.stats.corrupt_sidecars]
            + ([partial_warning(self.stats)] if self.partial else []),
        }

    def markdown(self) -> str:
        """The loaded memory, ready to inject: each item under a heading with its path (and section)."""
        a = self.allocation
        out = [f"# Memory for {a.agent} ({self.tokens:,} of {a.budget:,} tokens, tier {a.tier})\n"]
        for item in self.items:
            where = item.path + (f" § {item.section}" if item.section else "")
            out.append(f"\n## {where}\n<!-- scope {item.scope}, {item.tokens:,} tokens -->\n\n")
            out.append(item.text.rstrip("\n") + "\n")
        return "".join(out)

    def paths(self) -> list[str]:
        """The loaded files' paths (relative to the root), once each, in load order."""
        return list(dict.fromkeys(item.path for item in self.items))


_DOES_NOT_FIT = "does not fit ({:,} tokens; {:,} left of {}'s {:,})"


def partial_warning(stats: Any) -> str:
    """What a pack made from an incomplete index says (the manifest's ``warnings``, stderr)."""
    pending = getattr(stats, "pending", 0)
    if pending:
        what = (f"memory index incomplete ({pending:,} changed file{'s' if pending != 1 else ''} not read yet: "
                "its refresh stopped at the time limit)")
    else:
        what = "memory index not checked in full (its refresh stopped at the time limit before walking every folder)"
    return what + "; packed from what is indexed, the next pack goes on"
