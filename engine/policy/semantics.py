"""Checks the schema cannot express: references between sections, sums, orderings, duplicates.

Each check is a small generator over the (schema-valid) policy data yielding :class:`Problem` records,
registered once with :func:`engine.policy.rules.check`. The checks of the policy-wide sections (profiles,
agents, tiers, alerts, the budget formula, examples, the usage log) are here; each job's are beside it
(``engine/detect/rules.py``, ``engine/pack/rules.py``, ``engine/claude_code/rules.py``,
``engine/recommend/rules.py``) and register themselves when imported — this module imports none of them.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Iterator

from engine import agents as agent_names
from engine.diagnostics import LookupFailed, Problem, did_you_mean
from engine.policy.rules import CHECKS, Check, check, register
from engine.policy.yamlsource import Document, json_path

WEIGHT_TOLERANCE = 0.001

register("expression-type", "an expression (formula, condition, rule) uses an unknown field, a value of the wrong "
         "type, or is not true/false where a condition must be ([expressions.md](expressions.md#type-checking))",
         "expressions")
register("expression-cost", "an expression could cost more than the evaluation budget for the largest inputs it "
         "may see ([expressions.md](expressions.md#cost))", "expressions")


def problem_at(doc: Document, path: tuple, rule: str, message: str, key: bool = False,
               severity: str = "error") -> Problem:
    """A problem at the YAML position of the value (``key``: of the mapping key) at ``path``."""
    pos = doc.pos(path, key=key)
    return Problem(pos.file, pos.line, pos.col, rule, message, json_path(path), severity)


@check("policy", ("unknown-profile", "an agent is assigned to a profile that does not exist"))
def unknown_profile(data: dict, doc: Document) -> Iterator[Problem]:
    profiles = data.get("profiles", {})
    for agent, profile in data.get("agents", {}).items():
        if profile not in profiles:
            yield problem_at(doc, ("agents", agent), "unknown-profile",
                             f"agent {agent!r} is assigned to unknown profile {profile!r}"
                             + did_you_mean(profile, profiles))


@check("policy", ("weights-sum", "a profile's scope weights do not sum to 1 (±0.001)"))
def weights_sum(data: dict, doc: Document) -> Iterator[Problem]:
    for name, profile in data.get("profiles", {}).items():
        weights = profile.get("weights", {})
        total = sum(weights.values())
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            terms = " + ".join(f"{scope} {w:g}" for scope, w in weights.items())
            yield problem_at(doc, ("profiles", name, "weights"), "weights-sum",
                             f"the scope weights of profile {name!r} sum to {total:g}, not 1 ({terms})")


@check("policy", ("base-above-max", "a profile's base is above its max"))
def base_above_max(data: dict, doc: Document) -> Iterator[Problem]:
    for name, profile in data.get("profiles", {}).items():
        if profile.get("base", 0) > profile.get("max", 0):
            yield problem_at(doc, ("profiles", name, "base"), "base-above-max",
                             f"profile {name!r} has base {profile['base']} above its max {profile['max']}")


@check("policy", ("unknown-scope", "a profile weighs a scope missing from `scopes`"))
def unknown_scope(data: dict, doc: Document) -> Iterator[Problem]:
    scopes = data.get("scopes")
    if scopes is None:
        return
    for name, profile in data.get("profiles", {}).items():
        for scope in profile.get("weights", {}):
            if scope not in scopes:
                yield problem_at(doc, ("profiles", name, "weights", scope), "unknown-scope",
                                 f"profile {name!r} weighs scope {scope!r}, which is not in 'scopes'"
                                 + did_you_mean(scope, scopes), key=True)


@check("policy", ("duplicate-id", "two tiers, or two signals, share an id"))
def duplicate_id(data: dict, doc: Document) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, tier in enumerate(data.get("tiers", [])):
        tier_id = tier.get("id")
        if tier_id in first:
            line = doc.pos(("tiers", first[tier_id], "id")).line
            yield problem_at(doc, ("tiers", i, "id"), "duplicate-id",
                             f"tier id {tier_id!r} is already used at line {line}")
        else:
            first[tier_id] = i


def _inherited(doc: Document, path: tuple) -> bool:
    """Whether a parent (``extends``) wrote the value at ``path``: an inherited golden example may name what
    the child dropped; it only runs, and fails, under ``ctxbudget test --inherited``."""
    return doc.pos(path).file != doc.file


@check("policy", ("unknown-tier", "a tier name (`default_tier`, an example, a signal's weights) that is not a tier"))
def unknown_tier(data: dict, doc: Document) -> Iterator[Problem]:
    tiers = [t.get("id") for t in data.get("tiers", [])]
    default = data.get("default_tier")
    if default is not None and default not in tiers:
        yield problem_at(doc, ("default_tier",), "unknown-tier", f"default tier {default!r} is not a tier"
                         + did_you_mean(default, tiers))
    examples = data.get("examples", {})
    for section in ("budgets", "tasks"):
        for i, example in enumerate(examples.get(section, [])):
            tier = example.get("tier")
            if tier not in tiers and not _inherited(doc, ("examples", section, i)):
                yield problem_at(doc, ("examples", section, i, "tier"), "unknown-tier",
                                 f"example uses unknown tier {tier!r}" + did_you_mean(tier, tiers))


@check("policy", ("unknown-agent", "an example, or `claude_code.main_agent`, names an agent the policy does not have"))
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
                yield problem_at(doc, ("examples", section, i, "agent"), "unknown-agent", f"example: {exc}")


@check("policy", ("thresholds-order", "alert thresholds do not rise info ≤ warning ≤ critical"))
def thresholds_order(data: dict, doc: Document) -> Iterator[Problem]:
    alerts = {"info": 0.75, "warning": 0.90, "critical": 1.0, **data.get("alerts", {})}
    if not alerts["info"] <= alerts["warning"] <= alerts["critical"]:
        yield problem_at(doc, ("alerts",), "thresholds-order",
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


@check("policy", ("budget-formula", "the budget formula does not compile, uses an unknown name, or fails (an error, "
                                   "a negative or non-number result) for some agent and tier"),
       reports=("expression-type", "expression-cost"))
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
                yield problem_at(doc, path, "budget-formula",
                                 f"budget formula fails for {agent} at tier {tier.id}: {exc}")
                return


@check("paths", ("usage-log-path", "`usage_log` does not end in `.jsonl`, or uses a variable other than `$HOME`, "
                                  "`$XDG_*`, `$CTXBUDGET_*` (or `~user`)"))
def usage_log_path(data: dict, doc: Document) -> Iterator[Problem]:
    """``usage_log`` names a ``.jsonl`` file and expands only ``~``, $HOME, $XDG_*, $CTXBUDGET_* (policy.md)."""
    from engine.policy.locate import log_path_problem

    value = data.get("usage_log")
    why = log_path_problem(value) if isinstance(value, str) else None
    if why:
        yield problem_at(doc, ("usage_log",), "usage-log-path", f"usage_log: {why}", key=True)


def semantic_problems(doc: Document, data: Any = None, checks: "list[Check] | None" = None) -> list[Problem]:
    """Every semantic problem of the policy, in file order, by every registered check (``checks``: these
    instead; the pipeline imports the jobs' rule modules first, see :func:`engine.policy.rule_registry`).
    ``data``: the part of ``doc.data`` that passed the schema (:func:`engine.policy.schema.well_formed_part`)
    when it did not all pass; each check then checks what is left, and a check that cannot make sense of it
    reports nothing (the schema's problems say why)."""
    checks = CHECKS if checks is None else checks
    if data is None:
        return sorted((p for rule in checks for p in rule(doc.data, doc)), key=lambda p: (p.path, p.line, p.col))
    problems: list[Problem] = []
    if not isinstance(data, dict):
        return problems
    for rule in checks:
        try:
            problems.extend(rule(data, doc))
        except Exception:  # noqa: BLE001 - a section the schema rejected; its schema problem is reported
            continue
    return sorted(problems, key=lambda p: (p.path, p.line, p.col))
