"""The detection plan: everything about a policy's signals that can be worked out without RE2, as plain data.

A plan lists the patterns of the set matcher in entry order, how to locate each entry (a word's inflected
forms, a phrase's words, or an RE2 pattern), which signals are derived, and the generated Python of their
conditions (by condition source). It is JSON: the compiled-policy cache keeps it among a policy's
artefacts, so a warm start skips inflecting literals, building patterns and parsing conditions (no lark),
and only compiles the RE2 set.
"""

from __future__ import annotations

import re
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from engine.detect.conditions import compile_condition
from engine.detect.literals import forms_pattern, literal_forms
from engine.detect.model import Signal

PLAN_FORMAT = 2
_ESCAPE = re.compile(r"\\.")


def signals_from_data(detection: Mapping[str, Any]) -> tuple[Signal, ...]:
    """The signals of a validated ``detection:`` section."""
    signals = []
    for item in detection.get("signals", ()):
        words, pattern = item.get("words"), item.get("pattern")
        kind = "words" if words is not None else "pattern" if pattern is not None else "when"
        signals.append(Signal(
            id=item["id"], kind=kind,
            words=tuple([words] if isinstance(words, str) else words or ()),
            patterns=tuple([pattern] if isinstance(pattern, str) else pattern or ()),
            when=item.get("when"),
            weights=MappingProxyType({t: float(w) for t, w in (item.get("weights") or {}).items()}),
            boost=int(item.get("boost", 0)), group=item.get("group"), inflect=bool(item.get("inflect", True)),
            description=item.get("description", ""), scope=item.get("in", "anywhere"),
        ))
    return tuple(signals)


def weights_digest(signals: Sequence[Signal]) -> str:
    """A short digest of the signals' ids, weights and boosts, in order: what a calibration was fitted for.
    A calibration whose digest differs (the weights were changed, or a policy replaced the signals it
    inherited) no longer describes the margins and is not used."""
    import hashlib
    import json

    rows = [[s.id, sorted((t, float(w)) for t, w in s.weights.items() if w), s.boost] for s in signals]
    return hashlib.sha1(json.dumps(rows, separators=(",", ":")).encode("utf-8")).hexdigest()[:10]


def user_pattern(pattern: str) -> str:
    """A policy's RE2 pattern as matched against the folded (lower-case) text: as written, or, when it has an
    upper-case letter outside its escapes (``\\W`` is not one), case-insensitively."""
    letters = _ESCAPE.sub("", pattern)
    return "(?i:" + pattern + ")" if any(ch.isupper() for ch in letters) else pattern


def plan_detection(signals: Sequence[Signal]) -> dict:
    """The plan of ``signals`` (see the module's docstring); raises ConditionError for a bad condition.
    Compiles the conditions, so it imports the expression parser."""
    patterns: list[str] = []
    entries: list[list] = []
    derived: list[int] = []
    for index, signal in enumerate(signals):
        if signal.kind == "when":
            derived.append(index)
        elif signal.kind == "words":
            for literal in signal.words:
                lead, last = literal_forms(literal, signal.inflect)
                patterns.append(forms_pattern(lead, last))
                entries.append([index, "phrase", lead, last] if lead else [index, "word", last])
        else:
            for pattern in signal.patterns:
                patterns.append(user_pattern(pattern))
                entries.append([index, "regex", patterns[-1]])
    conditions = {}
    for i in derived:
        source = signals[i].when or ""
        conditions[source] = compile_condition(source).python_source
    return {"format": PLAN_FORMAT, "patterns": patterns, "entries": entries, "derived": derived,
            "conditions": conditions}


def usable(plan: Any, signals: Sequence[Signal]) -> bool:
    """Whether ``plan`` (from a cache) has the shape this version writes for this many signals."""
    try:
        return (plan["format"] == PLAN_FORMAT and len(plan["patterns"]) == len(plan["entries"])
                and all(0 <= e[0] < len(signals) for e in plan["entries"])
                and [i for i, s in enumerate(signals) if s.kind == "when"] == list(plan["derived"])
                and isinstance(plan["conditions"], dict)
                and all(isinstance(v, str) for v in plan["conditions"].values()))
    except (TypeError, KeyError, IndexError):
        return False

