"""The plain data of complexity detection: signals, the hits of a task, its detection and its evaluation.

Kept apart from :mod:`engine.model` so that commands which only allocate budgets do not pay for building
these classes at start-up.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Mapping, NamedTuple

from engine.model import Allocation


class Hit(NamedTuple):
    """A signal that fired on a task: what it adds to which tier, and where in the task it matched.

    A NamedTuple rather than a frozen dataclass because the detector builds several per task on its hot
    path (a frozen dataclass costs 4× as much to build); it is just as immutable. ``span`` is a character span
    of the original task
    (None for a derived signal, which has no text); ``tier`` and ``weight`` are the signal's main weight
    (None and 0 for a signal that only counts or boosts); ``weights`` all of them.
    """

    signal: str
    tier: str | None
    weight: float
    text: str
    span: tuple[int, int] | None
    boost: int = 0
    weights: Mapping[str, float] = MappingProxyType({})
    group: str | None = None

    def to_dict(self) -> dict:
        """The ``signals`` entries of ``evaluate --json`` and ``detect --json``."""
        return {"id": self.signal, "tier": self.tier, "weight": self.weight, "text": self.text,
                "span": list(self.span) if self.span is not None else None}


class Detection(NamedTuple):
    """The complexity tier of a task, how sure the detector is, and why.

    ``scores`` per tier are the sums of the weights of the signals that fired; the best score gives
    ``base_tier``, the boosts of the signals that fired move it by ``boost`` steps to ``tier``. A NamedTuple,
    like :class:`Hit`, because the detector builds one per task on its hot path.
    """

    tier: str
    confidence: float
    scores: Mapping[str, float]
    hits: tuple[Hit, ...]
    base_tier: str
    boost: int = 0
    ask: tuple[int, int] | None = None  # the span of the ask when it is narrower than the task

    @property
    def runner_up(self) -> str | None:
        """The best-scoring tier other than ``tier``; ties go to the tier nearest ``tier``, then the smaller
        (None with a single tier). Worked out when read, off the detector's hot path."""
        names = list(self.scores)
        chosen = names.index(self.tier)
        others = [r for r in range(len(names)) if r != chosen]
        if not others:
            return None
        return names[min(others, key=lambda r: (-self.scores[names[r]], abs(r - chosen), r))]

    def to_dict(self) -> dict:
        return {"tier": self.tier, "confidence": self.confidence, "scores": dict(self.scores),
                "base_tier": self.base_tier, "boost": self.boost, "signals": [h.to_dict() for h in self.hits]}


class Evaluation(NamedTuple):
    """A task evaluated for an agent: its tier (detected, or given) and the budget that follows."""

    allocation: Allocation
    confidence: float
    detection: Detection | None  # None when the tier was given explicitly

    @property
    def tier(self) -> str:
        return self.allocation.tier

    @property
    def hits(self) -> tuple[Hit, ...]:
        return self.detection.hits if self.detection is not None else ()

    def to_dict(self) -> dict:
        """The ``evaluate --json`` contract: ``budget --json`` plus tier, confidence and signals."""
        return {**self.allocation.to_dict(), "confidence": self.confidence,
                "signals": [h.to_dict() for h in self.hits]}


class Signal(NamedTuple):
    """A complexity signal of the policy: what makes it fire, and what it does when it fires.

    Exactly one of ``words`` (literal words and phrases), ``patterns`` (RE2) or ``when`` (an expression)
    says when it fires; ``kind`` names which. ``weights`` add to tier scores, ``boost`` moves the chosen tier
    up (positive) or down (negative), ``group`` counts it among distinct things named (``count.system``).
    """

    id: str
    kind: str  # "words", "pattern" or "when"
    words: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    when: str | None = None
    weights: Mapping[str, float] = MappingProxyType({})
    boost: int = 0
    group: str | None = None
    inflect: bool = True
    description: str = ""
    scope: str = "anywhere"  # "ask": the signal fires only when it matches in the ask (``in: ask``)

    @property
    def main(self) -> tuple[str | None, float]:
        """The tier this signal weighs most on (by absolute weight, first listed on ties) and that weight."""
        tier, weight = None, 0.0
        for name, value in self.weights.items():
            if abs(value) > abs(weight):
                tier, weight = name, float(value)
        return tier, weight

    def to_dict(self) -> dict:
        out: dict = {"id": self.id, "kind": self.kind}
        if self.kind == "words":
            out["words"] = list(self.words)
        elif self.kind == "pattern":
            out["pattern"] = list(self.patterns)
        else:
            out["when"] = self.when
        out.update(weights=dict(self.weights), boost=self.boost, group=self.group, description=self.description,
                   **{"in": self.scope})
        return out
