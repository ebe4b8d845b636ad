"""The plain data of complexity detection: signals, the hits of a task, its detection and its evaluation.

Kept apart from :mod:`engine.model` so that commands which only allocate budgets do not pay for building
these classes at start-up.
"""

from __future__ import annotations

from operator import attrgetter
from types import MappingProxyType
from engine.records import Record

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Mapping

from engine.model import Allocation
from engine.records import to_dict, to_json


class Hit(Record):
    """A signal that fired on a task: what it adds to which tier, and where in the task it matched.

    A NamedTuple rather than a frozen dataclass because the detector builds several per task on its hot
    path (a frozen dataclass costs 4× as much to build); it is just as immutable. ``span`` is a character span
    of the original task
    (None for a derived signal, which has no text); ``tier`` and ``weight`` are the signal's main weight
    (None and 0 for a signal that only counts or boosts); ``weights`` all of them.
    """

    signal: str
    tier: str | None
    weight: float
    text: str
    span: tuple[int, int] | None
    boost: int = 0
    weights: Mapping[str, float] = MappingProxyType({})
    group: str | None = None

    # The ``signals`` entries of ``evaluate --json`` and ``detect --json``: id, tier, weight, text, span.
    _json_names = {"signal": "id"}
    _json_omit = ("boost", "weights", "group")
    to_dict = to_dict


class Detection:
    """The complexity tier of a task, how sure the detector is, and why.

    ``scores`` per tier are the sums of the weights of the signals that fired; the best score gives
    ``base_tier``, the boosts of the signals that fired move it by ``boost`` steps to ``tier``; ``ask`` is the
    span of the ask when it is narrower than the task.

    Not a NamedTuple, unlike the other records: the detector decides the tier from which signals fired, and
    where they matched (``hits``, with their spans) is worked out only when ``hits`` is first read — by
    ``--explain``, ``--json`` or a caller that wants them — because locating the spans and building the hit
    objects is most of the time of a detection that only needs its tier (docs/detection.md, "Speed"). It reads
    like the record it was: immutable fields, equality by value, iteration and :func:`engine.records.to_dict`
    over :attr:`_fields` (the JSON form: ``hits`` as ``signals``, without ``ask``).
    """

    __slots__ = ("_tier", "_confidence", "_base_tier", "_boost", "_ask", "_scores", "_tiers", "_hits", "_pending")
    _fields = ("tier", "confidence", "scores", "base_tier", "boost", "hits", "ask")
    _json_names = {"hits": "signals"}
    _json_omit = ("ask",)
    to_dict = to_dict

    # Read-only: the fields are properties over private slots (the detector fills the slots directly; a
    # __setattr__ that refused writes would make every detection pay for it).
    tier: str = property(attrgetter("_tier"))  # type: ignore[assignment]
    confidence: float = property(attrgetter("_confidence"))  # type: ignore[assignment]
    base_tier: str = property(attrgetter("_base_tier"))  # type: ignore[assignment]
    boost: int = property(attrgetter("_boost"))  # type: ignore[assignment]
    ask: "tuple[int, int] | None" = property(attrgetter("_ask"))  # type: ignore[assignment]

    def __init__(self, tier: str, confidence: float, scores: Mapping[str, float], base_tier: str, boost: int = 0,
                 hits: tuple[Hit, ...] = (), ask: tuple[int, int] | None = None):
        self._tier = tier
        self._confidence = confidence
        self._base_tier = base_tier
        self._boost = boost
        self._ask = ask
        self._hits = tuple(hits)
        self._pending = None
        self._tiers = tuple(scores)
        self._scores = MappingProxyType(dict(scores))

    @property
    def scores(self) -> Mapping[str, float]:
        scores = self._scores
        if type(scores) is list:  # as the detector left it: built when first read
            scores = self._scores = MappingProxyType(dict(zip(self._tiers, scores)))
        return scores

    @property
    def hits(self) -> tuple[Hit, ...]:
        """The signals that fired, in policy order (derived ones last), with what they matched and where."""
        hits = self._hits
        if hits is None:
            pending = self._pending  # (detector, its _hits's arguments): the class's function takes them as they are
            hits = self._hits = type(pending[0])._hits(*pending)
            self._pending = None
        return hits

    @property
    def signal_ids(self) -> tuple[str, ...]:
        """The ids of the signals that fired, in the order of :attr:`hits`, without locating their spans when
        the hits were not read (what a usage record's provenance needs)."""
        pending = self._pending
        if pending is None:
            return tuple(dict.fromkeys(h.signal for h in self.hits))
        return type(pending[0])._signal_ids(*pending)

    @property
    def runner_up(self) -> str | None:
        """The best-scoring tier other than ``tier``; ties go to the tier nearest ``tier``, then the smaller
        (None with a single tier). Worked out when read, off the detector's hot path."""
        scores = self.scores
        names = list(scores)
        chosen = names.index(self.tier)
        others = [r for r in range(len(names)) if r != chosen]
        if not others:
            return None
        return names[min(others, key=lambda r: (-scores[names[r]], abs(r - chosen), r))]

    def __iter__(self):
        return iter((self.tier, self.confidence, self.scores, self.base_tier, self.boost, self.hits, self.ask))

    def __eq__(self, other: object) -> bool:
        if type(other) is not Detection:
            return NotImplemented
        return tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]  # scores are a mapping, as they were in the NamedTuple

    def __repr__(self) -> str:
        return "Detection(" + ", ".join(f"{name}={value!r}" for name, value in zip(self._fields, self)) + ")"


class Evaluation(Record):
    """A task evaluated for an agent: its tier (detected, or given) and the budget that follows."""

    allocation: Allocation
    confidence: float
    detection: Detection | None  # None when the tier was given explicitly

    @property
    def tier(self) -> str:
        return self.allocation.tier

    @property
    def hits(self) -> tuple[Hit, ...]:
        return self.detection.hits if self.detection is not None else ()

    def to_dict(self) -> dict:
        """The ``evaluate --json`` contract: ``budget --json`` plus tier, confidence and signals."""
        return {**to_json(self.allocation), "confidence": self.confidence,
                "signals": [to_dict(h) for h in self.hits]}


class Signal(Record):
    """A complexity signal of the policy: what makes it fire, and what it does when it fires.

    Exactly one of ``words`` (literal words and phrases), ``patterns`` (RE2) or ``when`` (an expression)
    says when it fires; ``kind`` names which. ``weights`` add to tier scores, ``boost`` moves the chosen tier
    up (positive) or down (negative), ``group`` counts it among distinct things named (``count.system``).
    """

    id: str
    kind: str  # "words", "pattern" or "when"
    words: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    when: str | None = None
    weights: Mapping[str, float] = MappingProxyType({})
    boost: int = 0
    group: str | None = None
    inflect: bool = True
    description: str = ""
    scope: str = "anywhere"  # "ask": the signal fires only when it matches in the ask (``in: ask``)

    @property
    def main(self) -> tuple[str | None, float]:
        """The tier this signal weighs most on (by absolute weight, first listed on ties) and that weight."""
        tier, weight = None, 0.0
        for name, value in self.weights.items():
            if abs(value) > abs(weight):
                tier, weight = name, float(value)
        return tier, weight

    def to_dict(self) -> dict:
        out: dict = {"id": self.id, "kind": self.kind}
        if self.kind == "words":
            out["words"] = list(self.words)
        elif self.kind == "pattern":
            out["pattern"] = list(self.patterns)
        else:
            out["when"] = self.when
        out.update(weights=dict(self.weights), boost=self.boost, group=self.group, description=self.description,
                   **{"in": self.scope})
        return out
