"""Golden cases: the examples a policy carries about itself, run by ``ctxbudget test`` and by pytest.

Budget cases say agent + tier → budget (and scopes); task cases say task (+ context) → detected tier.

A policy that ``extends:`` another inherits its examples (when it writes none of its own in that section),
and those pin the *parent's* numbers, which the child usually changes on purpose. So only the policy's own
examples run unless ``inherited=True`` (``ctxbudget test --inherited``); each example knows which file wrote it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

from engine.diagnostics import LookupFailed
from engine.records import Record, to_dict


class ExampleResult(Record):
    """One golden case: what the policy says it should give, and what it gives."""

    kind: str  # "budget" or "task"
    index: int
    subject: str  # "dbt-expert @ complex", or the task text
    expected: Any
    actual: Any
    passed: bool
    detail: str = ""
    origin: str | None = None  # the parent file that wrote the example; None for the policy's own

    @property
    def inherited(self) -> bool:
        """Whether one of the policy's ``extends`` parents wrote the example."""
        return self.origin is not None

    _json_fields = ("kind", "index", "subject", "expected", "actual", "passed", "detail", "inherited", "origin")
    to_dict = to_dict


def knows_origins(policy: Any) -> bool:
    """Whether ``policy`` knows which file wrote each example: it extends nothing, or its loading said (a
    compiled-policy cache entry written before origins were kept does not)."""
    return len(policy.files) <= 1 or "example_origins" in policy.artifacts


def inherited_count(policy: Any) -> int:
    """How many of ``policy``'s examples come from its ``extends`` parents."""
    return sum(1 for e in (*policy.budget_examples, *policy.task_examples) if e.origin)


def run_examples(policy: Any, inherited: bool = False) -> list[ExampleResult]:
    """Run the golden examples ``policy``'s own file writes; with ``inherited``, its parents' as well."""
    results = []
    for i, example in enumerate(policy.budget_examples):
        if example.origin and not inherited:
            continue
        subject = f"{example.agent} @ {example.tier}"
        expected: dict = {"budget": example.budget}
        if example.scopes is not None:
            expected["scopes"] = dict(example.scopes)
        try:
            allocation = policy.allocate(example.agent, example.tier)
        except LookupFailed as exc:
            results.append(ExampleResult("budget", i, subject, expected, None, False, str(exc),
                                         example.origin or None))
            continue
        actual: dict = {"budget": allocation.budget}
        if example.scopes is not None:
            actual["scopes"] = dict(allocation.scopes)
        results.append(ExampleResult("budget", i, subject, expected, actual, actual == expected, "",
                                     example.origin or None))
    for i, example in enumerate(policy.task_examples):
        if example.origin and not inherited:
            continue
        detection = policy.detect(example.task, example.context or None)
        fired = ", ".join(h.signal for h in detection.hits) or "no signal fired"
        results.append(ExampleResult("task", i, example.task, example.tier, detection.tier,
                                     detection.tier == example.tier,
                                     "" if detection.tier == example.tier else f"{detection.tier} ({fired})",
                                     example.origin or None))
    return results
