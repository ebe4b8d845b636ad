"""Golden cases: the examples a policy carries about itself, run by ``ctxbudget test`` and by pytest.

Budget cases say agent + tier → budget (and scopes); task cases say task (+ context) → detected tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.diagnostics import LookupFailed


@dataclass(frozen=True, slots=True)
class ExampleResult:
    """One golden case: what the policy says it should give, and what it gives."""

    kind: str  # "budget" or "task"
    index: int
    subject: str  # "dbt-expert @ complex", or the task text
    expected: Any
    actual: Any
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return {"kind": self.kind, "index": self.index, "subject": self.subject, "expected": self.expected,
                "actual": self.actual, "passed": self.passed, "detail": self.detail}


def run_examples(policy: Any) -> list[ExampleResult]:
    """Run every golden example of ``policy``."""
    results = []
    for i, example in enumerate(policy.budget_examples):
        subject = f"{example.agent} @ {example.tier}"
        expected: dict = {"budget": example.budget}
        if example.scopes is not None:
            expected["scopes"] = dict(example.scopes)
        try:
            allocation = policy.allocate(example.agent, example.tier)
        except LookupFailed as exc:
            results.append(ExampleResult("budget", i, subject, expected, None, False, str(exc)))
            continue
        actual: dict = {"budget": allocation.budget}
        if example.scopes is not None:
            actual["scopes"] = dict(allocation.scopes)
        results.append(ExampleResult("budget", i, subject, expected, actual, actual == expected))
    for i, example in enumerate(policy.task_examples):
        detection = policy.detect(example.task, example.context or None)
        fired = ", ".join(h.signal for h in detection.hits) or "no signal fired"
        results.append(ExampleResult("task", i, example.task, example.tier, detection.tier,
                                     detection.tier == example.tier,
                                     "" if detection.tier == example.tier else f"{detection.tier} ({fired})"))
    return results
