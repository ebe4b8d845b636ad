"""How well a policy's detector agrees with labelled tasks: accuracy, per-tier precision and recall, the
confusion matrix and the misclassified items (``ctxbudget accuracy``, and the CI gate on the default policy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


@dataclass(frozen=True, slots=True)
class TierScore:
    """Precision and recall of one tier (None when undefined: nothing detected as / labelled with it)."""

    tier: str
    precision: float | None
    recall: float | None
    support: int  # tasks labelled with this tier

    def to_dict(self) -> dict:
        return {"tier": self.tier, "precision": self.precision, "recall": self.recall, "support": self.support}


@dataclass(frozen=True, slots=True)
class Miss:
    """A task detected as another tier than its label."""

    id: Any
    text: str
    expected: str
    detected: str
    confidence: float
    signals: tuple[str, ...]

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "expected": self.expected, "detected": self.detected,
                "confidence": self.confidence, "signals": list(self.signals)}


@dataclass(frozen=True, slots=True)
class AccuracyReport:
    """The agreement of a detector with labelled tasks."""

    total: int
    correct: int
    tiers: tuple[str, ...]
    per_tier: tuple[TierScore, ...]
    confusion: Mapping[str, Mapping[str, int]]  # expected tier → detected tier → count
    misses: tuple[Miss, ...] = field(default=())

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return {"total": self.total, "correct": self.correct, "accuracy": round(self.accuracy, 4),
                "per_tier": [t.to_dict() for t in self.per_tier],
                "confusion": {e: dict(row) for e, row in self.confusion.items()},
                "misclassified": [m.to_dict() for m in self.misses]}


def measure(policy: Any, tasks: Iterable[tuple[Any, str, str, Mapping | None]]) -> AccuracyReport:
    """Detect each ``(id, text, expected tier, context)`` with ``policy`` and compare."""
    tiers = tuple(t.id for t in policy.tiers)
    confusion = {e: {d: 0 for d in tiers} for e in tiers}
    misses = []
    total = correct = 0
    for task_id, text, expected, context in tasks:
        detection = policy.detect(text, context)
        total += 1
        confusion[expected][detection.tier] += 1
        if detection.tier == expected:
            correct += 1
        else:
            misses.append(Miss(task_id, text, expected, detection.tier, detection.confidence,
                               tuple(h.signal for h in detection.hits)))
    per_tier = []
    for tier in tiers:
        hits = confusion[tier][tier]
        detected = sum(row[tier] for row in confusion.values())
        support = sum(confusion[tier].values())
        per_tier.append(TierScore(tier, round(hits / detected, 4) if detected else None,
                                  round(hits / support, 4) if support else None, support))
    return AccuracyReport(total, correct, tiers, tuple(per_tier), confusion, tuple(misses))
