"""The one registry of rule ids: every id ``ctxbudget validate`` (or a task-file reader) can report, registered
once, beside the code that reports it, with what it means.

Two ways in, as yamllint's rule modules do it:

- a semantic check registers itself with :func:`check` — the id it reports and its summary — and
  :func:`engine.policy.semantics.semantic_problems` runs every registered check;
- a stage that reports problems without a check function (reading YAML, ``extends``, the schema, task files)
  registers its ids with :func:`register`.

The registry is complete once the modules that register have been imported: the policy pipeline
(:func:`engine.policy.rule_registry`) imports the jobs' rule modules (``engine/<job>/rules.py``), so nothing
here, or in the check stage, imports a job. docs/policy.md's rule table is :func:`markdown_table` of it
(``tests/test_rules.py`` compares them), and the completeness test checks that every id the code emits is here.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from engine.diagnostics import Problem
from engine.records import Record

STAGES = ("reading", "extends", "schema", "policy", "detection", "tasks", "memory", "claude_code", "paths",
          "recommendations", "expressions")
"""Where a rule belongs, in the order docs/policy.md lists them."""


class Rule(Record):
    """A rule id, what it means (markdown, as docs/policy.md shows it) and the stage that reports it."""

    id: str
    summary: str
    stage: str


Check = Callable[[dict, Any], Iterator[Problem]]
"""A semantic check: ``check(data, doc)`` yields the problems of the (schema-valid) policy ``data``; ``doc``
(an :class:`engine.policy.yamlsource.Document`) gives the YAML positions."""

RULES: dict[str, Rule] = {}
"""Rule id → :class:`Rule`, in registration order (see :func:`ordered` for the documented order)."""

CHECKS: list[Check] = []
"""The registered semantic checks, in registration order."""


def register(rule_id: str, summary: str, stage: str) -> Rule:
    """Register ``rule_id`` once; registering the same id again with another summary is a programming error."""
    if stage not in STAGES:
        raise ValueError(f"rule {rule_id!r}: unknown stage {stage!r} (stages: {', '.join(STAGES)})")
    rule = Rule(rule_id, summary, stage)
    found = RULES.setdefault(rule_id, rule)
    if found != rule:
        raise ValueError(f"rule {rule_id!r} is registered twice: {found.summary!r} and {summary!r}")
    return found


def check(stage: str, *rules: tuple[str, str], reports: tuple[str, ...] = ()) -> Callable[[Check], Check]:
    """A decorator registering a semantic check with the ``(id, summary)`` pairs of the rules it introduces,
    and ``reports``: ids it also reports that another registration introduced (``duplicate-id``, ...)."""

    def decorate(function: Check) -> Check:
        for rule_id, summary in rules:
            register(rule_id, summary, stage)
        function.rule_ids = tuple(r for r, _ in rules) + tuple(reports)  # type: ignore[attr-defined]
        if function not in CHECKS:
            CHECKS.append(function)
        return function

    return decorate


def ordered() -> list[Rule]:
    """The registered rules in the documented order: by stage, then as registered."""
    position = {stage: i for i, stage in enumerate(STAGES)}
    return sorted(RULES.values(), key=lambda r: position[r.stage])  # sorted() is stable: registration order


def markdown_table() -> str:
    """docs/policy.md's rule table."""
    rows = ["| rule | meaning |", "|---|---|"]
    rows += [f"| `{rule.id}` | {rule.summary} |" for rule in ordered()]
    return "\n".join(rows) + "\n"
