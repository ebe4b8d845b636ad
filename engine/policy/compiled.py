"""The compiled policy: immutable, built once from validated data, queried many times.

Nothing here knows about YAML, the schema or ruamel; :meth:`Policy.from_data` takes the merged, validated
policy as plain data (which is also what the compiled-policy cache stores).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

from engine import agents as agent_names
from engine.budget import DEFAULT_FORMULA, FORMULA_NAMES, detection_binding, formula_bindings, split, tokens
from engine.diagnostics import LookupFailed
from engine.model import Allocation, Profile, Thresholds, Tier, frozen_map

if TYPE_CHECKING:  # pragma: no cover
    from engine.detect import Detector
    from engine.detect.model import Detection, Evaluation, Signal
    from engine.pack import Pack, Packer


RULE_NAMES = ("agent", "stats", "params", "profile", "confidence")
"""What a recommendation rule's expressions may refer to (see docs/usage.md)."""


class RecommendationRule(NamedTuple):
    """When (an expression over ``stats``, ``params``, ``profile``, ``confidence``) to recommend ``action``.

    ``confidence`` (an expression) and ``reason`` (text) replace the built-in ones (see docs/usage.md).
    ``when_program`` and ``confidence_program`` are the compiled expressions."""

    action: str
    when: str
    confidence: str | None = None
    reason: str | None = None
    when_program: Any = None
    confidence_program: Any = None


DEFAULT_RULES = (
    {"action": "insufficient-data", "when": "stats.samples < params.min_samples"},
    {"action": "upgrade", "when": "stats.exceedance_rate > params.upgrade_exceedance_rate"},
    {"action": "downgrade", "when": "stats.mean_usage < params.downgrade_mean_usage"},
    {"action": "adjust-weights", "when": "stats.weight_drift > params.weight_drift"},
    {"action": "maintain", "when": "true"},
)
"""The rules when a policy gives none (the bundled default writes these out)."""


class RecommendationSettings(NamedTuple):
    """Thresholds and rules of the profile recommendations (see docs/usage.md); rules apply first match."""

    min_samples: int = 10
    min_confidence: float = 0.7
    upgrade_exceedance_rate: float = 0.20
    downgrade_mean_usage: float = 0.50
    weight_drift: float = 0.10
    rules: tuple[RecommendationRule, ...] = ()

    @classmethod
    def from_data(cls, data: Mapping[str, Any], programs: Any) -> "RecommendationSettings":
        """Settings from the policy's ``recommendations`` section, their expressions compiled by ``programs``
        (a :class:`~engine.policy.programs.ProgramTable`)."""
        values = {k: v for k, v in data.items() if k != "rules"}
        rules = tuple(
            RecommendationRule(r["action"], r["when"], r.get("confidence"), r.get("reason"),
                               programs.get(r["when"], RULE_NAMES),
                               programs.get(r["confidence"], RULE_NAMES) if r.get("confidence") else None)
            for r in data.get("rules") or DEFAULT_RULES
        )
        return cls(**values, rules=rules)

    def params(self) -> dict[str, float]:
        """The numeric settings, as the rules see them (``params.min_samples``, …)."""
        return {"min_samples": self.min_samples, "min_confidence": self.min_confidence,
                "upgrade_exceedance_rate": self.upgrade_exceedance_rate,
                "downgrade_mean_usage": self.downgrade_mean_usage, "weight_drift": self.weight_drift}


class BudgetExample(NamedTuple):
    """A golden case: ``agent`` at ``tier`` gets ``budget`` tokens (and, if given, these ``scopes``).

    ``origin`` is the parent policy file that wrote it, or "" when the policy's own file did."""

    agent: str
    tier: str
    budget: int
    scopes: Mapping[str, int] | None = None
    origin: str = ""


class TaskExample(NamedTuple):
    """A golden case: ``task`` is detected as ``tier``."""

    task: str
    tier: str
    agent: str | None = None
    context: Mapping[str, Any] | None = None
    origin: str = ""  # as BudgetExample's


def _origin(origins: Mapping[str, Any], section: str, index: int) -> str:
    """The file that wrote example ``index`` of ``section`` ("" for the policy's own, or when unknown)."""
    found = origins.get(section)
    if isinstance(found, list) and index < len(found) and isinstance(found[index], str):
        return found[index]
    return ""


class Policy:
    """A validated, compiled policy. Build it with :func:`engine.load_policy`.

    Immutable: its attributes cannot be set. (A plain class rather than a frozen dataclass, for start-up;
    see :mod:`engine.model`.) What it computes on demand — allocations, the detector — it keeps in private
    memo tables.
    """

    name: str
    source: str
    scopes: tuple[str, ...]
    profiles: Mapping[str, Profile]
    agents: Mapping[str, str]
    tiers: tuple[Tier, ...]
    default_tier: str
    thresholds: Thresholds
    enforcement: str
    scope_enforcement: str
    recommendations: RecommendationSettings
    budget_examples: tuple[BudgetExample, ...]
    task_examples: tuple[TaskExample, ...]
    data: Mapping[str, Any]
    files: tuple[tuple[str, str], ...]
    artifacts: Mapping[str, Any]
    budget_formula: Any

    __slots__ = ("name", "source", "scopes", "profiles", "agents", "tiers", "default_tier", "thresholds",
                 "enforcement", "recommendations", "budget_examples", "task_examples", "data", "files",
                 "artifacts", "budget_formula", "_agent_index", "_tier_index", "_allocations", "_detector", "_packer",
                 "scope_enforcement")

    def __init__(self, *, budget_examples: tuple = (), task_examples: tuple = (), data: Mapping | None = None,
                 files: tuple = (), artifacts: Mapping | None = None, **fields: Any):
        init = object.__setattr__
        for key, value in fields.items():
            init(self, key, value)
        init(self, "budget_examples", budget_examples)
        init(self, "task_examples", task_examples)
        init(self, "data", data if data is not None else {})
        init(self, "files", tuple(files))
        init(self, "artifacts", artifacts if artifacts is not None else {})
        init(self, "_agent_index", agent_names.build_index(self.agents))
        init(self, "_tier_index", {t.id: t for t in self.tiers})
        init(self, "_allocations", {})
        init(self, "_detector", None)
        init(self, "_packer", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a Policy is immutable (cannot set {name!r})")

    __delattr__ = __setattr__

    def __repr__(self) -> str:
        return (f"Policy(name={self.name!r}, source={self.source!r}, profiles={len(self.profiles)}, "
                f"agents={len(self.agents)}, tiers={[t.id for t in self.tiers]})")

    @classmethod
    def from_data(cls, data: Mapping[str, Any], source: str = "<data>",
                  files: tuple[tuple[str, str], ...] = (), artifacts: Mapping[str, Any] | None = None) -> "Policy":
        """Compile validated policy data (see schemas/policy.schema.json).

        ``artifacts`` are compiled forms from an earlier compilation of the same data (the cache keeps them);
        the result's ``artifacts`` are what a later call may reuse. ``artifacts["example_origins"]`` (section →
        one file label per example, "" for the policy's own file; a section left out is all its own) says which
        golden examples were inherited; loading writes it for every policy that extends another.
        """
        from engine.policy.programs import ProgramTable

        programs = ProgramTable((artifacts or {}).get("programs"))
        formula = programs.get(data.get("budget", {}).get("formula", DEFAULT_FORMULA), FORMULA_NAMES)
        recommendations = RecommendationSettings.from_data(data.get("recommendations", {}), programs)
        profiles = {
            pid: Profile(pid, int(p["base"]), int(p["max"]), frozen_map(p["weights"]), p.get("description", ""))
            for pid, p in data["profiles"].items()
        }
        scopes = tuple(data.get("scopes") or dict.fromkeys(s for p in profiles.values() for s in p.weights))
        tiers = tuple(
            Tier(t["id"], float(t["multiplier"]), rank, t.get("description", ""), tuple(t.get("examples", ())))
            for rank, t in enumerate(data["tiers"])
        )
        default_tier = data.get("default_tier") or tiers[(len(tiers) - 1) // 2].id
        examples = data.get("examples", {})
        agents = dict(data.get("agents", {}))
        kept = {"programs": programs.artifacts()}
        origins = (artifacts or {}).get("example_origins")
        if isinstance(origins, dict):  # (else unknown: a cache entry of another shape)
            kept["example_origins"] = origins
        else:
            origins = {}
        if (data.get("detection") or {}).get("signals"):
            # The detection plan: plain data the cache keeps, so a warm start only compiles the RE2 set. A
            # cached one is passed on untouched (the detector checks it when it is first needed, and
            # rebuilds it if it does not fit): commands that only allocate import nothing of detection.
            cached = (artifacts or {}).get("detection")
            if cached is None:
                from engine.detect.plan import plan_detection, signals_from_data

                cached = plan_detection(signals_from_data(data["detection"]))
            kept["detection"] = cached
        return cls(
            name=data.get("name", ""),
            source=source,
            scopes=scopes,
            profiles=frozen_map(profiles),
            agents=frozen_map(agents),
            tiers=tiers,
            default_tier=default_tier,
            thresholds=Thresholds(**data.get("alerts", {})),
            enforcement=data.get("enforcement", "soft"),
            scope_enforcement=data.get("scope_enforcement", "soft"),
            recommendations=recommendations,
            budget_examples=tuple(
                BudgetExample(e["agent"], e["tier"], e["budget"], frozen_map(e["scopes"]) if "scopes" in e else None,
                              _origin(origins, "budgets", i))
                for i, e in enumerate(examples.get("budgets", ()))
            ),
            task_examples=tuple(
                TaskExample(e["task"], e["tier"], e.get("agent"), frozen_map(e.get("context", {})),
                            _origin(origins, "tasks", i))
                for i, e in enumerate(examples.get("tasks", ()))
            ),
            data=data,
            files=tuple(files),
            artifacts=kept,
            budget_formula=formula,
        )

    # -- look-ups ---------------------------------------------------------------------------------------

    def resolve_agent(self, name: str) -> str:
        """The full name of agent ``name`` (exact, case-insensitive or short form); LookupFailed otherwise."""
        return agent_names.resolve(name, self.agents, self._agent_index)

    def profile_of(self, agent: str) -> Profile:
        return self.profiles[self.agents[self.resolve_agent(agent)]]

    def tier(self, name: str | None = None) -> Tier:
        """The tier called ``name`` (case-insensitive); the default tier when ``name`` is None."""
        if name is None:
            return self._tier_index[self.default_tier]
        found = self._tier_index.get(name) or self._tier_index.get(name.strip().lower())
        if found is None:
            import difflib

            near = difflib.get_close_matches(name.lower(), list(self._tier_index), n=2, cutoff=0.5)
            raise LookupFailed("tier", name, near, f"unknown tier {name!r} (tiers: {', '.join(self._tier_index)})")
        return found

    # -- the budget -------------------------------------------------------------------------------------

    def budget_of(self, agent: str, profile: Profile, tier: Tier, detection: dict | None = None) -> int:
        """The policy's budget formula for ``agent`` with ``profile`` at ``tier``, in whole tokens (``detection``:
        the formula's ``detection`` binding when the tier was detected).

        Raises ``EvaluationError`` or ``ValueError`` when the formula fails; validation evaluates it for every
        agent and tier, so a validated policy does not.
        """
        return tokens(self.budget_formula.evaluate(formula_bindings(agent, profile, tier, detection)))

    def allocate(self, agent: str, tier: str | None = None, detection: "Detection | None" = None) -> Allocation:
        """The budget of ``agent`` at ``tier`` (the default tier when None) and its split across scopes. With
        the ``detection`` the tier came from, a formula that reads ``detection`` (confidence, runner-up) sees it."""
        hedged = detection is not None and "detection" in self.budget_formula.names
        key = (agent, tier)
        found = None if hedged else self._allocations.get(key)
        if found is None:
            full = self.resolve_agent(agent)
            tier_obj = self.tier(tier)
            profile = self.profiles[self.agents[full]]
            bound = None
            if hedged:
                runner = self.tier(detection.runner_up) if detection.runner_up is not None else None
                bound = detection_binding(detection.confidence, runner, tier_obj)
            budget = self.budget_of(full, profile, tier_obj, bound)
            capped = budget < tokens(profile.base * tier_obj.multiplier)
            found = Allocation(full, profile.id, tier_obj.id, tier_obj.multiplier, budget, capped,
                               frozen_map(split(budget, profile.weights)))
            if not hedged:
                self._allocations[key] = found
        return found

    # -- complexity detection -----------------------------------------------------------------------------

    @property
    def detector(self) -> "Detector":
        """The compiled detector of the ``detection:`` section, built on first use (commands that only
        allocate never import re2)."""
        if self._detector is None:
            from engine.detect import Detector

            object.__setattr__(self, "_detector", Detector.from_data(
                self.data.get("detection") or {}, [t.id for t in self.tiers], self.default_tier,
                plan=self.artifacts.get("detection")))
        return self._detector

    @property
    def signals(self) -> tuple["Signal", ...]:
        return self.detector.signals

    def detect(self, text: str, context: Mapping[str, Any] | None = None) -> "Detection":
        """The complexity tier of a task, with confidence, per-tier scores and the signals that fired."""
        return self.detector.detect(text, context)

    def evaluate(self, text: str, agent: str, context: Mapping[str, Any] | None = None,
                 tier: str | None = None) -> "Evaluation":
        """Detect the tier of ``text`` (unless ``tier`` is given), then allocate ``agent``'s budget at it."""
        from engine.detect.model import Evaluation

        if tier is not None:
            return Evaluation(self.allocate(agent, self.tier(tier).id), 1.0, None)
        full = self.resolve_agent(agent)  # an unknown agent fails before detection runs
        detection = self.detect(text, context)
        return Evaluation(self.allocate(full, detection.tier, detection), detection.confidence, detection)

    # -- memory packing -----------------------------------------------------------------------------------

    @property
    def packer(self) -> "Packer":
        """The compiled ``memory:`` section, built on first use (commands that do not pack never import
        engine.pack's packer or sqlite3)."""
        if self._packer is None:
            from engine.pack import build_packer
            from engine.policy.programs import ProgramTable

            object.__setattr__(self, "_packer", build_packer(
                self.data.get("memory"), self.scopes, ProgramTable(self.artifacts.get("programs"))))
        return self._packer

    def pack(self, agent: str, task: str | None = None, tier: str | None = None, root: Any = None,
             context: Mapping[str, Any] | None = None, *, budget: int | None = None, log: Any = False,
             touch: bool = False, run_id: str | None = None, session_id: str | None = None) -> "Pack":
        """The memory for one run of ``agent`` (see docs/memory.md).

        The tier is ``tier`` (given), else the one detected for ``task`` (detected), else the default tier;
        ``budget`` replaces the allocated total (split by the profile's weights). ``root`` is the memory root
        (default: the policy's ``memory.root``). ``log``: a usage-log path, None for the default location,
        False (the default) for no record. ``touch`` adds one use to the loaded files' sidecars.
        """
        from engine.budget import split
        from engine.model import task_hash

        full = self.resolve_agent(agent)
        detection = None
        if tier is not None:
            source, tier_id = "given", self.tier(tier).id
        elif task is not None and self.data.get("detection"):
            detection = self.detect(task, context)
            source, tier_id = "detected", detection.tier
        else:
            source, tier_id = "default", self.default_tier
        allocation = self.allocate(full, tier_id, detection)
        if budget is not None:
            if type(budget) is not int or budget < 0:
                raise ValueError(f"budget must be a non-negative integer, not {budget!r}")
            weights = self.profiles[allocation.profile].weights
            allocation = allocation._replace(budget=budget, capped=False, scopes=frozen_map(split(budget, weights)))
        packer = self.packer
        provenance = {"tier_source": source,
                      "confidence": detection.confidence if detection is not None else None,
                      "signals": list(dict.fromkeys(h.signal for h in detection.hits)) if detection is not None else [],
                      "task_hash": task_hash(task),
                      "task": task if packer.settings.log_task else None,
                      "run_id": run_id, "session_id": session_id}
        result = packer.pack(allocation, task, root=root, context=context, provenance=provenance)
        if touch:
            from engine.pack.index import touch_sidecars

            touch_sidecars(result.root, result.paths())
        if log is not False:
            from engine.monitor import record_pack

            result.log_error = record_pack(self, result, log)
        return result

    # -- monitoring -------------------------------------------------------------------------------------

    def monitor(self, agent: str, task: str | None = None, tier: str | None = None, log: Any = None,
                **options: Any) -> Any:
        """A context manager watching one run of ``agent`` (see :func:`engine.monitor.monitor`)."""
        from engine.monitor import monitor

        return monitor(self, agent, task=task, tier=tier, log=log, **options)
