"""The compiled policy: a thin, immutable assembly of what each job compiled from its own section.

:meth:`Policy.from_data` takes the merged, validated policy as plain data (what the compiled-policy cache
stores) and keeps the policy-wide values (profiles, agents, tiers, alerts, enforcement, the usage log, the golden
examples) and the budget formula. Each other section is compiled by the job that owns it, on first use, from a
private copy nobody else holds: ``detection:`` → :class:`~engine.detect.Detector` (with the plan the cache
kept), ``memory:`` → :class:`~engine.pack.Packer`, ``claude_code:`` →
:class:`~engine.claude_code.settings.HookSettings`, ``recommendations:`` →
:class:`~engine.recommend.rules.RuleSet` (with its rules' positions). So ``budget`` imports nothing of
detection, packing or recommendations, and no raw data is in a Policy's interface.

This module sits above the jobs (it wires them together, as the CLI does); no job imports it
(tests/test_import_graph.py). Nothing here knows about YAML, the schema or ruamel.
"""

from __future__ import annotations

from collections.abc import Mapping

TYPE_CHECKING = False  # not typing's: importing typing costs every start

from engine import agents as agent_names
from engine.budget import (DEFAULT_FORMULA, FORMULA_NAMES, MAX_BUDGET, detection_binding, formula_bindings, split,
                           tokens)
from engine.diagnostics import LookupFailed, close_matches
from engine.model import Allocation, Profile, Thresholds, Tier, frozen_map
from engine.policy.programs import LazyProgram, ProgramTable
from engine.records import Record

if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

    from engine.claude_code.settings import HookSettings
    from engine.detect import Detector
    from engine.detect.model import Detection, Evaluation, Signal
    from engine.pack import Pack, Packer
    from engine.recommend.rules import RuleSet

_LAZY_SECTIONS = ("detection", "memory", "claude_code", "recommendations")
"""The sections a job compiles on first use (the others are compiled by :meth:`Policy.from_data`)."""


class BudgetExample(Record):
    """A golden case: ``agent`` at ``tier`` gets ``budget`` tokens (and, if given, these ``scopes``).

    ``origin`` is the parent policy file that wrote it, or "" when the policy's own file did."""

    agent: str
    tier: str
    budget: int
    scopes: Mapping[str, int] | None = None
    origin: str = ""


class TaskExample(Record):
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
    see :mod:`engine.model`.) What it computes on demand — allocations, each job's compiled section — it keeps
    in private memo tables.
    """

    name: str
    source: str
    files: tuple[tuple[str, str], ...]
    scopes: tuple[str, ...]
    profiles: Mapping[str, Profile]
    agents: Mapping[str, str]
    tiers: tuple[Tier, ...]
    default_tier: str
    thresholds: Thresholds
    enforcement: str
    scope_enforcement: str
    usage_log: str | None
    budget_formula: Any
    budget_examples: tuple[BudgetExample, ...]
    task_examples: tuple[TaskExample, ...]

    __slots__ = ("name", "source", "files", "_digest", "scopes", "profiles", "agents", "tiers", "default_tier",
                 "thresholds", "enforcement", "scope_enforcement", "usage_log", "budget_formula", "budget_examples",
                 "task_examples", "_sections", "_plan", "_origins", "_positions", "_budgets", "_programs",
                 "_agent_index", "_tier_index", "_allocations", "_detector", "_jobs")

    def __init__(self, **fields: Any):
        init = object.__setattr__
        for key, value in fields.items():
            init(self, key, value)
        init(self, "_agent_index", agent_names.build_index(self.agents))
        init(self, "_tier_index", {t.id: t for t in self.tiers})
        init(self, "_allocations", {})
        init(self, "_detector", None)
        init(self, "_jobs", {})

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"a Policy is immutable (cannot set {name!r})")

    __delattr__ = __setattr__

    def __repr__(self) -> str:
        return (f"Policy(name={self.name!r}, source={self.source!r}, profiles={len(self.profiles)}, "
                f"agents={len(self.agents)}, tiers={[t.id for t in self.tiers]})")

    @classmethod
    def from_data(cls, data: Mapping[str, Any], source: str = "<data>",
                  files: tuple[tuple[str, str], ...] = (), artifacts: Mapping[str, Any] | None = None, *,
                  copy: bool = True) -> "Policy":
        """Compile validated policy data (see schemas/policy.schema.json).

        ``artifacts`` are what an earlier compilation of the same data worked out (the compiled-policy cache
        keeps them; :attr:`artifacts` gives them): ``detection``, the detection plan; ``example_origins``
        (section → one file label per example, "" for the policy's own file; a section left out is all its
        own), which golden examples were inherited; ``rule_positions``, where each recommendation rule's
        expressions are written (loading writes these two when it has the YAML positions); ``budgets``, the
        budget formula's value for every profile (or agent) at every tier (:func:`budget_table`), so that an
        allocation needs no expression compiled. A ``budgets`` that does not fit the policy's profiles, agents
        and tiers raises ValueError.

        The sections compiled on first use are copied, so changing ``data`` afterwards changes nothing;
        ``copy=False`` (for the loaders) skips that for data nobody else holds.
        """
        artifacts = artifacts or {}
        programs = ProgramTable()
        formula = LazyProgram(programs, data.get("budget", {}).get("formula", DEFAULT_FORMULA), FORMULA_NAMES)
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
        origins = artifacts.get("example_origins")
        if not isinstance(origins, dict):  # unknown: a cache entry of another shape
            origins = None
        sections = {key: data.get(key) for key in _LAZY_SECTIONS if data.get(key) is not None}
        for key, section in sections.items():  # (validated data always passes; a damaged cache entry may not)
            if not isinstance(section, Mapping):
                raise ValueError(f"the {key} section is not a mapping")
        if copy:
            sections = _copy(sections)
        plan = None
        if (sections.get("detection") or {}).get("signals"):
            # The detection plan: plain data the cache keeps, so a warm start only compiles the RE2 set. A
            # cached one is passed on untouched (the detector checks it when it is first needed, and
            # rebuilds it if it does not fit): commands that only allocate import nothing of detection.
            plan = artifacts.get("detection")
            if plan is None:
                from engine.detect.plan import plan_section

                plan = plan_section(sections["detection"])
            elif copy and type(plan) is dict:  # else the cache's StoredPlan, decoded on first use
                plan = _copy(plan)
        positions = artifacts.get("rule_positions") if isinstance(artifacts.get("rule_positions"), list) else None
        budgets = artifacts.get("budgets")
        if budgets is not None and not _table_fits(budgets, profiles, data.get("agents", {}), len(tiers)):
            raise ValueError("the budgets artifact does not fit the policy")
        return cls(
            name=data.get("name", ""),
            source=source,
            files=tuple(tuple(f) for f in files),
            _digest=None if files else _digest_of(None, data),
            scopes=scopes,
            profiles=frozen_map(profiles),
            agents=frozen_map(data.get("agents", {})),
            tiers=tiers,
            default_tier=default_tier,
            thresholds=Thresholds(**data.get("alerts", {})),
            enforcement=data.get("enforcement", "soft"),
            scope_enforcement=data.get("scope_enforcement", "soft"),
            usage_log=data.get("usage_log"),
            budget_formula=formula,
            budget_examples=tuple(
                BudgetExample(e["agent"], e["tier"], e["budget"], frozen_map(e["scopes"]) if "scopes" in e else None,
                              _origin(origins or {}, "budgets", i))
                for i, e in enumerate(examples.get("budgets", ()))
            ),
            task_examples=tuple(
                TaskExample(e["task"], e["tier"], e.get("agent"), frozen_map(e.get("context", {})),
                            _origin(origins or {}, "tasks", i))
                for i, e in enumerate(examples.get("tasks", ()))
            ),
            _sections=sections,
            _plan=plan,
            _origins=origins,
            _positions=positions,
            _budgets=budgets,
            _programs=programs,
        )

    def _decoded_plan(self) -> Any:
        """The detection plan; a cache hands it over as its bytes (:class:`engine.policy.cache.StoredPlan`),
        checked and decoded only here, when a job needs it — `budget` and `validate` never do. Bytes that do not
        decode to a plan of the right shape give None, and the detector plans afresh."""
        plan = self._plan
        if plan is not None and type(plan) is not dict:
            from engine.policy.cache import StoredPlan

            plan = plan.decode() if type(plan) is StoredPlan else None
            object.__setattr__(self, "_plan", plan)
        return plan

    def _whole_plan(self) -> dict | None:
        """The detection plan as plain data, every section of a cached one read (for :attr:`artifacts`)."""
        plan = self._decoded_plan()
        if plan is not None and "rest" in plan:  # read from the cache's sections
            from engine.policy.sections import whole_plan

            plan = whole_plan(plan)
        return plan

    @property
    def artifacts(self) -> dict[str, Any]:
        """What compiling worked out that a later compilation of the same data may reuse (see
        :meth:`from_data`), as a fresh copy: the cache stores it, and changing it changes nothing here."""
        found: dict[str, Any] = {}
        plan = self._whole_plan()
        if plan is not None:
            found["detection"] = _copy(plan)
        if self._origins is not None:
            found["example_origins"] = _copy(self._origins)
        if self._positions is not None:
            found["rule_positions"] = _copy(self._positions)
        budgets = self._budgets if self._budgets is not None else budget_table(self)
        if budgets is not None:
            found["budgets"] = _copy(budgets)
        return found

    @property
    def digest(self) -> str:
        """A short digest of what the policy came from (usage records carry it): its files' contents, or its
        data when it was compiled from data alone."""
        if self._digest is None:
            object.__setattr__(self, "_digest", _digest_of(self.files, None))
        return self._digest

    def compiled_expressions(self) -> list[str]:
        """The sources of the expressions compiled so far (they compile when first used)."""
        return self._programs.compiled()

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
            near = close_matches(name.lower(), self._tier_index, n=2, cutoff=0.5)
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
        table = self._budgets
        hedged = detection is not None and (table["detection"] if table is not None else
                                            "detection" in self.budget_formula.names)
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
            if table is not None and not hedged:  # the formula's value, worked out when the policy was compiled
                budget = table["table"][full if table["by"] == "agent" else profile.id][tier_obj.rank]
            else:
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
        """The ``detection:`` section compiled by the detection job (with the plan the cache kept), on first use:
        commands that only allocate never import engine.detect or re2."""
        if self._detector is None:
            from engine.detect import Detector

            object.__setattr__(self, "_detector", Detector.from_data(
                self._sections.get("detection") or {}, [t.id for t in self.tiers], self.default_tier,
                plan=self._decoded_plan()))
        return self._detector

    @property
    def signals(self) -> tuple["Signal", ...]:
        return self.detector.signals

    def detect(self, text: str, context: Mapping[str, Any] | None = None) -> "Detection":
        """The complexity tier of a task, with confidence, per-tier scores and the signals that fired."""
        detector = self._detector  # built: skip the property (the detection hot path)
        return (detector if detector is not None else self.detector).detect(text, context)

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
        """The ``memory:`` section compiled by the packing job, on first use (commands that do not pack never
        import engine.pack's packer or sqlite3)."""
        found = self._jobs.get("packer")
        if found is None:
            from engine.pack import build_packer

            found = self._jobs["packer"] = build_packer(self._sections.get("memory"), self.scopes, self._programs)
        return found

    @property
    def hook_settings(self) -> "HookSettings":
        """The ``claude_code:`` section compiled by the Claude Code adapter, on first use."""
        found = self._jobs.get("hook_settings")
        if found is None:
            from engine.claude_code.settings import HookSettings

            found = self._jobs["hook_settings"] = HookSettings.from_data(self._sections.get("claude_code"))
        return found

    @property
    def recommendations(self) -> "RuleSet":
        """The ``recommendations:`` section compiled by the recommendation job (thresholds, and rules that keep
        their positions), on first use; its expressions compile when first evaluated."""
        found = self._jobs.get("recommendations")
        if found is None:
            from engine.recommend.rules import RuleSet

            found = self._jobs["recommendations"] = RuleSet.from_data(
                self._sections.get("recommendations"), self._programs, self._positions)
        return found

    def pack(self, agent: str, task: str | None = None, tier: str | None = None, root: Any = None,
             context: Mapping[str, Any] | None = None, *, budget: int | None = None, log: Any = False,
             touch: bool = False, run_id: str | None = None, session_id: str | None = None,
             deadline: Any = None, progress: Any = None) -> "Pack":
        """The memory for one run of ``agent`` (see docs/memory.md).

        The tier is ``tier`` (given), else the one detected for ``task`` (detected), else the default tier;
        ``budget`` replaces the allocated total (split by the profile's weights). ``root`` is the memory root
        (default: the policy's ``memory.root``). ``log``: a usage-log path, None for the default location,
        False (the default) for no record. ``touch`` adds one use to the loaded files' sidecars. ``deadline``
        (an ``engine.pack.index.Deadline``) bounds the index's refresh, ``progress(done, total)`` hears of it
        (see :meth:`engine.pack.packer.Packer.pack`).
        """
        from engine.budget import split
        from engine.model import task_hash

        full = self.resolve_agent(agent)
        detection = None
        if tier is not None:
            source, tier_id = "given", self.tier(tier).id
        elif task is not None and self._sections.get("detection"):
            detection = self.detect(task, context)
            source, tier_id = "detected", detection.tier
        else:
            source, tier_id = "default", self.default_tier
        allocation = self.allocate(full, tier_id, detection)
        if budget is not None:
            if type(budget) is not int or not 0 <= budget <= MAX_BUDGET:
                raise ValueError(f"budget must be a whole number from 0 to {MAX_BUDGET:,}, not {budget!r}")
            weights = self.profiles[allocation.profile].weights
            allocation = allocation._replace(budget=budget, capped=False, scopes=frozen_map(split(budget, weights)))
        packer = self.packer
        provenance = {"tier_source": source,
                      "confidence": detection.confidence if detection is not None else None,
                      "signals": list(detection.signal_ids) if detection is not None else [],
                      "task_hash": task_hash(task),
                      "task": task if packer.settings.log_task else None,
                      "run_id": run_id, "session_id": session_id}
        result = packer.pack(allocation, task, root=root, context=context, provenance=provenance, deadline=deadline,
                             progress=progress)
        if touch:
            from engine.pack.index import touch_sidecars

            touch_sidecars(result.root, result.paths())
        if log is not False:
            from engine.monitor import record_pack

            result = result._replace(log_error=record_pack(self, result, log))
        return result


MAX_TABLE_CELLS = 20_000
"""The largest budget table kept (agents × tiers, for a formula that reads ``agent``); past it, allocations
evaluate the formula."""


def budget_table(policy: Policy) -> dict | None:
    """The budget formula's value for every profile at every tier — or for every agent, when the formula reads
    ``agent`` — as plain data: ``{"by": "profile" | "agent", "detection": whether the formula reads
    ``detection`` (then a detected tier's allocation still evaluates it), "table": {key: [budget per tier, in
    tier order]}}``. None when the formula fails somewhere (validation refuses such a policy) or the table
    would be larger than :data:`MAX_TABLE_CELLS`. Compiles the formula (the cache keeps the table, so a warm
    allocation compiles nothing)."""
    try:
        names = policy.budget_formula.names
        by_agent = "agent" in names
        if (len(policy.agents) if by_agent else len(policy.profiles)) * len(policy.tiers) > MAX_TABLE_CELLS:
            return None
        if by_agent:
            keys = {agent: policy.profiles[profile] for agent, profile in policy.agents.items()}
        else:
            keys = {pid: profile for pid, profile in policy.profiles.items()}
        # an agent for the profile's binding of `agent` is not read (the formula does not read it): any name does
        table = {key: [policy.budget_of(key if by_agent else "", profile, tier) for tier in policy.tiers]
                 for key, profile in keys.items()}
    except Exception:  # noqa: BLE001 - a formula that fails is validation's to report; allocations evaluate it
        return None
    return {"by": "agent" if by_agent else "profile", "detection": "detection" in names, "table": table}


def _table_fits(budgets: Any, profiles: Mapping[str, Any], agents: Mapping[str, Any], tiers: int) -> bool:
    """Whether a budget table (:func:`budget_table`) has the shape it is written in, for these keys and tiers."""
    if type(budgets) is not dict or budgets.keys() != {"by", "detection", "table"}:
        return False
    by, table = budgets["by"], budgets["table"]
    keys = profiles if by == "profile" else agents if by == "agent" else None
    return (keys is not None and type(budgets["detection"]) is bool and type(table) is dict
            and table.keys() == keys.keys()
            and all(type(row) is list and len(row) == tiers and all(type(b) is int and b >= 0 for b in row)
                    for row in table.values()))


def _copy(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, tuples and scalars)."""
    kind = type(value)
    if kind is dict:
        return {k: _copy(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_copy(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _digest_of(files: Any, data: Any) -> str:
    """A short digest of what a policy came from: its files' contents, else its data."""
    from engine.policy.cache import sha256

    if files:
        text = ";".join(digest for _, digest in files)
    else:
        import json

        text = json.dumps(data, sort_keys=True, default=str)
    return "sha256:" + sha256(text.encode()).hexdigest()[:16]
