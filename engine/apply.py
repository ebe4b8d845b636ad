"""Write confident recommendations into the policy file: reassign agents, adjust profile weights.

    plan = plan_apply(policy, recommendations)     # the edit, its diff, and whether the result validates
    if plan.valid and plan.changes:
        write_plan(plan)

Writing is safe when other things touch the policy (:func:`write_plan`): the new text goes to a ``mkstemp``
file beside the policy (an unpredictable name, created exclusively, so nothing planted there is followed),
takes the policy's mode (and owner, for root), and replaces the policy with ``os.replace`` only if the policy's
bytes are still the ones the plan was made from (compare-and-swap; :class:`PolicyChanged` otherwise). A
read-only policy is refused. No temp file outlives a normal error; one left by a killed ``apply`` is named
``.NAME.XXXXXXXX.ctxbudget-apply.tmp`` and removed by a later ``apply`` once it is an hour old.

Only recommendations at the policy's ``min_confidence`` or above are written. An agent moves to the next
larger (upgrade) or smaller (downgrade) profile. A profile's weights are shared by all its agents, so they are
adjusted only when every agent of the profile with enough data asks for it, to the runs-weighted mean of what
they loaded; otherwise the change is skipped, with the reason.
"""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Sequence

from engine.diagnostics import Problem, UsageError
from engine.digest import sha256
from engine.recommend import Recommendation, hundredths
from engine.records import Record, rounded, to_dict
from engine.resources import policies_dir


TEMP_SUFFIX = ".ctxbudget-apply.tmp"
"""Every temp file apply makes is ``.<policy file name>.<8 random characters>`` + this."""

STALE_AFTER_S = 3600.0
"""A temp file of ours this old was left by a killed apply (a live one lasts milliseconds); it is removed."""


class PolicyChanged(Exception):
    """The policy file changed on disk since apply read it; nothing was written (exit 1)."""


class Change(Record):
    """One edit the plan makes."""

    action: str
    target: str  # the agent (upgrade, downgrade) or the profile (adjust-weights)
    description: str
    confidence: float

    _json_convert = {"confidence": rounded(4)}
    to_dict = to_dict


class Skipped(Record):
    """A recommendation the plan does not write, and why."""

    agent: str
    action: str
    why: str

    to_dict = to_dict


class ApplyPlan(Record):
    """The edited policy text, the changes in it, what was left out, and the result's validation.

    Its JSON form is the ``apply --json`` contract; ``written`` says whether the plan was written to the policy
    (``plan._replace(written=True)`` once :func:`write_plan` did).
    """

    path: Path
    label: str
    original: str
    updated: str
    changes: tuple[Change, ...] = ()
    raw: bytes | None = None  # the bytes the plan was made from (compare-and-swap); None: ``original`` in UTF-8
    skipped: tuple[Skipped, ...] = ()
    problems: tuple[Problem, ...] = ()
    stale_examples: tuple[str, ...] = ()  # golden examples the edit makes fail
    reformatted: int = 0
    written: bool = False

    @property
    def valid(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def diff(self) -> str:
        from engine.policy.edit import unified_diff

        return unified_diff(self.label, self.original.replace("\r\n", "\n"), self.updated.replace("\r\n", "\n"))

    _json_fields = ("label", "changes", "skipped", "valid", "problems", "stale_examples", "diff", "written")
    _json_names = {"label": "policy"}

    def to_dict(self, written: bool | None = None) -> dict:
        """The JSON form; ``written`` given, as if ``written`` were that (the ``apply`` command says)."""
        return to_dict(self if written is None else self._replace(written=written))


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
    files = getattr(policy, "files", ())
    if files and Path(files[0][0]) == path and sha256(editor.raw).hexdigest() != files[0][1]:
        raise PolicyChanged(f"{policy.source} changed on disk since it was loaded; nothing written — run apply "
                            f"again to plan against the file as it is now")
    counted = plan_changes(policy, recommendations, editor)
    updated = editor.text()
    problems: list[Problem] = []
    stale: list[str] = []
    if counted.changes:
        problems, edited = validate_text(path, updated, policy.source)
        if edited is not None:
            stale = stale_examples(edited)
    return ApplyPlan(path, policy.source, editor.original, updated, counted.changes, editor.raw, counted.skipped,
                     tuple(problems), tuple(stale), editor.reformatted)


class _Unwritten:
    """An editor that edits nothing: the changes of a plan without a policy file (``recommend`` counts
    them with exactly the rules ``apply`` writes them by)."""

    def set_agent_profile(self, agent: str, profile: str) -> None:
        pass

    def set_weights(self, profile: str, weights: Any) -> None:
        pass


def plan_changes(policy: Any, recommendations: Sequence[Recommendation], editor: Any = None) -> ApplyPlan:
    """What ``apply`` writes of ``recommendations`` (``.changes``) and what it leaves out (``.skipped``),
    making the edits through ``editor`` (none: only counted), as a plan of no file."""
    editor = editor if editor is not None else _Unwritten()
    threshold = policy.recommendations.min_confidence
    changes: list[Change] = []
    skipped: list[Skipped] = []
    by_profile: dict[str, list[Recommendation]] = {}
    for rec in recommendations:
        by_profile.setdefault(rec.profile, []).append(rec)
    for rec in recommendations:
        if rec.action not in ("upgrade", "downgrade"):
            continue
        if rec.confidence < threshold:
            skipped.append(Skipped(rec.agent, rec.action, f"confidence {rec.confidence:.2f} < {threshold:g}"))
        elif rec.agent not in policy.agents:
            skipped.append(Skipped(rec.agent, rec.action, "the policy has no such agent"))
        elif rec.target_profile is None:
            size = "larger" if rec.action == "upgrade" else "smaller"
            skipped.append(Skipped(rec.agent, rec.action, f"no {size} profile than {rec.profile}"))
        else:
            editor.set_agent_profile(rec.agent, rec.target_profile)
            changes.append(Change(rec.action, rec.agent, f"{rec.agent}: {rec.profile} → {rec.target_profile}",
                                  rec.confidence))
    for profile, group in by_profile.items():
        _plan_weights(editor, changes, skipped, policy, profile, group, threshold)
    return ApplyPlan(Path(), policy.source, "", "", tuple(changes), None, tuple(skipped))


def _plan_weights(editor: Any, changes: list[Change], skipped: list[Skipped], policy: Any, profile: str,
                  group: list[Recommendation], threshold: float) -> None:
    asking = [r for r in group if r.action == "adjust-weights" and r.confidence >= threshold and r.weights]
    for rec in group:
        if rec.action == "adjust-weights" and rec not in asking:
            skipped.append(Skipped(rec.agent, rec.action, f"confidence {rec.confidence:.2f} < {threshold:g}"))
    if not asking:
        return
    staying = [r.agent for r in group if r.action in ("maintain", "adjust-weights") and r not in asking]
    if staying or profile not in policy.profiles:
        why = (f"profile {profile} is shared with {', '.join(staying)}, whose usage does not ask for new "
               f"weights; give the agent its own profile to tune it" if staying else "the policy has no such profile")
        skipped.extend(Skipped(r.agent, r.action, why) for r in asking)
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
    changes.append(Change("adjust-weights", profile, f"{profile} weights: {shown} "
                          f"(from {', '.join(r.agent for r in asking)})", min(r.confidence for r in asking)))


def validate_text(path: Path, text: str, label: str) -> tuple[list[Problem], Any]:
    """The problems of ``text`` as the policy at ``path`` (checked beside it, so ``extends`` resolves), and
    the compiled policy when it is valid."""
    from engine.policy import check_policy

    try:
        with _TempFile(path) as temp:
            temp.write(text.encode("utf-8"))
            temp.close()
            problems, edited = check_policy(temp.path)
    except OSError as exc:
        raise UsageError(f"cannot write beside {label} to check the edit: {exc.strerror or exc}") from None
    return [p._replace(path=label) if p.path.endswith(temp.path.name) else p for p in problems], edited


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
    """Replace the policy file with the plan's text, atomically, keeping its mode and line endings.

    Raises :class:`PolicyChanged` (nothing written) when the file's bytes are no longer those the plan was
    made from, and UsageError when the policy is read-only or cannot be written. No temp file is left behind.
    """
    path = plan.path
    expected = plan.raw if plan.raw is not None else plan.original.encode("utf-8")
    info = _writable_policy(path, plan.label)
    remove_stale_temps(path)
    try:
        with _TempFile(path) as temp:
            temp.write(plan.updated.encode("utf-8"))
            temp.keep_mode(info)
            temp.close()
            if _current_bytes(path, len(expected)) != expected:
                raise PolicyChanged(f"{plan.label} changed on disk while apply ran; nothing written — run apply "
                                    f"again to plan against the file as it is now")
            os.replace(temp.path, path)
            temp.replaced = True
    except OSError as exc:
        raise UsageError(f"cannot write {plan.label}: {exc.strerror or exc}") from None
    from engine.policy.locate import sync_folder

    sync_folder(path.parent)


def check_writable(plan_path: Path, label: str) -> None:
    """UsageError when apply could not write the policy (read-only): checked before asking the user."""
    _writable_policy(plan_path, label)


def _writable_policy(path: Path, label: str) -> os.stat_result:
    try:
        info = os.stat(path)
    except OSError as exc:
        raise UsageError(f"cannot write {label}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise UsageError(f"cannot write {label}: not a regular file")
    if not info.st_mode & stat.S_IWUSR or not os.access(path, os.W_OK):
        raise UsageError(f"{label} is read-only (mode {stat.S_IMODE(info.st_mode):04o}); apply does not rewrite a "
                         f"read-only policy — make it writable (chmod u+w {label}) to apply, or use --dry-run")
    return info


def _current_bytes(path: Path, expected_size: int) -> bytes | None:
    """The policy's bytes now (one more than expected tells it grew); None when it is gone or not a file."""
    from engine.policy.locate import NotRegularFile, read_bytes

    try:
        return read_bytes(path, limit=expected_size)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, NotRegularFile):
        return None


class _TempFile:
    """A ``mkstemp`` file beside ``path`` (same folder, so ``os.replace`` is atomic), removed on leaving the
    ``with`` block unless it replaced the policy — on every error, KeyboardInterrupt included."""

    def __init__(self, path: Path):
        import tempfile

        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
        self.fd: int | None = fd
        self.path = Path(name)
        self.replaced = False

    def write(self, data: bytes) -> None:
        assert self.fd is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]

    def keep_mode(self, info: os.stat_result) -> None:
        """The policy's permission bits (and, when root, its owner), set on the descriptor, not by name."""
        assert self.fd is not None
        if hasattr(os, "fchown") and hasattr(os, "geteuid") and os.geteuid() == 0:
            try:
                os.fchown(self.fd, info.st_uid, info.st_gid)
            except OSError:
                pass
        os.fchmod(self.fd, stat.S_IMODE(info.st_mode))

    def close(self) -> None:
        if self.fd is not None:
            fd, self.fd = self.fd, None
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def __enter__(self) -> "_TempFile":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if not self.replaced:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass


def remove_stale_temps(path: Path, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove the temp files a killed ``apply`` left beside ``path``: only ours (our name pattern, a regular
    file owned by this user), only those older than ``older_than_s``. Returns what was removed."""
    pattern = re.compile(re.escape(f".{path.name}.") + r"[A-Za-z0-9_]{8}" + re.escape(TEMP_SUFFIX))
    removed = []
    now = time.time()
    uid = os.geteuid() if hasattr(os, "geteuid") else None
    try:
        names = os.listdir(path.parent)
    except OSError:
        return removed
    for name in names:
        if not pattern.fullmatch(name):
            continue
        candidate = path.parent / name
        try:
            info = os.lstat(candidate)
            uid = info.st_uid if uid is None else uid
            if stat.S_ISREG(info.st_mode) and info.st_uid == uid and now - info.st_mtime > older_than_s:
                os.unlink(candidate)
                removed.append(candidate)
        except OSError:
            continue
    return removed
