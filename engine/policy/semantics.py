"""Checks the schema cannot express: references between sections, sums, orderings, duplicates.

Each rule is a small generator over the (schema-valid) policy data yielding :class:`Problem` records; the
table ``RULES`` at the bottom is the one list of them.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable, Iterator

from engine import agents as agent_names
from engine.diagnostics import LookupFailed, Problem
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


def budget_formula(data: dict, doc: Document) -> Iterator[Problem]:
    """The formula compiles with only its names, and gives whole, non-negative tokens for every agent and tier."""
    from engine.budget import DEFAULT_FORMULA, FORMULA_NAMES, formula_bindings, tokens
    from engine.expr import EvaluationError, ExprSyntaxError, compile as compile_expression
    from engine.model import Profile, Tier

    source = data.get("budget", {}).get("formula", DEFAULT_FORMULA)
    path = ("budget", "formula")
    try:
        program = compile_expression(source, names=FORMULA_NAMES)
    except ExprSyntaxError as exc:
        pos = doc.pos_in_scalar(path, exc.line, exc.column) if "budget" in data else doc.pos(())
        yield Problem(pos.file, pos.line, pos.col, "budget-formula",
                      f"budget formula, column {exc.column}: {exc.message}", json_path(path))
        return
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
    from engine.expr import ExprSyntaxError, compile as compile_expression
    from engine.policy.compiled import RULE_NAMES

    for i, rule in enumerate(data.get("recommendations", {}).get("rules") or ()):
        for field in ("when", "confidence"):
            source = rule.get(field)
            if not isinstance(source, str):
                continue
            try:
                compile_expression(source, names=RULE_NAMES)
            except ExprSyntaxError as exc:
                path = ("recommendations", "rules", i, field)
                pos = doc.pos_in_scalar(path, exc.line, exc.column)
                yield Problem(pos.file, pos.line, pos.col, "recommendation-rule",
                              f"recommendation rule {i + 1}, {field}, column {exc.column}: {exc.message}",
                              json_path(path))


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
    thresholds_order, budget_formula, recommendation_rules, *signal_rules.RULES,
    usage_log_path,
)


def semantic_problems(doc: Document) -> list[Problem]:
    """Every semantic problem of a schema-valid policy, in file order."""
    problems = [p for rule in RULES for p in rule(doc.data, doc)]
    return sorted(problems, key=lambda p: (p.path, p.line, p.col))
