"""How well a policy's detector agrees with labelled tasks: accuracy, per-tier precision and recall, the
confusion matrix, the misclassified items, what the errors cost in tokens and how well the confidence is
calibrated (``ctxbudget accuracy``, and the CI gate on the default policy).

The cost of an error is the budget the task gets at the detected tier minus the budget at its label, for the
task's agent (the ``agent`` of its line when the policy knows it, else the reference agent: the policy's
first). Positive differences are over-allocation, negative ones under-allocation. The calibration error is
the expected calibration error (ECE) of the confidence over 10 equal-width bins.
"""

from __future__ import annotations

from engine.records import Record

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Iterable, Mapping

from engine.records import rounded, to_dict


class TierScore(Record):
    """Precision and recall of one tier (None when undefined: nothing detected as / labelled with it)."""

    tier: str
    precision: float | None
    recall: float | None
    support: int  # tasks labelled with this tier

    to_dict = to_dict


class Miss(Record):
    """A task detected as another tier than its label."""

    id: Any
    text: str
    expected: str
    detected: str
    confidence: float
    signals: tuple[str, ...]

    to_dict = to_dict


class AccuracyReport(Record):
    """The agreement of a detector with labelled tasks."""

    total: int
    correct: int
    tiers: tuple[str, ...]
    per_tier: tuple[TierScore, ...]
    confusion: Mapping[str, Mapping[str, int]]  # expected tier → detected tier → count
    misses: tuple[Miss, ...] = ()
    cost: "ErrorCost | None" = None
    calibration_error: float = 0.0
    mean_confidence: float = 0.0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    # The JSON form: the accuracy (a property) after the counts, the rates rounded, the misses last.
    _json_fields = ("total", "correct", "accuracy", "per_tier", "confusion", "cost", "calibration_error",
                    "mean_confidence", "misses")
    _json_names = {"misses": "misclassified"}
    _json_convert = {"accuracy": rounded(4), "calibration_error": rounded(4), "mean_confidence": rounded(4)}
    to_dict = to_dict


class ErrorCost(Record):
    """What the misclassified tasks cost in tokens, against the budgets their labels would give."""

    over_tokens: int  # sum of (detected budget − labelled budget) where positive
    over_tasks: int
    under_tokens: int  # sum of (labelled budget − detected budget) where positive
    under_tasks: int
    labelled_tokens: int  # the budgets of all tasks at their labels
    reference_agent: str | None  # the agent that costed tasks without a known one

    to_dict = to_dict


def measure(policy: Any, tasks: Iterable[tuple]) -> AccuracyReport:
    """Detect each ``(id, text, expected tier, context[, agent])`` with ``policy`` and compare."""

    tiers = tuple(t.id for t in policy.tiers)
    confusion = {e: {d: 0 for d in tiers} for e in tiers}
    misses = []
    total = correct = 0
    confidences: list[float] = []
    right: list[bool] = []
    costing = _Costing(policy)
    for task in tasks:
        task_id, text, expected, context = task[:4]
        detection = policy.detect(text, context)
        total += 1
        confusion[expected][detection.tier] += 1
        confidences.append(detection.confidence)
        right.append(detection.tier == expected)
        costing.add(task[4] if len(task) > 4 else None, expected, detection.tier)
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
    return AccuracyReport(total, correct, tiers, tuple(per_tier), confusion, tuple(misses), costing.result(),
                          calibration_error(confidences, right), sum(confidences) / total if total else 0.0)


class _Costing:
    """Adds up the token cost of each task's error for its agent (else the reference agent)."""

    def __init__(self, policy: Any):
        self.policy = policy
        agents = list(getattr(policy, "agents", {}) or {})
        self.reference = agents[0] if agents else None
        self.over = self.over_n = self.under = self.under_n = self.labelled = 0
        self.used_reference = False

    def _budget(self, agent: str, tier: str) -> int:
        return self.policy.allocate(agent, tier).budget

    def add(self, agent: Any, expected: str, detected: str) -> None:
        who = None
        if isinstance(agent, str):
            try:
                who = self.policy.resolve_agent(agent)
            except Exception:  # noqa: BLE001 - an unknown agent is costed as the reference one
                who = None
        if who is None:
            who = self.reference
            self.used_reference = True
        if who is None:
            return
        labelled = self._budget(who, expected)
        self.labelled += labelled
        if detected != expected:
            difference = self._budget(who, detected) - labelled
            if difference > 0:
                self.over += difference
                self.over_n += 1
            elif difference < 0:
                self.under -= difference
                self.under_n += 1

    def result(self) -> ErrorCost | None:
        if self.reference is None:
            return None
        return ErrorCost(self.over, self.over_n, self.under, self.under_n, self.labelled,
                         self.reference if self.used_reference else None)


ECE_BINS = 10


def calibration_error(confidences: "list[float]", correct: "list[bool]", bins: int = ECE_BINS) -> float:
    """Expected calibration error: the support-weighted mean gap between confidence and accuracy over
    ``bins`` equal-width confidence bins. (Here rather than in :mod:`engine.detect.tune`, which imports this
    module: the import graph has no cycles.)"""
    if not confidences:
        return 0.0
    totals = [[0, 0.0, 0] for _ in range(bins)]  # count, sum of confidence, correct
    for c, ok in zip(confidences, correct):
        b = min(int(c * bins), bins - 1)
        totals[b][0] += 1
        totals[b][1] += c
        totals[b][2] += bool(ok)
    n = len(confidences)
    return sum(abs(s / cnt - right / cnt) * cnt / n for cnt, s, right in totals if cnt)
