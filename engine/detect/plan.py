"""The detection plan: everything about a policy's signals that can be worked out without RE2, as plain data.

A plan lists the entries of the matcher in order (``[signal, "literal" or "exact", text]`` for a literal
word or phrase, inflected or not, and ``[signal, "regex", pattern]``), their set patterns ("" for a literal
the word index covers: made from its forms if ever needed), the word index (each word form → the entries
that start with it, :func:`engine.detect.words.index_entries`), which signals are derived, the generated
Python of their conditions (by condition source) and what decides them when nothing they read fired, the
groups, the entries scoped to the ask, whether the ask is needed and the weights' digest. It is JSON: the
compiled-policy cache keeps it among a policy's artefacts, so a warm start builds no per-signal state —
no inflecting, no patterns, no index, no parsing of conditions (no lark): a literal's forms are worked out
when it first fires. The cache keeps it in sections (engine/policy/sections.py): its head up front, its
entries, patterns and word index in chunks read when a task reaches them, so what a warm start pays grows
with its task, not with the plan; docs/detection.md ("Speed") has the figures.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from operator import itemgetter
from types import MappingProxyType
TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Mapping

from engine.detect.literals import forms_pattern, literal_forms
from engine.detect.model import Signal

PLAN_FORMAT = 6


def signals_from_data(detection: Mapping[str, Any]) -> tuple[Signal, ...]:
    """The signals of a validated ``detection:`` section."""
    return tuple(map(signal_from_data, detection.get("signals", ())))


def signal_from_data(item: Mapping[str, Any]) -> Signal:
    """One signal of a validated ``detection:`` section."""
    words, pattern = item.get("words"), item.get("pattern")
    kind = "words" if words is not None else "pattern" if pattern is not None else "when"
    return Signal(
        id=item["id"], kind=kind,
        words=tuple([words] if isinstance(words, str) else words or ()),
        patterns=tuple([pattern] if isinstance(pattern, str) else pattern or ()),
        when=item.get("when"),
        weights=MappingProxyType({t: float(w) for t, w in (item.get("weights") or {}).items()}),
        boost=int(item.get("boost", 0)), group=item.get("group"), inflect=bool(item.get("inflect", True)),
        description=item.get("description", ""), scope=item.get("in", "anywhere"),
    )


class SignalTable(Sequence):
    """The signals of a validated ``detection:`` section, each built when first read: a detector with a
    cached plan reads only the signals a task fires (and the derived ones), so a policy of thousands of
    signals does not build them all on every start."""

    __slots__ = ("_items", "_built")

    def __init__(self, items: Sequence[Mapping[str, Any]]):
        self._items = items
        self._built: list[Signal | None] = [None] * len(items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: Any) -> Any:
        if type(index) is slice:
            return tuple(self[i] for i in range(*index.indices(len(self._items))))
        found = self._built[index]
        if found is None:
            found = self._built[index] = signal_from_data(self._items[index])
        return found

    def derived(self) -> list[int]:
        """The indices of the derived (``when``) signals, without building any signal."""
        return [i for i, item in enumerate(self._items) if item.get("words") is None and item.get("pattern") is None]


def weights_digest(signals: Sequence[Signal]) -> str:
    """A short digest of the signals' ids, weights and boosts, in order: what a calibration was fitted for.
    A calibration whose digest differs (the weights were changed, or a policy replaced the signals it
    inherited) no longer describes the margins and is not used."""
    import json

    try:  # CPython's own SHA-1: `hashlib` first initialises OpenSSL, ~3 ms of every start that detects
        from _sha1 import sha1
    except ImportError:  # pragma: no cover - other interpreters
        from hashlib import sha1

    rows = [[s.id, sorted((t, float(w)) for t, w in s.weights.items() if w), s.boost] for s in signals]
    return sha1(json.dumps(rows, separators=(",", ":")).encode("utf-8")).hexdigest()[:10]


def user_pattern(pattern: str) -> str:
    """A policy's RE2 pattern as matched against the folded (lower-case) text: as written, or, when it has an
    upper-case letter outside its escapes (``\\W`` is not one), case-insensitively."""
    import re  # planning only: a warm start that detects imports no `re`

    letters = re.sub(r"\\.", "", pattern)
    return "(?i:" + pattern + ")" if any(ch.isupper() for ch in letters) else pattern


def plan_section(detection: Mapping[str, Any]) -> dict:
    """The detection job's compile step for what the compiled-policy cache keeps: the plan of a validated
    ``detection:`` section (the :class:`~engine.detect.Detector` built from the section later takes it)."""
    return plan_detection(signals_from_data(detection))


def plan_detection(signals: Sequence[Signal]) -> dict:
    """The plan of ``signals`` (see the module's docstring); raises ConditionError for a bad condition.
    Compiles the conditions, so it imports the expression parser."""
    patterns: list[str] = []
    entries: list[list] = []
    forms: list[tuple[list[str], list[str]] | None] = []  # the word index's input
    derived: list[int] = []
    for index, signal in enumerate(signals):
        if signal.kind == "when":
            derived.append(index)
        elif signal.kind == "words":
            for literal in signal.words:
                forms.append(literal_forms(literal, signal.inflect))
                patterns.append(forms_pattern(*forms[-1]))
                entries.append([index, "literal" if signal.inflect else "exact", literal])
        else:
            for pattern in signal.patterns:
                patterns.append(user_pattern(pattern))
                entries.append([index, "regex", patterns[-1]])
                forms.append(None)
    from engine.detect.conditions import compile_condition

    conditions = {}
    quiet = {}
    groups = sorted({s.group for s in signals if s.group})
    for i in derived:
        source = signals[i].when or ""
        condition = compile_condition(source)
        conditions[source] = condition.python_source
        inputs = quiet_inputs(source)
        if inputs is not None:
            zero = {"hits": {}, "count": dict.fromkeys(groups, 0), "ask": {"count": dict.fromkeys(groups, 0)}}
            quiet[source] = [inputs[0], inputs[1], condition.holds(zero)]
    from engine.detect.words import index_entries, plan_gates

    index = index_entries(forms)
    for i in chain.from_iterable(index.values()):  # the word index finds these: their pattern is made when needed
        patterns[i] = ""
    import re

    asks = any(s.scope == "ask" for s in signals) or any(s.when is not None and re.search(r"\bask\b", s.when)
                                                         for s in signals)
    return {"format": PLAN_FORMAT, "patterns": patterns, "entries": entries, "derived": derived,
            "conditions": conditions, "quiet": quiet, "index": index,
            "groups": list(dict.fromkeys(s.group for s in signals if s.group)),
            "scoped": [i for i, entry in enumerate(entries) if signals[entry[0]].scope == "ask"],
            "asks": asks, "digest": weights_digest(signals), "gates": plan_gates(entries, patterns)}


def quiet_inputs(source: str) -> tuple[list[str], list[str]] | None:
    """The groups and the signal ids a condition reads, when those are all it reads; else None.

    What qualifies: counts of groups (`count.G`, `ask.count.G`) and signals (`hits.ID`, `has(hits.ID)`,
    `'ID' in hits`), numbers, comparisons and logic — :func:`engine.detect.parts.inputs` without the task's
    scalar facts. When none of them fired — every such group counts 0 and none of the signals is among the hits —
    the condition's value is the one it has with no hits at all, which the plan records (``quiet``), so the
    detector neither compiles nor evaluates it then."""
    from engine.detect.parts import inputs

    found = inputs(source)
    if found is None or found.facts:
        return None
    return list(found.groups), list(found.ids)


def usable(plan: Any, signals: Sequence[Signal]) -> bool:
    """Whether ``plan`` has the shape this version writes, for these signals. A fresh plan is this version's, so
    what is checked here is what ties it to the signals — the format, the derived signals, every index in
    range — in C-speed passes (``map``, ``max``). A plan the cache keeps in sections (it has ``rest``: see
    engine/policy/sections.py) had its head checked against the number of signals when it was decoded, and
    has each chunk checked when it is read: only its format and derived signals are checked here, so a start
    does work proportional to its task, not to the policy."""
    try:
        if "rest" in plan:  # read from the cache's sections: each checked when it is read
            return plan["format"] == PLAN_FORMAT and _below(plan["derived"], len(signals))
        entries = plan["entries"]
        size = len(entries)
        derived = signals.derived() if isinstance(signals, SignalTable) else [
            i for i, s in enumerate(signals) if s.kind == "when"]
        return (plan["format"] == PLAN_FORMAT and len(plan["patterns"]) == size
                and _below(map(itemgetter(0), entries), len(signals))
                and derived == list(plan["derived"])
                and isinstance(plan["conditions"], dict) and _quiet_ok(plan.get("quiet"))
                and all(isinstance(v, str) for v in plan["conditions"].values())
                and type(plan["index"]) is dict and _below(chain.from_iterable(plan["index"].values()), size)
                and type(plan["scoped"]) is list and _below(plan["scoped"], size)
                and type(plan["groups"]) is list and set(map(type, plan["groups"])) <= {str}
                and type(plan["asks"]) is bool and type(plan["digest"]) is str
                and type(plan["gates"]) is list and set(map(len, plan["gates"])) <= {2}
                and _below(map(itemgetter(0), plan["gates"]), size)
                and set(map(type, map(itemgetter(1), plan["gates"]))) <= {str})
    except (TypeError, KeyError, IndexError):
        return False


def _below(values: Iterable[Any], size: int) -> bool:
    """Whether ``values`` are all below ``size`` (none: True); a value that is not a number raises TypeError."""
    return max(values, default=-1) < size


def _quiet_ok(quiet: Any) -> bool:
    return isinstance(quiet, dict) and all(
        isinstance(v, list) and len(v) == 3 and all(isinstance(x, list) and all(isinstance(n, str) for n in x)
                                                    for x in v[:2]) and type(v[2]) is bool
        for v in quiet.values())
