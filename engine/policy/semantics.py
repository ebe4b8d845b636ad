"""Checks the schema cannot express: references between sections, sums, orderings, duplicates.

Each rule is a small generator over the (schema-valid) policy data yielding :class:`Problem` records; the
table ``RULES`` at the bottom is the one list of them.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterator

from engine import agents as agent_names
from engine.diagnostics import LookupFailed, Problem
from engine.claude_code.rules import claude_code_agents
from engine.pack import rules as memory_rules
from engine.policy import signal_rules
from engine.policy.yamlsource import Document, json_path

WEIGHT_TOLERANCE = 0.001


def _at(doc: Document, path: tuple, rule: str, message: str, key: bool = False) -> Problem:
    pos = doc.pos(path, key=key)
    return Problem(pos.file, pos.line, pos.col, rule, message, json_path(path))


def _did_you_mean(name: str, options: Any) -> str:
    near = difflib.get_close_matches(str(name), [str(o) for o in options], n=1)
    return f"; did you mean {near[0]!r}?" if near else ""


def unknown_profile(data: dict, doc: Document) -> Iterator[Problem]:
    profiles = data.get("profiles", {})
    for agent, profile in data.get("agents", {}).items():
        if profile not in profiles:
            yield _at(doc, ("agents", agent), "unknown-profile",
                      f"agent {agent!r} is assigned to unknown profile {profile!r}" + _did_you_mean(profile, profiles))


def weights_sum(data: dict, doc: Document) -> Iterator[Problem]:
    for name, profile in data.get("profiles", {}).items():
        weights = profile.get("weights", {})
        total = sum(weights.values())
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            terms = " + ".join(f"{scope} {w:g}" for scope, w in weights.items())
            yield _at(doc, ("profiles", name, "weights"), "weights-sum",
                      f"the scope weights of profile {name!r} sum to {total:g}, not 1 ({terms})")


def base_above_max(data: dict, doc: Document) -> Iterator[Problem]:
    for name, profile in data.get("profiles", {}).items():
        if profile.get("base", 0) > profile.get("max", 0):
            yield _at(doc, ("profiles", name, "base"), "base-above-max",
                      f"profile {name!r} has base {profile['base']} above its max {profile['max']}")


def unknown_scope(data: dict, doc: Document) -> Iterator[Problem]:
    scopes = data.get("scopes")
    if scopes is None:
        return
    for name, profile in data.get("profiles", {}).items():
        for scope in profile.get("weights", {}):
            if scope not in scopes:
                yield _at(doc, ("profiles", name, "weights", scope), "unknown-scope",
                          f"profile {name!r} weighs scope {scope!r}, which is not in 'scopes'"
                          + _did_you_mean(scope, scopes), key=True)


def duplicate_id(data: dict, doc: Document) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, tier in enumerate(data.get("tiers", [])):
        tier_id = tier.get("id")
        if tier_id in first:
            line = doc.pos(("tiers", first[tier_id], "id")).line
            yield _at(doc, ("tiers", i, "id"), "duplicate-id", f"tier id {tier_id!r} is already used at line {line}")
        else:
            first[tier_id] = i


def _inherited(doc: Document, path: tuple) -> bool:
    """Whether a parent (``extends``) wrote the value at ``path``: an inherited golden example may name what
    the child dropped; it only runs, and fails, under ``ctxbudget test --inherited``."""
    return doc.pos(path).file != doc.file


def unknown_tier(data: dict, doc: Document) -> Iterator[Problem]:
    tiers = [t.get("id") for t in data.get("tiers", [])]
    default = data.get("default_tier")
    if default is not None and default not in tiers:
        yield _at(doc, ("default_tier",), "unknown-tier", f"default tier {default!r} is not a tier"
                  + _did_you_mean(default, tiers))
    examples = data.get("examples", {})
    for section in ("budgets", "tasks"):
        for i, example in enumerate(examples.get(section, [])):
            tier = example.get("tier")
            if tier not in tiers and not _inherited(doc, ("examples", section, i)):
                yield _at(doc, ("examples", section, i, "tier"), "unknown-tier",
                          f"example uses unknown tier {tier!r}" + _did_you_mean(tier, tiers))


def unknown_agent(data: dict, doc: Document) -> Iterator[Problem]:
    assigned = data.get("agents", {})
    index = agent_names.build_index(assigned)
    examples = data.get("examples", {})
    for section in ("budgets", "tasks"):
        for i, example in enumerate(examples.get(section, [])):
            agent = example.get("agent")
            if agent is None or _inherited(doc, ("examples", section, i)):
                continue
            try:
                agent_names.resolve(agent, assigned, index)
            except LookupFailed as exc:
                yield _at(doc, ("examples", section, i, "agent"), "unknown-agent", f"example: {exc}")


def thresholds_order(data: dict, doc: Document) -> Iterator[Problem]:
    alerts = {"info": 0.75, "warning": 0.90, "critical": 1.0, **data.get("alerts", {})}
    if not alerts["info"] <= alerts["warning"] <= alerts["critical"]:
        yield _at(doc, ("alerts",), "thresholds-order",
                  f"alert thresholds must rise: info {alerts['info']} ≤ warning {alerts['warning']} "
                  f"≤ critical {alerts['critical']}")


def expression_problem(doc: Document, path: tuple, rule: str, what: str, exc: Any) -> Problem:
    """A problem at the position of ``exc`` (an ``ExprSyntaxError``) inside the expression at ``path``:
    type errors are ``expression-type``, a cost bound over the budget ``expression-cost``, others ``rule``."""
    from engine.expr import ExprCostError, ExprTypeError

    if isinstance(exc, ExprTypeError):
        rule = "expression-type"
    elif isinstance(exc, ExprCostError):
        rule = "expression-cost"
    pos = doc.pos_in_scalar(path, exc.line, exc.column)
    return Problem(pos.file, pos.line, pos.col, rule, f"{what} column {exc.column}: {exc.message}", json_path(path))


def check_expression(doc: Document, path: tuple, source: str, variables: dict, rule: str, where: str,
                     expect: tuple[str, ...], what: str) -> Problem | None:
    """Compile and type-check the expression ``source`` at ``path`` against ``variables`` and bound its cost;
    ``where`` starts the message, ``what`` names the expression in it."""
    from engine.expr import ExprSyntaxError, check

    try:
        check(source, variables, expect=expect, what=what)
    except ExprSyntaxError as exc:
        return expression_problem(doc, path, rule, where, exc)
    return None


def budget_formula(data: dict, doc: Document) -> Iterator[Problem]:
    """The formula compiles with only its names, type-checks, and gives whole, non-negative tokens for every
    agent and tier."""
    from engine.budget import DEFAULT_FORMULA, FORMULA_NAMES, formula_bindings, formula_variables, tokens
    from engine.expr import EvaluationError, compile as compile_expression
    from engine.model import Profile, Tier

    budget = data.get("budget")
    source = budget.get("formula", DEFAULT_FORMULA) if isinstance(budget, dict) else DEFAULT_FORMULA
    if not isinstance(source, str):
        return
    path = ("budget", "formula")
    problem = check_expression(doc, path, source, formula_variables(), "budget-formula", "budget formula,",
                               ("double",), "the formula")
    if problem is not None:
        if not isinstance(budget, dict) or "formula" not in budget:
            problem = problem._replace(line=doc.pos(()).line, col=doc.pos(()).col)
        yield problem
        return
    program = compile_expression(source, names=FORMULA_NAMES)
    profiles = data.get("profiles", {})
    tiers = [Tier(t["id"], float(t["multiplier"]), rank) for rank, t in enumerate(data.get("tiers", []))]
    for agent, profile_id in data.get("agents", {}).items():
        if profile_id not in profiles:
            continue
        p = profiles[profile_id]
        profile = Profile(profile_id, p["base"], p["max"], p["weights"])
        for tier in tiers:
            try:
                tokens(program.evaluate(formula_bindings(agent, profile, tier)))
            except (EvaluationError, ValueError) as exc:
                yield _at(doc, path, "budget-formula", f"budget formula fails for {agent} at tier {tier.id}: {exc}")
                return


def recommendation_rules(data: dict, doc: Document) -> Iterator[Problem]:
    """Each recommendation rule's expressions compile, with only the names a rule may use."""
    from engine.recommend import rule_variables

    variables = rule_variables()
    for i, rule in enumerate(data.get("recommendations", {}).get("rules") or ()):
        for field, expect, what in (("when", ("bool",), "the condition"),
                                    ("confidence", ("double",), "the confidence")):
            source = rule.get(field)
            if not isinstance(source, str):
                continue
            problem = check_expression(doc, ("recommendations", "rules", i, field), source, variables,
                                       "recommendation-rule", f"recommendation rule {i + 1}, {field},", expect, what)
            if problem is not None:
                yield problem


def usage_log_path(data: dict, doc: Document) -> Iterator[Problem]:
    """``usage_log`` names a ``.jsonl`` file and expands only ``~``, $HOME, $XDG_*, $CTXBUDGET_* (policy.md)."""
    from engine.policy.locate import log_path_problem

    value = data.get("usage_log")
    why = log_path_problem(value) if isinstance(value, str) else None
    if why:
        yield _at(doc, ("usage_log",), "usage-log-path", f"usage_log: {why}", key=True)


Rule = Callable[[dict, Document], Iterator[Problem]]

RULES: tuple[Rule, ...] = (
    unknown_profile, weights_sum, base_above_max, unknown_scope, duplicate_id, unknown_tier, unknown_agent,
    thresholds_order, budget_formula, recommendation_rules, *signal_rules.RULES, *memory_rules.RULES,
    usage_log_path, claude_code_agents,
)


def semantic_problems(doc: Document, data: Any = None) -> list[Problem]:
    """Every semantic problem of the policy, in file order. ``data``: the part of ``doc.data`` that passed the
    schema (:func:`engine.policy.schema.well_formed_part`) when it did not all pass; each rule then checks
    what is left, and a rule that cannot make sense of it reports nothing (the schema's problems say why)."""
    if data is None:
        return sorted((p for rule in RULES for p in rule(doc.data, doc)), key=lambda p: (p.path, p.line, p.col))
    problems: list[Problem] = []
    if not isinstance(data, dict):
        return problems
    for rule in RULES:
        try:
            problems.extend(rule(data, doc))
        except Exception:  # noqa: BLE001 - a section the schema rejected; its schema problem is reported
            continue
    return sorted(problems, key=lambda p: (p.path, p.line, p.col))
