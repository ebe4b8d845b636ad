"""One line of the usage log: :class:`UsageRecord`, and reading both record formats.

The native format (``schemas/usage-record.schema.json``) carries the usage as a fraction; the seed's format
(``budget_allocated``, ``usage_pct``, ``exceeded_budget``, ``scopes_loaded`` or ``scope_breakdown``,
``task_complexity``, ``warnings_triggered``) carries it as a percentage. :func:`record_fields` reads either
into one tuple, which is all the analytics need; :meth:`UsageRecord.from_dict` builds the full record.

The fields are defined once, in :class:`UsageRecord` (their order is a log line's): :data:`RECORD_FIELDS` names
them, :class:`RecordFields` is the analytic ones among them (:data:`ANALYTIC_FIELDS`), :data:`PROVENANCE_FIELDS`
the optional provenance, and the log line is the record's generated JSON form.
"""

from __future__ import annotations

from datetime import datetime, timezone
from types import MappingProxyType, new_class

from engine.budget import MAX_BUDGET
from engine.model import task_hash  # noqa: F401 - part of this module's interface (the record's task_hash)
from engine.records import Record, rounded, to_dict

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Mapping


class CorruptRecord(ValueError):
    """A line that is JSON but not a usage record (the reason is the message)."""


MAX_TOKENS = MAX_BUDGET
"""The most tokens a run may load (in one scope or in all): the largest integer every JSON reader keeps exact, as
the largest budget (engine.budget.MAX_BUDGET)."""

MAX_READ_BUDGET = 2**63 - 1
"""The largest budget a record read from a log may give: what the analytics engine (a BIGINT) and Parquet hold.
(ctxbudget itself writes at most engine.budget.MAX_BUDGET.)"""


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
            usage = pct  # a percentage: checked below as a usage is, then divided
            if type(pct) is int or type(pct) is float:  # (not a bool: true is not a number)
                try:
                    usage = pct / 100.0
                except OverflowError:  # an integer past a double: as 1e400 is
                    usage = _INFINITY
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
    if type(budget) is not int or type(loaded) is not int or not 0 <= budget <= MAX_READ_BUDGET \
            or not 0 <= loaded <= MAX_TOKENS:
        raise CorruptRecord("budget and tokens loaded must be non-negative integers")
    if usage is None:
        usage = loaded / budget if budget > 0 else 0.0
    elif (type(usage) is not float and type(usage) is not int) or not 0 <= usage < _INFINITY:
        raise CorruptRecord("usage must be a non-negative number")
    if type(scopes) is not dict:
        raise CorruptRecord("per-scope tokens must be a mapping")
    for tokens in scopes.values():
        if type(tokens) is not int or not 0 <= tokens <= MAX_TOKENS:
            raise CorruptRecord("per-scope tokens must be non-negative integers")
    if exceeded is None:
        exceeded = loaded > budget
    if type(exceeded) is not bool or type(success) is not bool:  # success: also when exceeded is not given
        raise CorruptRecord("'exceeded' and 'success' must be true or false")
    profile = obj.get("profile") or ""
    if type(tier) is not str or type(profile) is not str:
        raise CorruptRecord("'tier' and 'profile' must be strings")
    return _make(RecordFields, (timestamp, agent, profile, tier, budget, loaded, usage, exceeded, scopes, success))


_INFINITY = float("inf")


def _scope_tokens(scopes: Mapping[str, Any]) -> dict[str, int]:
    if not all(type(t) is int and 0 <= t <= MAX_TOKENS for t in scopes.values()):
        raise CorruptRecord("per-scope tokens must be non-negative integers")
    return dict(scopes)


def _whole(value: Any) -> bool:
    """Whether ``value`` is a token count: an int (not a bool) from 0 to MAX_TOKENS."""
    return type(value) is int and 0 <= value <= MAX_TOKENS


def _fraction(value: Any) -> float:
    """The usage of a record as a float; CorruptRecord when it is too large for one."""
    try:
        return float(value)
    except OverflowError:
        raise CorruptRecord("usage must be a non-negative number") from None


def _seconds(value: Any) -> float | None:
    """A duration read from a log line: a finite non-negative number, else None."""
    if type(value) is int and 0 <= value <= MAX_TOKENS:
        return float(value)
    if type(value) is float and 0 <= value < _INFINITY:
        return value
    return None


def parse_timestamp(text: str) -> datetime:
    """An ISO 8601 timestamp; one without a zone is taken as UTC. ValueError when it is not one."""
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def format_timestamp(value: datetime) -> str:
    """``2025-10-14T20:00:00.123Z``: UTC, milliseconds."""
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Fields(Record):
    """The fields of a usage record: the one list of them (:class:`UsageRecord` adds the checks)."""

    timestamp: datetime
    agent: str
    profile: str
    tier: str
    budget: int
    tokens_loaded: int
    usage: float
    exceeded: bool
    scopes: Mapping[str, int] = MappingProxyType({})
    alerts: tuple[str, ...] = ()
    refused_tokens: int = 0
    duration_s: float | None = None
    success: bool = True
    error: str | None = None
    policy_hash: str | None = None
    # Provenance (all optional; absent in older logs): where the tier came from, how sure detection was, the
    # signals that fired, a hash of the task (the text only when the policy sets memory.log_task), the number
    # of memory items a pack loaded, and the caller's run and session ids.
    tier_source: str | None = None
    confidence: float | None = None
    signals: tuple[str, ...] = ()
    task_hash: str | None = None
    task: str | None = None
    items: int | None = None
    run_id: str | None = None
    session_id: str | None = None


class UsageRecord(_Fields):
    """One agent run: what it was allowed (budget), what it loaded, per scope, and how it ended.

    ``usage`` is ``tokens_loaded / budget`` as a fraction. ``exceeded`` means the run wanted more than its
    budget: it loaded more (soft enforcement) or a load was refused (hard enforcement, ``refused_tokens``).

    Building one (``_replace`` included) raises :class:`CorruptRecord` (a ValueError) for a record no log
    should hold: token counts that are not whole numbers from 0 to :data:`MAX_TOKENS`, a usage or duration that
    is negative, NaN or infinite, wrongly typed fields. Its JSON form (:meth:`to_dict`) is the log line, as
    ``schemas/usage-record.schema.json`` describes it.
    """

    __slots__ = ()

    _json_convert = {"timestamp": format_timestamp, "usage": rounded(6), "duration_s": rounded(3),
                     "confidence": rounded(6)}
    to_dict = to_dict

    def __new__(cls, *args: Any, **kwargs: Any) -> "UsageRecord":
        return _checked(super().__new__(cls, *args, **kwargs))

    @classmethod
    def _make(cls, iterable: Any) -> "UsageRecord":
        return _checked(tuple.__new__(cls, iterable))

    @classmethod
    def from_dict(cls, obj: Any) -> "UsageRecord":
        """A record from a decoded log line in either format; :class:`CorruptRecord` when it is not one."""
        values = record_fields(obj)._asdict()
        try:
            values["timestamp"] = parse_timestamp(values["timestamp"])
        except ValueError:
            raise CorruptRecord(f"'timestamp' is not an ISO 8601 time: {values['timestamp']!r}") from None
        values["usage"] = _fraction(values["usage"])
        values["scopes"] = MappingProxyType(_scope_tokens(values["scopes"]))
        seed = "budget_allocated" in obj
        alerts = obj.get("warnings_triggered" if seed else "alerts")
        alerts = [] if alerts is None else alerts
        if not isinstance(alerts, list) or not all(isinstance(a, str) for a in alerts):
            raise CorruptRecord("alerts must be a list of strings")
        refused = obj.get("refused_tokens") or 0
        if not _whole(refused):
            raise CorruptRecord("'refused_tokens' must be a non-negative integer")
        error = obj.get("error")
        return cls(
            **values,
            alerts=tuple(SEED_ALERTS.get(a, a) for a in alerts) if seed else tuple(alerts),
            refused_tokens=refused,
            duration_s=_seconds(obj.get("duration_s")),
            error=error if isinstance(error, str) else None,
            policy_hash=obj.get("policy_hash") if isinstance(obj.get("policy_hash"), str) else None,
            **_provenance(obj),
        )


def _checked(record: UsageRecord) -> UsageRecord:
    """``record``, or :class:`CorruptRecord` when no log should hold it (see :class:`UsageRecord`)."""
    if not isinstance(record.timestamp, datetime):
        raise CorruptRecord(f"timestamp must be a datetime, not {type(record.timestamp).__name__}")
    for name in ("agent", "profile", "tier"):
        if type(getattr(record, name)) is not str:
            raise CorruptRecord(f"{name} must be a string, not {type(getattr(record, name)).__name__}")
    if type(record.budget) is not int or record.budget < 0:
        raise CorruptRecord("budget must be a non-negative integer")
    if record.budget > MAX_READ_BUDGET:  # a record no reader of the log would take
        raise CorruptRecord(f"budget must be at most {MAX_READ_BUDGET:,}")
    for name in ("tokens_loaded", "refused_tokens"):
        if not _whole(getattr(record, name)):
            raise CorruptRecord(f"{name} must be a whole number from 0 to {MAX_TOKENS:,}")
    if not all(type(s) is str and _whole(t) for s, t in record.scopes.items()):
        raise CorruptRecord(f"per-scope tokens must be whole numbers from 0 to {MAX_TOKENS:,}, by scope name")
    if type(record.usage) not in (int, float) or not 0 <= record.usage < _INFINITY:
        raise CorruptRecord(f"usage must be a finite non-negative number, not {record.usage!r}")
    if record.duration_s is not None and (type(record.duration_s) not in (int, float)
                                          or not 0 <= record.duration_s < _INFINITY):
        raise CorruptRecord(f"duration_s must be a finite non-negative number, not {record.duration_s!r}")
    if type(record.exceeded) is not bool or type(record.success) is not bool:
        raise CorruptRecord("exceeded and success must be True or False")
    if not all(type(a) is str for a in record.alerts):
        raise CorruptRecord("alerts must be strings")
    return record


RECORD_FIELDS: tuple[str, ...] = UsageRecord._fields
"""The fields of a usage record, in the order a log line writes them: the native format's keys."""

PROVENANCE_FIELDS: tuple[str, ...] = RECORD_FIELDS[RECORD_FIELDS.index("tier_source"):]
"""The optional provenance fields (absent in older logs; a reader defaults them)."""

ANALYTIC_FIELDS = ("timestamp", "agent", "profile", "tier", "budget", "tokens_loaded", "usage", "exceeded", "scopes",
                   "success")
"""The fields analytics read (:class:`RecordFields`), whichever format a record was written in."""

RecordFields = new_class("RecordFields", (Record,), exec_body=lambda body: body.update(
    __module__=__name__,
    __annotations__={name: "str" if name == "timestamp" else _Fields.__annotations__[name]
                     for name in ANALYTIC_FIELDS},
    __doc__="""What analytics read from a record, whichever format it was written in: the fields of
:data:`ANALYTIC_FIELDS`, typed as in :class:`UsageRecord` but for the timestamp, kept as its ISO 8601 text."""))

_TIER_SOURCES = ("detected", "given", "default")


def _provenance(obj: dict) -> dict:
    """The optional provenance fields of a log line (:data:`PROVENANCE_FIELDS`, in order); absent or mistyped
    ones take their defaults."""
    def text(key: str) -> str | None:
        value = obj.get(key)
        return value if isinstance(value, str) else None

    confidence = obj.get("confidence")
    confidence = float(confidence) if type(confidence) in (int, float) and 0 <= confidence <= 1 else None
    signals = obj.get("signals")
    signals = tuple(s for s in signals if isinstance(s, str)) if isinstance(signals, list) else ()
    items = obj.get("items")
    return {"tier_source": obj.get("tier_source") if obj.get("tier_source") in _TIER_SOURCES else None,
            "confidence": confidence, "signals": signals, "task_hash": text("task_hash"), "task": text("task"),
            "items": items if type(items) is int and items >= 0 else None, "run_id": text("run_id"),
            "session_id": text("session_id")}
