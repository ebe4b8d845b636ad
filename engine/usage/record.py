"""One line of the usage log: :class:`UsageRecord`, and reading both record formats.

The native format (``schemas/usage-record.schema.json``) carries the usage as a fraction; the seed's format
(``budget_allocated``, ``usage_pct``, ``exceeded_budget``, ``scopes_loaded`` or ``scope_breakdown``,
``task_complexity``, ``warnings_triggered``) carries it as a percentage. :func:`record_fields` reads either
into one tuple, which is all the analytics need; :meth:`UsageRecord.from_dict` builds the full record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple


class CorruptRecord(ValueError):
    """A line that is JSON but not a usage record (the reason is the message)."""


class RecordFields(NamedTuple):
    """What analytics read from a record, whichever format it was written in."""

    timestamp: str
    agent: str
    profile: str
    tier: str
    budget: int
    tokens_loaded: int
    usage: float
    exceeded: bool
    scopes: Mapping[str, int]
    success: bool


# The seed's alert labels, by the policy's default thresholds.
SEED_ALERTS = {"75%": "info", "90%": "warning", "100%": "critical"}


_make = tuple.__new__  # RecordFields without NamedTuple's Python-level __new__: this runs once per log line


def record_fields(obj: Any) -> RecordFields:
    """The analytic fields of a decoded log line, native or seed format; :class:`CorruptRecord` otherwise."""
    if type(obj) is not dict:
        raise CorruptRecord("not a JSON object")
    try:
        if "budget_allocated" in obj:
            budget, pct = obj["budget_allocated"], obj.get("usage_pct")
            usage = None if pct is None else pct / 100.0
            scopes = obj.get("scopes_loaded") or obj.get("scope_breakdown") or {}
            if type(scopes) is dict:  # the seed sometimes wrote {"scope": {"tokens": n, "pct": p}}
                scopes = {s: (t.get("tokens", 0) if type(t) is dict else t) for s, t in scopes.items()}
            tier, exceeded = obj.get("task_complexity") or obj.get("tier") or "", obj.get("exceeded_budget")
        else:
            budget, usage, scopes = obj["budget"], obj.get("usage"), obj.get("scopes") or {}
            tier, exceeded = obj.get("tier") or "", obj.get("exceeded")
        timestamp, agent, loaded = obj["timestamp"], obj["agent"], obj["tokens_loaded"]
        success = obj.get("success", True)
    except KeyError as exc:
        raise CorruptRecord(f"missing key {exc.args[0]!r}") from None
    except (TypeError, AttributeError) as exc:
        raise CorruptRecord(f"a value has the wrong type ({exc})") from None
    if type(agent) is not str or not agent:
        raise CorruptRecord("'agent' must be a non-empty string")
    if type(timestamp) is not str:
        raise CorruptRecord("'timestamp' must be a string")
    if type(budget) is not int or type(loaded) is not int or budget < 0 or loaded < 0:
        raise CorruptRecord("budget and tokens loaded must be non-negative integers")
    if usage is None:
        usage = loaded / budget if budget > 0 else 0.0
    elif (type(usage) is not float and type(usage) is not int) or not 0 <= usage < _INFINITY:
        raise CorruptRecord("usage must be a non-negative number")
    if type(scopes) is not dict:
        raise CorruptRecord("per-scope tokens must be a mapping")
    if exceeded is None:
        exceeded = loaded > budget
    elif type(exceeded) is not bool or type(success) is not bool:
        raise CorruptRecord("'exceeded' and 'success' must be true or false")
    profile = obj.get("profile") or ""
    if type(tier) is not str or type(profile) is not str:
        raise CorruptRecord("'tier' and 'profile' must be strings")
    return _make(RecordFields, (timestamp, agent, profile, tier, budget, loaded, usage, exceeded, scopes, success))


_INFINITY = float("inf")


def _scope_tokens(scopes: Mapping[str, Any]) -> dict[str, int]:
    if not all(type(t) is int and t >= 0 for t in scopes.values()):
        raise CorruptRecord("per-scope tokens must be non-negative integers")
    return dict(scopes)


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp; one without a zone is taken as UTC. ValueError when it is not one."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def format_timestamp(value: datetime) -> str:
    """``2025-10-14T20:00:00.123Z``: UTC, milliseconds."""
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One agent run: what it was allowed (budget), what it loaded, per scope, and how it ended.

    ``usage`` is ``tokens_loaded / budget`` as a fraction. ``exceeded`` means the run wanted more than its
    budget: it loaded more (soft enforcement) or a load was refused (hard enforcement, ``refused_tokens``).
    """

    timestamp: datetime
    agent: str
    profile: str
    tier: str
    budget: int
    tokens_loaded: int
    usage: float
    exceeded: bool
    scopes: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    alerts: tuple[str, ...] = ()
    refused_tokens: int = 0
    duration_s: float | None = None
    success: bool = True
    error: str | None = None
    policy_hash: str | None = None

    def to_dict(self) -> dict:
        """The log line, as ``schemas/usage-record.schema.json`` describes it."""
        return {
            "timestamp": format_timestamp(self.timestamp),
            "agent": self.agent,
            "profile": self.profile,
            "tier": self.tier,
            "budget": self.budget,
            "tokens_loaded": self.tokens_loaded,
            "usage": round(self.usage, 6),
            "exceeded": self.exceeded,
            "scopes": dict(self.scopes),
            "alerts": list(self.alerts),
            "refused_tokens": self.refused_tokens,
            "duration_s": None if self.duration_s is None else round(self.duration_s, 3),
            "success": self.success,
            "error": self.error,
            "policy_hash": self.policy_hash,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> "UsageRecord":
        """A record from a decoded log line in either format; :class:`CorruptRecord` when it is not one."""
        fields = record_fields(obj)
        try:
            timestamp = parse_timestamp(fields.timestamp)
        except ValueError:
            raise CorruptRecord(f"'timestamp' is not an ISO 8601 time: {fields.timestamp!r}") from None
        seed = "budget_allocated" in obj
        alerts = obj.get("warnings_triggered" if seed else "alerts")
        alerts = [] if alerts is None else alerts
        if not isinstance(alerts, list) or not all(isinstance(a, str) for a in alerts):
            raise CorruptRecord("alerts must be a list of strings")
        duration = obj.get("duration_s")
        error = obj.get("error")
        return cls(
            timestamp=timestamp,
            agent=fields.agent,
            profile=fields.profile,
            tier=fields.tier,
            budget=fields.budget,
            tokens_loaded=fields.tokens_loaded,
            usage=float(fields.usage),
            exceeded=fields.exceeded,
            scopes=MappingProxyType(_scope_tokens(fields.scopes)),
            alerts=tuple(SEED_ALERTS.get(a, a) for a in alerts) if seed else tuple(alerts),
            refused_tokens=int(obj.get("refused_tokens") or 0),
            duration_s=float(duration) if isinstance(duration, (int, float)) else None,
            success=fields.success,
            error=error if isinstance(error, str) else None,
            policy_hash=obj.get("policy_hash") if isinstance(obj.get("policy_hash"), str) else None,
        )
