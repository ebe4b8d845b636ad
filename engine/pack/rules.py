"""Semantic checks of the ``memory:`` section (registered in engine/policy/rules.py, listed in docs/policy.md)."""

from __future__ import annotations

from typing import Iterator

from engine.diagnostics import Problem
from engine.model import RELEVANCE_FEATURES
from engine.pack.settings import template_problem
from engine.policy.yamlsource import Document, json_path


def _at(doc: Document, path: tuple, rule: str, message: str, key: bool = False) -> Problem:
    pos = doc.pos(path, key=key)
    return Problem(pos.file, pos.line, pos.col, rule, message, json_path(path))


def relevance_variables() -> dict:
    """The item features a relevance expression sees, with their types (docs/memory.md)."""
    from engine.expr.types import BOOL, DOUBLE, INT, String

    variables = {"recency_days": DOUBLE, "use_count": INT, "lexical": DOUBLE, "agent_specific": BOOL,
                 "scope": String(), "tokens": INT, "pinned": BOOL, "confidence": DOUBLE}
    assert set(variables) == RELEVANCE_FEATURES
    return variables


def memory_relevance(data: dict, doc: Document) -> Iterator[Problem]:
    """The relevance expression compiles with only the item features, type-checks to a number within the cost
    budget, and gives a number for sample items."""
    from engine.expr import (EvaluationError, ExprCostError, ExprSyntaxError, ExprTypeError, check,
                             compile as compile_expression)

    memory = data.get("memory")
    source = memory.get("relevance") if isinstance(memory, dict) else None
    if not isinstance(source, str):
        return
    path = ("memory", "relevance")
    try:
        check(source, relevance_variables(), expect=("double",), what="the relevance")
    except ExprSyntaxError as exc:  # the rules every expression shares: expression-type, expression-cost
        rule = ("expression-type" if isinstance(exc, ExprTypeError) else
                "expression-cost" if isinstance(exc, ExprCostError) else "memory-relevance")
        pos = doc.pos_in_scalar(path, exc.line, exc.column)
        yield Problem(pos.file, pos.line, pos.col, rule, f"memory relevance, column {exc.column}: {exc.message}",
                      json_path(path))
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
            yield _at(doc, path, "memory-relevance", f"memory relevance fails for an item: {exc}")
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            yield _at(doc, path, "memory-relevance",
                      f"memory relevance must be a number, not {type(value).__name__} ({value!r})")
            return


def memory_template(data: dict, doc: Document) -> Iterator[Problem]:
    """Source and pinned templates use only {agent_type} and {agent_name}, and stay inside the root."""
    memory = data.get("memory") or {}
    for scope, templates in (memory.get("sources") or {}).items():
        for i, template in enumerate(templates):
            why = template_problem(template)
            if why:
                yield _at(doc, ("memory", "sources", scope, i), "memory-template",
                          f"memory source {template!r} of scope {scope!r}: {why}")
    for i, template in enumerate(memory.get("pinned") or ()):
        why = template_problem(template)
        if why:
            yield _at(doc, ("memory", "pinned", i), "memory-template", f"pinned {template!r}: {why}")


def memory_scope(data: dict, doc: Document) -> Iterator[Problem]:
    """Sources and the spill order name only the policy's scopes."""
    import difflib

    memory = data.get("memory") or {}
    scopes = data.get("scopes") or list(dict.fromkeys(s for p in data.get("profiles", {}).values()
                                                      for s in p.get("weights", {})))

    def near(name: str) -> str:
        found = difflib.get_close_matches(name, scopes, n=1)
        return f"; did you mean {found[0]!r}?" if found else ""

    for scope in memory.get("sources") or {}:
        if scope not in scopes:
            yield _at(doc, ("memory", "sources", scope), "memory-scope",
                      f"memory sources for {scope!r}, which is not a scope" + near(scope), key=True)
    for i, scope in enumerate(memory.get("spill") or ()):
        if scope not in scopes:
            yield _at(doc, ("memory", "spill", i), "memory-scope",
                      f"spill order names {scope!r}, which is not a scope" + near(scope))


RULES = (memory_relevance, memory_template, memory_scope)
