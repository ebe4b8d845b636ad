"""Semantic checks of the ``memory:`` section, registered with :func:`engine.policy.rules.check` (docs/policy.md
lists them)."""

from __future__ import annotations

from typing import Iterator

from engine.diagnostics import Problem, did_you_mean
from engine.model import RELEVANCE_FEATURES
from engine.pack.settings import template_problem
from engine.policy.rules import check
from engine.policy.semantics import expression_problem, problem_at
from engine.policy.yamlsource import Document


def relevance_variables() -> dict:
    """The item features a relevance expression sees, with their types (docs/memory.md)."""
    from engine.expr.types import BOOL, DOUBLE, INT, String

    variables = {"recency_days": DOUBLE, "use_count": INT, "lexical": DOUBLE, "agent_specific": BOOL,
                 "scope": String(), "tokens": INT, "pinned": BOOL, "confidence": DOUBLE}
    assert set(variables) == RELEVANCE_FEATURES
    return variables


@check("memory", ("memory-relevance", "the memory relevance expression does not compile, uses a name that is not "
                   "an item feature, or does not give a number ([memory.md](memory.md#relevance))"),
       reports=("expression-type", "expression-cost"))
def memory_relevance(data: dict, doc: Document) -> Iterator[Problem]:
    """The relevance expression compiles with only the item features, type-checks to a number within the cost
    budget, and gives a number for sample items."""
    from engine.expr import EvaluationError, ExprSyntaxError, check as check_types, compile as compile_expression

    memory = data.get("memory")
    source = memory.get("relevance") if isinstance(memory, dict) else None
    if not isinstance(source, str):
        return
    path = ("memory", "relevance")
    try:
        check_types(source, relevance_variables(), expect=("double",), what="the relevance")
    except ExprSyntaxError as exc:  # the rules every expression shares: expression-type, expression-cost
        yield expression_problem(doc, path, "memory-relevance", "memory relevance,", exc)
        return
    program = compile_expression(source, names=RELEVANCE_FEATURES)
    samples = ({"recency_days": 3.5, "use_count": 4, "lexical": 0.5, "agent_specific": True, "scope": "global",
                "tokens": 800, "pinned": False, "confidence": 0.5},
               {"recency_days": 0.0, "use_count": 0, "lexical": 0.0, "agent_specific": False, "scope": "global",
                "tokens": 0, "pinned": True, "confidence": 1.0})
    for sample in samples:
        try:
            value = program.evaluate(sample)
        except EvaluationError as exc:
            yield problem_at(doc, path, "memory-relevance", f"memory relevance fails for an item: {exc}")
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            yield problem_at(doc, path, "memory-relevance",
                             f"memory relevance must be a number, not {type(value).__name__} ({value!r})")
            return


@check("memory", ("memory-template", "a memory source or pinned template uses a placeholder other than "
                   "`{agent_type}`, `{agent_name}`, or leaves the memory root"))
def memory_template(data: dict, doc: Document) -> Iterator[Problem]:
    """Source and pinned templates use only {agent_type} and {agent_name}, and stay inside the root."""
    memory = data.get("memory") or {}
    for scope, templates in (memory.get("sources") or {}).items():
        for i, template in enumerate(templates):
            why = template_problem(template)
            if why:
                yield problem_at(doc, ("memory", "sources", scope, i), "memory-template",
                                 f"memory source {template!r} of scope {scope!r}: {why}")
    for i, template in enumerate(memory.get("pinned") or ()):
        why = template_problem(template)
        if why:
            yield problem_at(doc, ("memory", "pinned", i), "memory-template", f"pinned {template!r}: {why}")


@check("memory", ("memory-scope", "memory `sources` or the `spill` order name a scope missing from `scopes`"))
def memory_scope(data: dict, doc: Document) -> Iterator[Problem]:
    """Sources and the spill order name only the policy's scopes."""
    memory = data.get("memory") or {}
    scopes = data.get("scopes") or list(dict.fromkeys(s for p in data.get("profiles", {}).values()
                                                      for s in p.get("weights", {})))

    for scope in memory.get("sources") or {}:
        if scope not in scopes:
            yield problem_at(doc, ("memory", "sources", scope), "memory-scope",
                             f"memory sources for {scope!r}, which is not a scope" + did_you_mean(scope, scopes),
                             key=True)
    for i, scope in enumerate(memory.get("spill") or ()):
        if scope not in scopes:
            yield problem_at(doc, ("memory", "spill", i), "memory-scope",
                             f"spill order names {scope!r}, which is not a scope" + did_you_mean(scope, scopes))

