"""The compiled detector: signals → one matcher and compiled conditions, then per task one pass and a score.

Per task: normalise once (NFKC, case-folded), run the set matcher once over the UTF-8 bytes, locate the
signals that fired, evaluate the derived signals in policy order, add up the weights per tier, pick the best
tier (ties go to the tier nearest the default, then the smaller), apply the boosts, and derive a confidence
from the margin between the best and the second-best score: ``margin / (margin + confidence_scale)``.

The hot path is written for CPython's speed: effects are precomputed tuples, hits are built with
``tuple.__new__``, and bindings that cost a pass over the text are computed only when a condition uses them.
"""

from __future__ import annotations

from math import exp as _exp
from re import compile as _regex
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from engine.detect.conditions import compile_condition
from engine.detect.matcher import Matcher, plan_entry
from engine.detect.normalize import normalize
from engine.detect.plan import plan_detection, signals_from_data, usable, weights_digest
from engine.detect.model import Detection, Hit, Signal

DEFAULT_CONFIDENCE_SCALE = 2.0
_ASK_NAME = _regex(r"\bask\b")
_NEEDS_CONTEXT = _regex(r"\s*has\(\s*context\.\w+\s*\)\s*&&")
_new_tuple = tuple.__new__  # builds a Hit from a tuple, skipping NamedTuple's argument handling

# A fired signal's effect: (Hit fields before text and span, Hit fields after them, ((tier rank, weight), ...),
# boost, group).
_Effect = tuple[tuple, tuple, tuple[tuple[int, float], ...], int, "str | None"]


class Detector:
    """Signals compiled for one set of tiers. Build once; :meth:`detect` as often as you like."""

    __slots__ = ("signals", "tiers", "default_tier", "confidence_scale", "calibration", "conditions", "ask_rules",
                 "_matcher", "_effects", "_derived", "_ranks", "_zero_counts", "_tie_order", "_fired", "_entries",
                 "_ask_entry", "_derived_plain", "_boundary_kind", "_scoped_entries")

    def __init__(self, signals: Sequence[Signal], tiers: Sequence[str], default_tier: str,
                 confidence_scale: float = DEFAULT_CONFIDENCE_SCALE, plan: Mapping[str, Any] | None = None,
                 calibration: Mapping[str, float] | None = None, ask: Mapping[str, Any] | None = None):
        """Compile ``signals``; ``plan`` is their :func:`~engine.detect.plan.plan_detection`, when a cache kept it.
        ``calibration`` (``{"slope", "intercept", "signals"?}``) turns the margin into a probability (unless
        its ``signals`` digest is not that of these signals); ``ask`` may replace the ask rules' lists."""
        self.signals = tuple(signals)
        self.tiers = tuple(tiers)
        self.default_tier = default_tier
        self.confidence_scale = float(confidence_scale)
        self.calibration = None
        if calibration and calibration.get("signals") in (None, weights_digest(self.signals)):
            self.calibration = (float(calibration["slope"]), float(calibration.get("intercept", 0.0)))
        self._ranks = {t: i for i, t in enumerate(self.tiers)}
        default = self._ranks[default_tier]
        self._tie_order = tuple(sorted(range(len(self.tiers)), key=lambda r: (abs(r - default), r)))
        self._zero_counts = MappingProxyType(dict.fromkeys((s.group for s in self.signals if s.group), 0))
        self._effects = tuple(self._effect(s) for s in self.signals)
        if plan is None or not usable(plan, self.signals):
            plan = plan_detection(self.signals)
        entries = [plan_entry(item) for item in plan["entries"]]
        patterns = list(plan["patterns"])
        # The ask is found only when some signal is scoped to it or some condition reads it.
        uses_ask = any(s.scope == "ask" for s in self.signals) or any(
            s.when is not None and _ASK_NAME.search(s.when) for s in self.signals)
        self.ask_rules = None
        self._boundary_kind = -1
        self._ask_entry = len(entries)  # entries from here on are the ask rules' marker and aside entries
        if uses_ask:
            from engine.detect.ask import ASIDES, MARKERS, REFERENCES, AskRules

            ask = ask or {}
            self.ask_rules = AskRules(ask.get("markers", MARKERS), ask.get("asides", ASIDES),
                                      ask.get("references", REFERENCES))
            self._boundary_kind = self.ask_rules.kinds.index("boundary")
            patterns += self.ask_rules.patterns
        self._matcher = Matcher(patterns, entries)
        self._fired = self._matcher.fired
        # Per entry of the set: its signal, locator and effect, unpacked in one step on the hot path.
        self._entries = tuple((e.signal, e.locate, *self._effects[e.signal]) for e in self._matcher.entries)
        self._scoped_entries = frozenset(i for i, e in enumerate(self._matcher.entries)
                                         if self.signals[e.signal].scope == "ask")
        cached = plan["conditions"]
        self.conditions = tuple(compile_condition(self.signals[i].when or "", cached.get(self.signals[i].when))
                                for i in plan["derived"])
        self._derived = tuple((i, c.evaluate) for i, c in zip(plan["derived"], self.conditions))
        # Conditions of the form `has(context.K) && …` cannot hold without a context: skipped then.
        self._derived_plain = tuple((i, e) for (i, e), c in zip(self._derived, self.conditions)
                                    if not _NEEDS_CONTEXT.match(c.source))

    @classmethod
    def from_data(cls, detection: Mapping[str, Any], tiers: Sequence[str], default_tier: str,
                  plan: Mapping[str, Any] | None = None) -> "Detector":
        """The detector of a validated ``detection:`` section (absent: no signals, always the default tier)."""
        detection = detection or {}
        return cls(signals_from_data(detection), tiers, default_tier,
                   detection.get("confidence_scale", DEFAULT_CONFIDENCE_SCALE), plan,
                   detection.get("calibration"), detection.get("ask"))

    def _effect(self, signal: Signal) -> _Effect:
        tier, weight = signal.main
        ranked = tuple((self._ranks[t], w) for t, w in signal.weights.items() if w)
        return (signal.id, tier, weight), (signal.boost, signal.weights, signal.group), ranked, signal.boost, \
            signal.group

    # -- the hot path -----------------------------------------------------------------------------------

    def detect(self, text: str, context: Mapping[str, Any] | None = None) -> Detection:
        """The tier of ``text`` (a task description), with the signals that fired and where."""
        if text.isascii():  # NFKC leaves ASCII alone, and folding it keeps every offset
            norm, folded = None, text.lower()
            data = folded.encode("ascii")
        else:
            norm = normalize(text)
            folded = norm.text
            data = folded.encode("utf-8", "surrogatepass")
        scores = [0.0] * len(self.tiers)
        boost = 0
        hits: list[Hit] = []
        named: dict[str, bool] = {}  # signal id → True, for the conditions' `hits`
        count = dict(self._zero_counts)  # for the conditions' `count`
        fired = self._fired(data)
        if self.ask_rules is not None and fired:
            fired.sort()
            if fired[-1] >= self._ask_entry:  # the ask rules' entries come last
                ask = self._find_ask(fired, folded, data)
                if ask is not None:
                    return self._detect_with_ask(text, norm, folded, data, fired, ask, context)
        if fired:
            entries = self._entries
            fired.sort()  # entries are in policy order, a signal's entries next to each other
            current, first = -1, (0, 0)
            for i in fired:
                signal, locate, before, after, ranked, lift, group = entries[i]
                found = locate(folded, data)
                if found is None:
                    continue
                if signal == current:  # another word of the same signal: keep the earliest
                    if found < first:
                        first = start, end = found if norm is None else norm.span(*found)
                        hits[-1] = _new_tuple(Hit, (*before, text[start:end], (start, end), *after))
                    continue
                current = signal
                first = found
                start, end = found if norm is None else norm.span(*found)
                hits.append(_new_tuple(Hit, (*before, text[start:end], (start, end), *after)))
                for rank, weight in ranked:
                    scores[rank] += weight
                boost += lift
                named[before[0]] = True
                if group is not None:
                    count[group] += 1
        if self._derived:
            boost += self._derive(text, folded, hits, scores, named, count, context, None, count)
        return self._decide(scores, boost, hits, None)

    def _find_ask(self, fired: list[int], folded: str, data: bytes) -> Any:
        """The ask when it is narrower than the task, else None; pops the ask rules' entries off ``fired``."""
        last = fired.pop()
        if last - self._ask_entry == self._boundary_kind and not (fired and fired[-1] >= self._ask_entry) \
                and not folded.rstrip().endswith("?"):
            return None  # only a sentence boundary, and no final question: the whole task asks
        kinds = self.ask_rules.kinds
        found = {kinds[last - self._ask_entry]}
        while fired and fired[-1] >= self._ask_entry:
            found.add(kinds[fired.pop() - self._ask_entry])
        ask = self.ask_rules.find(folded, data, "marker" in found, "aside" in found, "reference" in found,
                                  "boundary" in found)
        return ask if ask.narrowed else None

    def _detect_with_ask(self, text: str, norm: Any, folded: str, data: bytes, fired: list[int], ask: Any,
                         context: Mapping[str, Any] | None) -> Detection:
        """:meth:`detect` for a task whose ask is narrower than it: a second pass of the matcher over the ask
        alone (the task blanked outside it) says which signals occur in the ask; signals scoped to the ask
        count only there, and ``ask.count`` counts the groups' signals that occur there."""
        scores = [0.0] * len(self.tiers)
        boost = 0
        hits: list[Hit] = []
        named: dict[str, bool] = {}
        count = dict(self._zero_counts)
        ask_text = ask.text
        ask_data = ask_text.encode("utf-8", "surrogatepass")
        in_ask = frozenset(i for i in self._fired(ask_data) if i < self._ask_entry)
        ask_count = dict(self._zero_counts)
        ask_named: set[int] = set()
        whole = frozenset(fired)
        entries = self._entries
        scoped_entries = self._scoped_entries
        current, first = -1, (0, 0)
        for i in sorted(whole | in_ask):
            signal, locate, before, after, ranked, lift, group = entries[i]
            inside = i in in_ask
            if i in scoped_entries:
                if not inside:
                    continue
                found = locate(ask_text, ask_data)
                if found is not None and found[0] < ask.start:  # an anchored pattern's blank lead
                    found = (min(ask.start, found[1]), found[1])
            elif i in whole:
                found = locate(folded, data)
            else:
                continue
            if found is None:
                continue
            if inside and group is not None and signal not in ask_named:
                ask_named.add(signal)
                ask_count[group] += 1
            if signal == current:
                if found < first:
                    first = start, end = found if norm is None else norm.span(*found)
                    hits[-1] = _new_tuple(Hit, (*before, text[start:end], (start, end), *after))
                continue
            current = signal
            first = found
            start, end = found if norm is None else norm.span(*found)
            hits.append(_new_tuple(Hit, (*before, text[start:end], (start, end), *after)))
            for rank, weight in ranked:
                scores[rank] += weight
            boost += lift
            named[before[0]] = True
            if group is not None:
                count[group] += 1
        if self._derived:
            boost += self._derive(text, folded, hits, scores, named, count, context, ask, ask_count)
        span = (ask.start, len(folded)) if norm is None else norm.span(ask.start, len(folded))
        return self._decide(scores, boost, hits, span)

    def _derive(self, text: str, folded: str, hits: list[Hit], scores: list[float], named: dict[str, bool],
                count: dict[str, int], context: Mapping[str, Any] | None, ask: Any, ask_count: dict[str, int]) -> int:
        """Evaluate the derived signals in order; each sees the hits before it. Returns their net boost.
        A condition that cannot be evaluated (a missing context key, a type mismatch) does not hold."""
        bindings = _Bindings({"hits": named, "count": count, "chars": len(text), "text": folded,
                              "tiers": self._ranks,
                              "context": context if type(context) is dict else {} if context is None else dict(context)})
        bindings.task = text
        bindings.ask = (ask, ask_count)  # `ask` is built when a condition first reads it
        boost = 0
        effects = self._effects
        for index, evaluate in self._derived if context else self._derived_plain:
            try:
                if evaluate(bindings) is not True:
                    continue
            except Exception:  # noqa: BLE001 - the language raises EvaluationError; nothing may escape
                continue
            before, after, ranked, lift, group = effects[index]
            hits.append(_new_tuple(Hit, before + ("", None) + after))
            for rank, weight in ranked:
                scores[rank] += weight
            boost += lift
            named[before[0]] = True
            if group is not None:
                count[group] += 1
                if ask_count is not count:
                    ask_count[group] += 1
        return boost

    def _decide(self, scores: list[float], boost: int, hits: list[Hit], ask: tuple[int, int] | None) -> Detection:
        ordered = sorted(scores)
        top = ordered[-1]
        second = ordered[-2] if len(ordered) > 1 else 0.0
        if second != top:
            best = scores.index(top)
        else:  # a tie: the tier nearest the default, then the smaller
            for best in self._tie_order:
                if scores[best] == top:
                    break
        margin = top - second
        if self.calibration is not None:
            slope, intercept = self.calibration
            confidence = round(1.0 / (1.0 + _exp(-(slope * margin + intercept))), 3)
        else:
            confidence = round(margin / (margin + self.confidence_scale), 3) if margin > 0 else 0.0
        final = best + boost
        if boost:
            final = 0 if final < 0 else len(scores) - 1 if final >= len(scores) else final
        tiers = self.tiers
        return _new_tuple(Detection, (tiers[final], confidence, MappingProxyType(dict(zip(tiers, scores))),
                                      tuple(hits), tiers[best], boost, ask))


class _AskBinding(dict):
    """What conditions see as ``ask``: ``count`` and ``narrowed`` up front, ``words`` and ``question`` (a pass
    over the ask) when first read."""

    __slots__ = ("text",)

    def __missing__(self, name: str) -> Any:
        if name == "words":
            value: Any = len(self.text.split())
        elif name == "question":
            value = self.text.rstrip().endswith("?")
        else:
            raise KeyError(name)
        self[name] = value
        return value


class _Bindings(dict):
    """What conditions see. ``words`` and ``question`` cost a pass over the task, so they are worked out the
    first time a condition reads them (most tasks never get that far in the conditions that use them)."""

    __slots__ = ("task", "ask")

    def __missing__(self, name: str) -> Any:
        if name == "ask":
            ask, ask_count = self.ask
            value = _AskBinding(count=ask_count, narrowed=ask is not None)
            value.text = ask.text if ask is not None else self["text"]
            if ask is None:  # the ask is the task: its words and question are the task's, when known
                for key in ("words", "question"):
                    if key in self:
                        value[key] = self[key]
        elif name == "words":
            value: Any = len(self["text"].split())
        elif name == "question":
            value = self.task.rstrip().endswith("?")
        else:
            raise KeyError(name)
        self[name] = value
        return value
