"""Recommendation rules: the ``recommendations:`` section compiled into a :class:`RuleSet` (its expressions
compiled on first use, each rule keeping where the policy wrote it), evaluated per agent, and the semantic check
of the section (registered with :func:`engine.policy.rules.check`)."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Iterator, Mapping, Sequence

from engine.diagnostics import Problem
from engine.policy.rules import check
from engine.records import Record

RULE_NAMES = ("agent", "stats", "params", "profile", "confidence")
"""What a recommendation rule's expressions may refer to (see docs/usage.md)."""

DEFAULT_RULES = (
    {"action": "insufficient-data", "when": "stats.samples < params.min_samples"},
    {"action": "upgrade", "when": "stats.exceedance_rate > params.upgrade_exceedance_rate"},
    {"action": "downgrade", "when": "stats.mean_usage < params.downgrade_mean_usage"},
    {"action": "adjust-weights", "when": "stats.weight_drift > params.weight_drift"},
    {"action": "maintain", "when": "true"},
)
"""The rules when a policy gives none (the bundled default writes these out)."""

SCOPES_BOUND = 64  # scopes (and tiers) a rule's maps are assumed to hold, for the static cost bound


class RecommendationRule(Record):
    """When (an expression over ``stats``, ``params``, ``profile``, ``confidence``) to recommend ``action``.

    ``confidence`` (an expression) and ``reason`` (text) replace the built-in ones (see docs/usage.md).
    ``when_program`` and ``confidence_program`` are the compiled expressions; ``where`` maps ``when`` and
    ``confidence`` to where the policy wrote them (file label, line, column), kept at compile time so a rule
    that fails while recommending is reported at its line without reading the YAML again."""

    action: str
    when: str
    confidence: str | None = None
    reason: str | None = None
    when_program: Any = None
    confidence_program: Any = None
    where: Mapping[str, tuple[str, int, int]] = {}


class RuleSet(Record):
    """The compiled ``recommendations:`` section: thresholds and rules (applied first match; see
    docs/usage.md)."""

    min_samples: int = 10
    min_confidence: float = 0.7
    upgrade_exceedance_rate: float = 0.20
    downgrade_mean_usage: float = 0.50
    weight_drift: float = 0.10
    rules: tuple[RecommendationRule, ...] = ()

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None, programs: Any,
                  positions: Sequence[Mapping[str, Sequence]] | None = None) -> "RuleSet":
        """The section ``data`` compiled: its expressions by ``programs`` (a
        :class:`~engine.policy.programs.ProgramTable`, which compiles each on first use); ``positions``, one
        per rule, where the policy wrote its fields (``{"when": [file, line, col], ...}``)."""
        from engine.policy.programs import LazyProgram

        data = data or {}
        values = {k: v for k, v in data.items() if k != "rules"}
        written = data.get("rules")
        positions = positions if written and positions and len(positions) == len(written) else ()
        rules = tuple(
            RecommendationRule(r["action"], r["when"], r.get("confidence"), r.get("reason"),
                               LazyProgram(programs, r["when"], RULE_NAMES),
                               LazyProgram(programs, r["confidence"], RULE_NAMES) if r.get("confidence") else None,
                               {field: (str(at[0]), int(at[1]), int(at[2]))
                                for field, at in (positions[i] if positions else {}).items()})
            for i, r in enumerate(written or DEFAULT_RULES)
        )
        return cls(**values, rules=rules)

    def params(self) -> dict[str, float]:
        """The numeric settings, as the rules see them (``params.min_samples``, …)."""
        return {"min_samples": self.min_samples, "min_confidence": self.min_confidence,
                "upgrade_exceedance_rate": self.upgrade_exceedance_rate,
                "downgrade_mean_usage": self.downgrade_mean_usage, "weight_drift": self.weight_drift}


RecommendationSettings = RuleSet  # the name it had while the policy compiled it


def rule_positions(doc: Any) -> list[dict[str, list]] | None:
    """Where each rule's expressions are written in a loaded policy document (``doc``: an
    :class:`engine.policy.yamlsource.Document`), for :meth:`RuleSet.from_data`; None when it has no rules."""
    section = doc.data.get("recommendations") if isinstance(doc.data, dict) else None
    rules = section.get("rules") if isinstance(section, dict) else None
    if not rules:
        return None
    found = []
    for i, rule in enumerate(rules):
        at = {}
        for field in ("when", "confidence"):
            if isinstance(rule, dict) and field in rule:
                pos = doc.pos(("recommendations", "rules", i, field))
                at[field] = [pos.file, pos.line, pos.col]
        found.append(at)
    return found


class RuleError(Exception):
    """A rule expression that fails to evaluate, or gives the wrong type."""

    def __init__(self, index: int, field: str, message: str):
        self.index, self.field = index, field
        super().__init__(message)


def first_match(rules: Sequence[Any], bindings: Mapping[str, Any]) -> tuple[int | None, float | None]:
    """The index of the first rule (a ``RecommendationRule``) whose ``when`` holds, and its own confidence
    when it has one; (None, None) when none holds."""
    from engine.expr import EvaluationError

    for index, rule in enumerate(rules):
        try:
            holds = rule.when_program.evaluate(bindings)
        except EvaluationError as exc:
            raise RuleError(index, "when", str(exc)) from None
        if not isinstance(holds, bool):
            raise RuleError(index, "when", f"gives {holds!r}, not true or false")
        if not holds:
            continue
        if rule.confidence_program is None:
            return index, None
        try:
            value = rule.confidence_program.evaluate(bindings)
        except EvaluationError as exc:
            raise RuleError(index, "confidence", str(exc)) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RuleError(index, "confidence", f"gives {value!r}, not a number")
        return index, min(max(float(value), 0.0), 1.0)
    return None, None


def rule_variables() -> dict:
    """The types of the bindings :func:`engine.recommend._recommend_one` gives a rule's expressions
    (``validate`` checks the rules against them; tests/test_recommend.py checks they match the real bindings)."""
    from engine.expr.types import DOUBLE, DYN, INT, Map, Object, String

    number_map = Map(DOUBLE, SCOPES_BOUND)
    tier = Object("stats.tiers[...]", {"runs": INT, "mean_usage": DOUBLE, "exceedance_rate": DOUBLE})
    stats = Object("stats", {
        "samples": INT, "runs": INT, "exceeded": INT, "exceedance_rate": DOUBLE, "mean_usage": DOUBLE,
        "median_usage": DOUBLE, "p90_usage": DOUBLE, "max_usage": DOUBLE, "stdev_usage": DOUBLE, "failed": INT,
        "failure_rate": DOUBLE, "weight_drift": DOUBLE, "drift": number_map, "shares": number_map,
        "tiers": Map(tier, SCOPES_BOUND)})
    params = Object("params", {"min_samples": INT, "min_confidence": DOUBLE, "upgrade_exceedance_rate": DOUBLE,
                               "downgrade_mean_usage": DOUBLE, "weight_drift": DOUBLE})
    profile = Object("profile", {"id": String(64), "base": INT, "max": INT, "weights": number_map,
                                 "larger": DYN, "smaller": DYN})  # a profile id, or null at either end
    confidence = Object("confidence", {"upgrade": DOUBLE, "downgrade": DOUBLE, "adjust_weights": DOUBLE,
                                       "maintain": DOUBLE})
    return {"agent": String(200), "stats": stats, "params": params, "profile": profile, "confidence": confidence}


@check("recommendations", ("recommendation-rule", "a recommendation rule's expression does not compile, fails, or "
                                                  "is not true/false ([usage.md](usage.md#rules))"),
       reports=("expression-type", "expression-cost"))
def recommendation_rules(data: dict, doc: Any) -> Iterator[Problem]:
    """Each recommendation rule's expressions compile, with only the names a rule may use."""
    from engine.policy.semantics import check_expression

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
