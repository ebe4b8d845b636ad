"""Plain typed data shared by every job: immutable, no I/O, no YAML.

These are ``NamedTuple`` classes rather than frozen dataclasses on purpose: they are built on every start of
every command, and importing :mod:`dataclasses` (which imports :mod:`inspect`) and generating a frozen
dataclass cost about 12 ms of a 50 ms start-up budget; a NamedTuple class costs a tenth of that. They are
just as immutable and typed.
"""

from __future__ import annotations

from types import MappingProxyType

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Mapping

from engine.records import Record, to_dict


def frozen_map(items: Mapping) -> Mapping:
    """A read-only view of a copy of ``items`` (keeps insertion order)."""
    return MappingProxyType(dict(items))


class Profile(Record):
    """A budget profile: the base and maximum tokens of an agent class and how they split across scopes."""

    id: str
    base: int
    max: int
    weights: Mapping[str, float]
    description: str = ""

    _json_fields = ("id", "description", "base", "max", "weights")
    to_dict = to_dict


class Tier(Record):
    """A complexity tier; ``rank`` is its position in the policy's ordered list (0 = smallest)."""

    id: str
    multiplier: float
    rank: int
    description: str = ""
    examples: tuple[str, ...] = ()

    _json_omit = ("rank",)
    to_dict = to_dict


class Thresholds(Record):
    """Usage fractions at which the monitor raises alerts."""

    info: float = 0.75
    warning: float = 0.90
    critical: float = 1.0

    def items(self) -> tuple[tuple[str, float], ...]:
        return (("info", self.info), ("warning", self.warning), ("critical", self.critical))


class Allocation(Record):
    """The token budget of one agent invocation and its split across memory scopes."""

    agent: str
    profile: str
    tier: str
    multiplier: float
    budget: int
    capped: bool
    scopes: Mapping[str, int] = MappingProxyType({})

    to_dict = to_dict  # the ``budget --json`` contract


# The memory section's relevance expression (docs/memory.md): the features it sees for each memory item, and
# the default, which reproduces the seed's weights (0.3 recency + 0.3 usage + 0.4 context, +0.3 agent-specific)
# with a BM25 lexical score in place of substring counting: 0.3 · max(0, 1 − days/30) + 0.3 · min(1, uses/10)
# + 0.4 · lexical + 0.3 if agent-specific, written with conditionals (twice as fast to evaluate as max/min). Here, below both the compile stage and the pack job,
# so either can compile it without importing the other.
RELEVANCE_FEATURES = frozenset({"recency_days", "use_count", "lexical", "agent_specific", "scope", "tokens",
                                "pinned", "confidence"})
DEFAULT_RELEVANCE = ("(recency_days < 30.0 ? 0.3 - 0.01 * recency_days : 0.0) + (use_count < 10 ? 0.03 * use_count : 0.3)"
                     " + 0.4 * lexical + (agent_specific ? 0.3 : 0.0)")


def task_hash(task: str | None) -> str | None:
    """``sha256:`` and the first 16 hex digits of the SHA-256 of a task's text (None without a task): what usage
    records keep of a task unless the policy logs its text."""
    if task is None:
        return None
    from engine.digest import sha256_hex

    return "sha256:" + sha256_hex(task)[:16]
