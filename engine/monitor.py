"""The budget monitor: watch what one agent run loads against its budget, alert, record the run.

    with monitor(policy, "dbt-expert", tier="complex", log="usage.jsonl") as run:
        run.load("global", 4000)
        if not run.try_load("agent_patterns", 30000):   # refused under hard enforcement
            ...
        run.status()                                    # budget, loaded, usage, remaining, scopes, alerts

Alerts fire once each when the usage reaches the policy's thresholds (info, warning, critical), through the
``on_alert`` callback and the ``engine.monitor`` logger; nothing is printed. Under ``soft`` enforcement a
load past the budget is made and recorded as an exceedance; under ``hard`` it is refused
(:class:`BudgetExceeded` from ``load``, False from ``try_load``) and the refusal is recorded; with
``scope_enforcement: hard`` as well, so is a load past its scope's share of the budget. A scope the policy
does not have is an error (:class:`~engine.diagnostics.LookupFailed`, with close matches). Leaving the
block appends a :class:`~engine.usage.UsageRecord` to the usage log, marked failed with the exception's
message when the block raised.

Recording never costs the caller its result: when the record cannot be written (a full disk, a log that is
not writable), the error goes to the ``engine.monitor`` logger and to ``run.log_error`` (and
``run.status().log_error``), and the block's own outcome stands.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone
from types import MappingProxyType

TYPE_CHECKING = False  # not typing's: importing typing costs every start (the Stop hook records through here)
if TYPE_CHECKING:  # pragma: no cover
    from types import TracebackType
    from typing import Any, Callable, Mapping

from engine.diagnostics import LookupFailed, close_matches
from engine.model import Allocation, Thresholds
from engine.records import Record, to_dict
from engine.usage import UsageRecord, append_record, resolve_log_path
from engine.usage.record import MAX_TOKENS, PROVENANCE_FIELDS

_LOG_LEVELS = {"info": 20, "warning": 30, "critical": 40}  # logging.INFO, WARNING, ERROR


def _log(level: int, message: str, *args: Any) -> None:
    """``message % args`` to the ``engine.monitor`` logger, when the process uses :mod:`logging` at all. The logger
    has a NullHandler of its own (a library: the application decides where alerts go), so in a process that never
    imported logging no handler could take the record; not importing it saved the Stop hook 61.5 -> 54.9 ms
    (interleaved A/B, /work/s13/ab_stop.py)."""
    logging = sys.modules.get("logging")
    if logging is not None:
        _logger(logging).log(level, message, *args)


def _logger(logging: Any) -> Any:
    logger = logging.getLogger("engine.monitor")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    return logger


def __getattr__(name: str) -> Any:
    if name == "logger":  # ``engine.monitor.logger``: the logging.Logger alerts and write errors go to
        import logging

        return _logger(logging)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _clip(value: Any, width: int = 40) -> str:
    """``repr(value)`` for a message, cut to ``width`` (a huge int is described, not written out)."""
    if type(value) is int and abs(value) >= 10**width:
        return f"an integer of about {int(abs(value).bit_length() * 0.30103) + 1:,} digits"
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


class BudgetExceeded(Exception):
    """A load refused under hard enforcement: it would take the run past its budget, or (``share`` given,
    under ``scope_enforcement: hard``) its scope past the scope's share, ``scope_loaded`` being loaded."""

    def __init__(self, agent: str, scope: str, tokens: int, loaded: int, budget: int,
                 share: int | None = None, scope_loaded: int = 0):
        self.agent, self.scope, self.tokens, self.loaded, self.budget = agent, scope, tokens, loaded, budget
        self.share, self.scope_loaded = share, scope_loaded
        if share is None:
            message = f"would exceed the budget ({loaded:,} of {budget:,} loaded)"
        else:
            message = f"would exceed the scope's share ({scope_loaded:,} of {share:,} loaded from {scope!r})"
        super().__init__(f"{agent}: loading {tokens:,} tokens of {scope!r} {message}")


class Alert(Record):
    """A threshold the run's usage reached."""

    level: str  # info, warning or critical
    threshold: float
    usage: float
    loaded: int
    budget: int
    agent: str
    scope: str  # the scope whose load crossed the threshold

    def message(self) -> str:
        return (f"{self.agent}: {self.level}: {self.usage:.0%} of the budget loaded "
                f"({self.loaded:,} of {self.budget:,} tokens; threshold {self.threshold:.0%})")


class RunStatus(Record):
    """Where a run stands."""

    agent: str
    profile: str
    tier: str
    budget: int
    loaded: int
    usage: float
    remaining: int
    scopes: Mapping[str, int] = MappingProxyType({})
    alerts: tuple[str, ...] = ()
    exceeded: bool = False
    refused_tokens: int = 0
    log_error: str | None = None  # why the run's usage record could not be written, when it could not

    to_dict = to_dict


AlertCallback = "Callable[[Alert], Any]"  # a type alias for readers and type checkers (no run-time typing)


class Run:
    """The loads of one monitored agent run. Made by :func:`monitor`; not thread-safe."""

    def __init__(self, allocation: Allocation, thresholds: Thresholds, enforcement: str,
                 on_alert: AlertCallback | None = None, *, scopes: tuple[str, ...] | None = None,
                 scope_enforcement: str = "soft"):
        for name, value in (("enforcement", enforcement), ("scope_enforcement", scope_enforcement)):
            if value not in ("soft", "hard"):
                raise ValueError(f"{name} is 'soft' or 'hard', not {value!r}")
        self.allocation = allocation
        self.enforcement = enforcement
        self.scope_enforcement = scope_enforcement
        self.known_scopes = tuple(allocation.scopes) if scopes is None else tuple(scopes)  # the policy's
        self.loaded = 0
        self.scopes: dict[str, int] = {}
        self.alerts: list[str] = []
        self.refused_tokens = 0
        self.error: str | None = None
        self.log_error: str | None = None  # set when leaving the monitor block could not write the record
        self._pending = sorted(((v, k) for k, v in thresholds.items()))  # (fraction, level), lowest first
        self._on_alert = on_alert

    @property
    def budget(self) -> int:
        return self.allocation.budget

    def load(self, scope: str, tokens: int) -> None:
        """Record ``tokens`` loaded from ``scope``; :class:`BudgetExceeded` under hard enforcement when the
        load would pass the budget, or its scope's share under ``scope_enforcement: hard`` (the load is then
        not made, and the refusal is recorded). :class:`~engine.diagnostics.LookupFailed` for a scope the
        policy does not have."""
        refusal = self._load(scope, tokens)
        if refusal is not None:
            raise refusal

    def try_load(self, scope: str, tokens: int) -> bool:
        """Like :meth:`load`, but a refused load returns False instead of raising. ValueError, before anything
        is recorded, when ``tokens`` is not a whole number from 0 to :data:`~engine.usage.record.MAX_TOKENS`
        (a float, NaN, an infinity, a negative number) or ``scope`` is not a non-empty string."""
        return self._load(scope, tokens) is None

    def _load(self, scope: str, tokens: int) -> BudgetExceeded | None:
        if type(tokens) is not int or not 0 <= tokens <= MAX_TOKENS:
            raise ValueError(f"tokens must be a whole number from 0 to {MAX_TOKENS:,}, not {_clip(tokens)}")
        if type(scope) is not str or not scope:
            raise ValueError(f"a scope is a non-empty string, not {_clip(scope)}")
        if self.loaded + tokens > MAX_TOKENS:
            raise ValueError(f"a run loads at most {MAX_TOKENS:,} tokens in all")
        if scope not in self.known_scopes:
            raise unknown_scope(scope, self.known_scopes)
        refusal = self._refusal(scope, tokens)
        if refusal is not None:
            self.refused_tokens += tokens
            _log(30, "%s", f"refused: {refusal}")
            return refusal
        self.loaded += tokens
        self.scopes[scope] = self.scopes.get(scope, 0) + tokens
        self._raise_alerts(scope)
        return None

    def _refusal(self, scope: str, tokens: int) -> BudgetExceeded | None:
        """Why hard enforcement refuses this load, or None."""
        if self.enforcement != "hard":
            return None
        a = self.allocation
        if self.loaded + tokens > self.budget:
            return BudgetExceeded(a.agent, scope, tokens, self.loaded, self.budget)
        share, done = a.scopes.get(scope, 0), self.scopes.get(scope, 0)
        if self.scope_enforcement == "hard" and done + tokens > share:
            return BudgetExceeded(a.agent, scope, tokens, self.loaded, self.budget, share, done)
        return None

    def fail(self, message: str) -> None:
        """Mark the run failed without raising (the record says ``success: false`` and ``message``)."""
        self.error = message

    def usage(self) -> float:
        if self.budget > 0:
            return self.loaded / self.budget
        return 0.0 if self.loaded == 0 else float("inf")

    def status(self) -> RunStatus:
        a = self.allocation
        return RunStatus(a.agent, a.profile, a.tier, a.budget, self.loaded, self.usage(),
                         max(a.budget - self.loaded, 0), MappingProxyType(dict(self.scopes)), tuple(self.alerts),
                         self.exceeded, self.refused_tokens, self.log_error)

    @property
    def exceeded(self) -> bool:
        """Whether the run wanted more than its budget (loaded past it, or was refused a load)."""
        return self.loaded > self.budget or self.refused_tokens > 0

    def _raise_alerts(self, scope: str) -> None:
        usage = self.usage()
        while self._pending and usage >= self._pending[0][0]:
            threshold, level = self._pending.pop(0)
            alert = Alert(level, threshold, usage, self.loaded, self.budget, self.allocation.agent, scope)
            self.alerts.append(level)
            _log(_LOG_LEVELS.get(level, 30), "%s", alert.message())
            if self._on_alert is not None:
                self._on_alert(alert)

    def record(self, duration_s: float | None = None, policy_hash: str | None = None,
               ended: datetime | None = None, provenance: Mapping[str, Any] | None = None) -> UsageRecord:
        """The usage record of the run as it stands; ``provenance`` fills the record's optional provenance
        fields (tier_source, confidence, signals, task_hash, task, items, run_id, session_id)."""
        a = self.allocation
        usage = self.usage()
        return UsageRecord(
            timestamp=ended or datetime.now(timezone.utc), agent=a.agent, profile=a.profile, tier=a.tier,
            budget=a.budget, tokens_loaded=self.loaded, usage=usage if usage != float("inf") else 0.0,
            exceeded=self.exceeded, scopes=MappingProxyType(dict(self.scopes)), alerts=tuple(self.alerts),
            refused_tokens=self.refused_tokens, duration_s=duration_s, success=self.error is None,
            error=self.error, policy_hash=policy_hash, **_provenance_fields(provenance))


def _provenance_fields(provenance: Mapping[str, Any] | None) -> dict:
    found = {k: v for k, v in (provenance or {}).items() if k in PROVENANCE_FIELDS and v is not None}
    if "signals" in found:
        found["signals"] = tuple(found["signals"])
    return found


def unknown_scope(scope: str, scopes: tuple[str, ...]) -> LookupFailed:
    """The error for a scope name that is not one of ``scopes``, with the close matches agent names get."""
    return LookupFailed("scope", scope, close_matches(scope, scopes, n=5, spread=0.08),
                        f"unknown scope {scope!r} (scopes: {', '.join(scopes)})")


class Monitor:
    """The context manager :func:`monitor` returns: enters a :class:`Run`, appends its record on exit."""

    def __init__(self, run: Run, log: str | os.PathLike | None, policy_hash: str | None,
                 provenance: Mapping[str, Any] | None = None):
        self.run = run
        self.log = log
        self.policy_hash = policy_hash
        self.provenance = provenance
        self._started = 0.0

    def __enter__(self) -> Run:
        self._started = time.monotonic()
        return self.run

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc is not None and self.run.error is None:
            self.run.error = str(exc) or exc_type.__name__  # type: ignore[union-attr]
        if self.log is None:
            return
        record = self.run.record(time.monotonic() - self._started, self.policy_hash, provenance=self.provenance)
        try:
            append_record(self.log, record)
        except (OSError, ValueError) as err:  # a full disk must not undo the block's result (or hide its error)
            reason = getattr(err, "strerror", None) or str(err)
            self.run.log_error = f"cannot write the usage record to {self.log}: {reason}"
            _log(40, "%s: %s", self.run.allocation.agent, self.run.log_error)


def monitor(policy: Any, agent: str, task: str | None = None, tier: str | None = None,
            log: str | os.PathLike | bool | None = None, on_alert: AlertCallback | None = None,
            enforcement: str | None = None, scope_enforcement: str | None = None) -> Monitor:
    """Monitor one run of ``agent`` (see the module's documentation).

    The tier is ``tier``, else the one the policy detects for ``task`` (when the policy can detect), else the
    policy's default tier. ``log`` is the usage log's path; None uses the default location (``$CTXBUDGET_LOG``,
    the policy's ``usage_log``, the per-user default); False writes no record. ``enforcement`` and
    ``scope_enforcement`` override the policy's.
    """
    from engine.model import task_hash

    provenance: dict[str, Any] = {"tier_source": "given" if tier is not None else "default",
                                  "task_hash": task_hash(task)}
    detection = None
    if tier is None and task is not None and hasattr(policy, "detect"):
        detection = policy.detect(task)
        tier = detection.tier
        provenance.update(tier_source="detected", confidence=getattr(detection, "confidence", None),
                          signals=list(dict.fromkeys(h.signal for h in getattr(detection, "hits", ()))))
    # With the detection, a budget formula that hedges (detection.confidence, detection.runner_up) sees it.
    allocation = policy.allocate(agent, tier) if detection is None else policy.allocate(agent, tier, detection)
    run = Run(allocation, policy.thresholds, enforcement or policy.enforcement, on_alert,
              scopes=getattr(policy, "scopes", None),
              scope_enforcement=scope_enforcement or getattr(policy, "scope_enforcement", "soft"))
    path = None if log is False else resolve_log_path(None if log in (None, True) else log, policy)
    return Monitor(run, path, policy_digest(policy), provenance)


def record_pack(policy: Any, pack: Any, log: str | os.PathLike | None = None) -> str | None:
    """Append the usage record of a memory pack (an :class:`engine.pack.Pack`) to the usage log (``log``,
    else the default location): its allocation, the tokens it loaded per scope, how many items, and the
    tier's provenance. A pack never exceeds its budget, so soft enforcement records it as it is. Returns None,
    or why the record could not be written (also logged): a failed write never loses the pack."""
    run = Run(pack.allocation, policy.thresholds, "soft")
    for scope, tokens in pack.used.items():
        if tokens:
            run.load(scope, tokens)
    provenance = {**pack.provenance, "items": len(pack.items)}
    record = run.record(pack.seconds, policy_digest(policy), provenance=provenance)
    path = resolve_log_path(log, policy)
    try:
        append_record(path, record)
    except (OSError, ValueError) as err:
        reason = f"cannot write the usage record to {path}: {getattr(err, 'strerror', None) or err}"
        _log(40, "%s: %s", pack.allocation.agent, reason)
        return reason
    return None


def policy_digest(policy: Any) -> str:
    """A short digest of the policy a budget came from (:attr:`engine.policy.Policy.digest`)."""
    return policy.digest
