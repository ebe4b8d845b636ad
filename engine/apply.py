"""Write confident recommendations into the policy file: reassign agents, adjust profile weights.

    plan = plan_apply(policy, recommendations)     # the edit, its diff, and whether the result validates
    if plan.valid and plan.changes:
        write_plan(plan)

Only recommendations at the policy's ``min_confidence`` or above are written. An agent moves to the next
larger (upgrade) or smaller (downgrade) profile. A profile's weights are shared by all its agents, so they are
adjusted only when every agent of the profile with enough data asks for it, to the runs-weighted mean of what
they loaded; otherwise the change is skipped, with the reason.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from engine.diagnostics import Problem, UsageError
from engine.recommend import Recommendation, hundredths
from engine.resources import policies_dir


@dataclass(frozen=True, slots=True)
class Change:
    """One edit the plan makes."""

    action: str
    target: str  # the agent (upgrade, downgrade) or the profile (adjust-weights)
    description: str
    confidence: float

    def to_dict(self) -> dict:
        return {"action": self.action, "target": self.target, "description": self.description,
                "confidence": round(self.confidence, 4)}


@dataclass(frozen=True, slots=True)
class Skipped:
    """A recommendation the plan does not write, and why."""

    agent: str
    action: str
    why: str

    def to_dict(self) -> dict:
        return {"agent": self.agent, "action": self.action, "why": self.why}


@dataclass
class ApplyPlan:
    """The edited policy text, the changes in it, what was left out, and the result's validation."""

    path: Path
    label: str
    original: str
    updated: str
    changes: list[Change] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    stale_examples: list[str] = field(default_factory=list)  # golden examples the edit makes fail
    reformatted: int = 0

    @property
    def valid(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def diff(self) -> str:
        from engine.policy.edit import unified_diff

        return unified_diff(self.label, self.original, self.updated)

    def to_dict(self, written: bool) -> dict:
        return {"policy": self.label, "changes": [c.to_dict() for c in self.changes],
                "skipped": [s.to_dict() for s in self.skipped], "valid": self.valid,
                "problems": [p.to_dict() for p in self.problems], "stale_examples": self.stale_examples,
                "diff": self.diff(), "written": written}


def policy_file(policy: Any) -> Path:
    """The file ``apply`` edits: the policy's own (the top of its ``extends`` chain)."""
    if not policy.files:
        raise UsageError("this policy was not loaded from a file; apply edits a policy file")
    path = Path(policy.files[0][0])
    if path.resolve().parent == Path(policies_dir()).resolve():
        raise UsageError(f"{policy.source} is a bundled policy and is not edited; create ctxbudget.yaml with "
                         f"`extends: {path.stem}` and apply to it (--policy ctxbudget.yaml)")
    return path


def suggested_command(policy: Any, log: str | os.PathLike, since: Any = None, until: Any = None) -> str:
    """The ``ctxbudget apply --dry-run`` command line that plans these recommendations: the same log, period
    and policy file. A bundled policy is not edited, so the line first makes a policy that extends it."""
    import shlex
    from datetime import timezone

    def stamp(value: Any) -> str:
        return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")

    period = (f" --since {stamp(since)}" if since else "") + (f" --until {stamp(until)}" if until else "")
    try:
        target, prefix = shlex.quote(_shown(policy_file(policy))), ""
    except UsageError:
        name = Path(policy.files[0][0]).stem if policy.files else "default"
        target, prefix = "ctxbudget.yaml", f"test -e ctxbudget.yaml || printf 'extends: {name}\\n' > ctxbudget.yaml; "
    return f"{prefix}ctxbudget apply --policy {target} --log {shlex.quote(os.fspath(log))}{period} --dry-run"


def _shown(path: Path) -> str:
    """``path`` relative to the working folder when it is inside it, else absolute."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else relative


def plan_apply(policy: Any, recommendations: Sequence[Recommendation], path: Path | None = None) -> ApplyPlan:
    """The edit the confident recommendations make to the policy file, validated."""
    from engine.policy.edit import PolicyEditor

    path = path or policy_file(policy)
    editor = PolicyEditor.open(path)
    plan = ApplyPlan(path, policy.source, editor.original, editor.original, reformatted=editor.reformatted)
    plan_changes(policy, recommendations, plan, editor)
    plan.updated = editor.text()
    if plan.changes:
        plan.problems, edited = validate_text(path, plan.updated, policy.source)
        if edited is not None:
            plan.stale_examples = stale_examples(edited)
    return plan


class _Unwritten:
    """An editor that edits nothing: the changes of a plan without a policy file (``recommend`` counts
    them with exactly the rules ``apply`` writes them by)."""

    def set_agent_profile(self, agent: str, profile: str) -> None:
        pass

    def set_weights(self, profile: str, weights: Any) -> None:
        pass


def plan_changes(policy: Any, recommendations: Sequence[Recommendation], plan: Any = None,
                 editor: Any = None) -> Any:
    """Record in ``plan`` (``.changes``, ``.skipped``) what ``apply`` writes of ``recommendations`` and
    what it leaves out, making the edits through ``editor`` (none: only counted). Returns ``plan``."""
    if plan is None:
        plan = ApplyPlan(Path(), policy.source, "", "")
    editor = editor if editor is not None else _Unwritten()
    threshold = policy.recommendations.min_confidence
    by_profile: dict[str, list[Recommendation]] = {}
    for rec in recommendations:
        by_profile.setdefault(rec.profile, []).append(rec)
    for rec in recommendations:
        if rec.action not in ("upgrade", "downgrade"):
            continue
        if rec.confidence < threshold:
            plan.skipped.append(Skipped(rec.agent, rec.action, f"confidence {rec.confidence:.2f} < {threshold:g}"))
        elif rec.agent not in policy.agents:
            plan.skipped.append(Skipped(rec.agent, rec.action, "the policy has no such agent"))
        elif rec.target_profile is None:
            size = "larger" if rec.action == "upgrade" else "smaller"
            plan.skipped.append(Skipped(rec.agent, rec.action, f"no {size} profile than {rec.profile}"))
        else:
            editor.set_agent_profile(rec.agent, rec.target_profile)
            plan.changes.append(Change(rec.action, rec.agent, f"{rec.agent}: {rec.profile} → {rec.target_profile}",
                                       rec.confidence))
    for profile, group in by_profile.items():
        _plan_weights(editor, plan, policy, profile, group, threshold)
    return plan


def _plan_weights(editor: Any, plan: ApplyPlan, policy: Any, profile: str, group: list[Recommendation],
                  threshold: float) -> None:
    asking = [r for r in group if r.action == "adjust-weights" and r.confidence >= threshold and r.weights]
    for rec in group:
        if rec.action == "adjust-weights" and rec not in asking:
            plan.skipped.append(Skipped(rec.agent, rec.action, f"confidence {rec.confidence:.2f} < {threshold:g}"))
    if not asking:
        return
    staying = [r.agent for r in group if r.action in ("maintain", "adjust-weights") and r not in asking]
    if staying or profile not in policy.profiles:
        why = (f"profile {profile} is shared with {', '.join(staying)}, whose usage does not ask for new "
               f"weights; give the agent its own profile to tune it" if staying else "the policy has no such profile")
        plan.skipped.extend(Skipped(r.agent, r.action, why) for r in asking)
        return
    runs = sum(r.evidence.get("runs", 1) for r in asking)
    scopes = list(asking[0].weights or {})
    pooled = {s: sum((r.weights or {}).get(s, 0.0) * r.evidence.get("runs", 1) for r in asking) / runs for s in scopes}
    weights = hundredths(pooled)
    old = dict(policy.profiles[profile].weights)
    if all(abs(old.get(s, 0.0) - w) < 1e-9 for s, w in weights.items()):
        return
    editor.set_weights(profile, weights)
    shown = ", ".join(f"{s} {old.get(s, 0):g}→{w:g}" for s, w in weights.items() if abs(old.get(s, 0) - w) > 1e-9)
    plan.changes.append(Change("adjust-weights", profile, f"{profile} weights: {shown} "
                               f"(from {', '.join(r.agent for r in asking)})", min(r.confidence for r in asking)))


def validate_text(path: Path, text: str, label: str) -> tuple[list[Problem], Any]:
    """The problems of ``text`` as the policy at ``path`` (checked beside it, so ``extends`` resolves), and
    the compiled policy when it is valid."""
    from engine.policy import check_policy

    temp = _temp_path(path)
    try:
        temp.write_text(text, encoding="utf-8")
        problems, edited = check_policy(temp)
    except OSError as exc:
        raise UsageError(f"cannot write beside {label} to check the edit: {exc.strerror or exc}") from None
    finally:
        temp.unlink(missing_ok=True)
    return [p._replace(path=label) if p.path.endswith(temp.name) else p for p in problems], edited


def stale_examples(policy: Any) -> list[str]:
    """The golden examples (``examples:``) of ``policy`` that fail: an edit may change budgets they pin."""
    from engine.golden import run_examples

    return [f"{r.subject}: expects {_tokens(r.expected)}, gets {_tokens(r.actual)}"
            for r in run_examples(policy) if not r.passed]


def _tokens(value: Any) -> str:
    if not isinstance(value, dict) or "budget" not in value:
        return str(value)
    scopes = value.get("scopes")
    split = " (" + ", ".join(f"{s} {t:,}" for s, t in scopes.items()) + ")" if scopes else ""
    return f"{value['budget']:,}{split}"


def write_plan(plan: ApplyPlan) -> None:
    """Replace the policy file with the plan's text, atomically, keeping its permissions."""
    temp = _temp_path(plan.path)
    try:
        temp.write_text(plan.updated, encoding="utf-8")
        shutil.copymode(plan.path, temp)
        os.replace(temp, plan.path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise UsageError(f"cannot write {plan.label}: {exc.strerror or exc}") from None


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.apply.tmp")
