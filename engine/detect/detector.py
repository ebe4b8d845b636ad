"""The compiled detector: signals → one matcher and compiled conditions, then per task one pass and a score.

Per task: normalise once (NFKC, case-folded), run the set matcher once over the UTF-8 bytes, add up the
weights of the signals that fired per tier, evaluate the derived signals in policy order, pick the best tier
(ties go to the tier nearest the default, then the smaller), apply the boosts, and derive a confidence from
the margin between the best and the second-best score (``margin / (margin + confidence_scale)``, or the
calibration's). Where the signals matched (the hits and their spans) is located when
:attr:`~engine.detect.model.Detection.hits` is first read.

The hot path is written for CPython's speed: effects are precomputed tuples, hits are built with
``tuple.__new__`` (a one-word literal of ASCII text is located with one ``bytes.find``), conditions that
read only counts and hits are remembered per their inputs (and guards, :mod:`engine.detect.parts`, decide
others), and bindings that cost a pass over the text are computed only when a condition uses them.
docs/detection.md ("Speed") has the figures.
"""

from __future__ import annotations

from math import exp as _exp
from operator import itemgetter
from types import MappingProxyType
TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Mapping, Sequence

from engine.detect.matcher import (SEPARATOR_BYTES, WORD_BYTES, Matcher, Patterns, phrase_needles, plan_entry,
                                   word_needles)
from engine.detect.normalize import normalize
from engine.detect.parts import FACTS, conjuncts, direct_condition, direct_conjunct, inputs
from engine.detect.plan import SignalTable, plan_detection, usable
from engine.detect.model import Detection, Hit, Signal

DEFAULT_CONFIDENCE_SCALE = 2.0
_MEMO_MAX = 512  # values remembered per step or guard (count combinations); past that, evaluated each time
_GUARDS_AFTER = 256  # evaluations of a condition before its guards are compiled and used
_new_tuple = tuple.__new__  # builds a Hit from a tuple, skipping NamedTuple's argument handling


def _located(text: str, norm: Any, found: tuple[int, int], before: tuple, after: tuple) -> Hit:
    """The hit of a signal (its fields ``before`` and ``after`` the text and span) found at ``found`` in the
    folded text: the span in ``text``'s offsets (``norm`` maps them when the text was normalised)."""
    if norm is not None:
        found = norm.span(*found)
    return _new_tuple(Hit, before + (text[found[0]:found[1]], found) + after)  # found: a new (start, end) tuple


# A fired signal's effect: (Hit fields before text and span, Hit fields after them, ((tier rank, weight), ...),
# boost, group).
_Effect = tuple[tuple, tuple, tuple[tuple[int, float], ...], int, "str | None"]


class Detector:
    """Signals compiled for one set of tiers. Build once; :meth:`detect` as often as you like."""

    __slots__ = ("_signals", "_signal_tuple", "tiers", "default_tier", "confidence_scale", "calibration", "ask_rules",
                 "_matcher", "_effects", "_derived", "_ranks", "_size", "_zero_counts", "_tie_order", "_entries", "_items",
                 "_locate", "_ask_entry", "_derived_plain", "_boundary_entry", "_scoped_entries", "_evaluators",
                 "_steps", "_steps_plain", "_decisions", "_hit_parts", "_groups", "_spots", "_derivations",
                 "_derivation_key")

    def __init__(self, signals: Sequence[Signal], tiers: Sequence[str], default_tier: str,
                 confidence_scale: float = DEFAULT_CONFIDENCE_SCALE, plan: Mapping[str, Any] | None = None,
                 calibration: Mapping[str, float] | None = None, ask: Mapping[str, Any] | None = None):
        """Compile ``signals``; ``plan`` is their :func:`~engine.detect.plan.plan_detection`, when a cache kept it.
        ``calibration`` (``{"slope", "intercept", "signals"?}``) turns the margin into a probability (unless
        its ``signals`` digest is not that of these signals); ``ask`` may replace the ask rules' lists."""
        # A SignalTable (from_data) builds each signal when first read: the ones a task fires, the derived ones.
        self._signals = signals if isinstance(signals, SignalTable) else tuple(signals)
        self._signal_tuple: tuple[Signal, ...] | None = None
        self.tiers = tuple(tiers)
        self.default_tier = default_tier
        self.confidence_scale = float(confidence_scale)
        if plan is None or not usable(plan, self._signals):
            plan = plan_detection(self._signals)
        self.calibration = None
        if calibration and calibration.get("signals") in (None, plan["digest"]):
            self.calibration = (float(calibration["slope"]), float(calibration.get("intercept", 0.0)))
        self._ranks = {t: i for i, t in enumerate(self.tiers)}
        self._size = len(self.tiers)
        default = self._ranks[default_tier]
        self._tie_order = tuple(sorted(range(len(self.tiers)), key=lambda r: (abs(r - default), r)))
        # A task's group counts are a list (group → its index: _groups), copied per task: cheaper to copy, count and
        # read than a dict (about 5 % of a 100-character task); the conditions see them as a dict (_bindings).
        self._groups = {group: i for i, group in enumerate(plan["groups"])}
        self._zero_counts = [0] * len(self._groups)
        self._decisions: dict[tuple, tuple[int, float]] = {}  # scores → best rank, confidence (see _decide)
        # Signal index → its effect (see _effect) and what a Hit of it holds besides its text and span: (id,
        # tier, weight), (boost, weights, group); built the first time the signal fires.
        self._effects: dict[int, _Effect] = {}
        self._hit_parts: dict[int, tuple[tuple, tuple]] = {}
        self._spots: dict[int, tuple] = {}  # entry index → what _hits needs of it (see _spot)
        items = plan["entries"]
        self._items = items
        # Entry index → (signal, rank, weight, more, lift, group, id), built by _entry the first time the entry
        # fires (a policy of thousands of literals builds the few a task fires); a plain dict, which CPython's
        # specialised look-up serves faster than a subclass with __missing__.
        self._entries: dict[int, tuple] = {}
        table = _LocatorTable(items)  # built per entry when its span is first asked for
        self._locate = table.__getitem__
        extra: list[str] = []  # the ask rules' patterns, after the plan's entries
        # The ask is found only when some signal is scoped to it or some condition reads it (plan["asks"]).
        self.ask_rules = None
        self._boundary_entry = -1
        self._ask_entry = len(items)  # entries from here on are the ask rules' marker and aside entries
        if plan["asks"]:
            from engine.detect.ask import ASIDES, MARKERS, REFERENCES, AskRules

            ask = ask or {}
            self.ask_rules = AskRules(ask.get("markers", MARKERS), ask.get("asides", ASIDES),
                                      ask.get("references", REFERENCES))
            self._boundary_entry = self._ask_entry + self.ask_rules.kinds.index("boundary")
            extra = list(self.ask_rules.patterns)
        alternations = () if self.ask_rules is None else tuple(
            (self._ask_entry + i, literals) for i, literals in enumerate(self.ask_rules.lists) if literals)
        self._matcher = Matcher(Patterns(plan["patterns"], items, extra), table, items, index=plan["index"],
                                gates=plan["gates"], alternations=alternations,
                                forms=self.ask_rules.forms if self.ask_rules else None, rest=plan.get("rest"))
        self._scoped_entries = frozenset(plan["scoped"])
        # Conditions compile when first evaluated; one that reads only counts and hits (see plan.quiet_inputs) is
        # decided without evaluating it while none of those fired.
        signals = self._signals
        cached, quiet = plan["conditions"], plan.get("quiet") or {}
        self._derived = tuple((i, _lazy_condition(signals[i].when or "", cached.get(signals[i].when)),
                               _quiet(quiet.get(signals[i].when)))
                              for i in plan["derived"])
        # Conditions of the form `has(context.K) && …` cannot hold without a context: skipped then.
        self._derived_plain = tuple(d for d in self._derived
                                    if not _needs_context(signals[d[0]].when or ""))
        self._index_conditions()

    def _index_conditions(self, remember: bool = True) -> None:
        """The hot path's view of :attr:`_derived`: :attr:`_steps` (and :attr:`_steps_plain`, without the
        conditions that need a context). A step is a run of consecutive conditions that read only counts and
        hits, ``(memo, pick, flag, ids, rows)`` (``flag``: the one id it reads, if one), or one condition, ``(None, row, guards, complete, uses)``; a row is
        ``(slot, hit, ranked, lift, group)``: the condition's evaluator slot and its effect.

        A run of such conditions (``quiet``) is a function of the counts and flags its conditions read, at the
        start of the run: which of them hold is remembered per those values (``count``, and ``ask.count`` when
        the ask is narrower; else ``ask.count`` is ``count``), up to :data:`_MEMO_MAX` per run. Which hold when
        nothing fired is known from the plan and seeded, so such conditions are neither compiled nor evaluated
        while none of their inputs fired.

        Another condition may have conjuncts that read only counts, hits and scalar facts (see
        :mod:`engine.detect.parts`): its ``guards``, each remembered per the values it reads. One that does not
        hold decides the condition; when all hold and they are the whole condition (``complete``), it holds.
        Guards are compiled from their source, so they are used only once the condition has been evaluated
        :data:`_GUARDS_AFTER` times (``uses``), in a process that detects many tasks.

        ``remember=False`` evaluates every condition every time (the tests' reference)."""
        self._evaluators = []
        zero = self._groups  # the groups, with their indices in a task's counts
        sources = [self._signals[index].when or "" for index, _, _ in self._derived]
        # When the ask is the task, the bindings take `ask.question` from `question` once a condition has read
        # that (the original task's last character, not the folded one's: "？" is not "?"). So when some
        # condition reads `question`, `ask.question` is not remembered, and the conditions that read `question`
        # have no guards: they are evaluated, as before guards, and read it when they did.
        reads_question = any(map(_reads_question, sources))
        facts = set(FACTS) - ({"ask.question"} if reads_question else set())
        rows = {}
        for (index, evaluate, quiet), source in zip(self._derived, sources):
            slot = len(self._evaluators)
            self._evaluators.append(_first_call(self._evaluators, slot, evaluate))
            before, after, ranked, lift, group = self._effect(index)
            row = (slot, _new_tuple(Hit, before + ("", None) + after), ranked, lift,  # a derived hit is constant
                   None if group is None else zero[group])
            if not remember:
                rows[index] = (row, None, None)
            elif quiet is not None and all(g in zero for g in quiet[0]):
                rows[index] = (row, quiet, None)
            else:
                guards = None if reads_question and _reads_question(source) else self._guards(source, zero, facts)
                rows[index] = (row, None, guards)
        self._steps = _steps([rows[d[0]] for d in self._derived], zero)
        self._steps_plain = _steps([rows[d[0]] for d in self._derived_plain], zero)
        # A task without a context or a narrower ask whose conditions were all decided by what the steps remember
        # (counts, whether signals fired, and the facts that cost nothing to tell) has a derivation that is a
        # function of those alone: it is remembered whole, per their values (see detect).
        # The key is the counts, whether each signal some step reads fired, and the keyed facts some guard reads
        # (``ask.narrowed`` is false when the ask is the task): ``(the one signal id read or None, the ids, whether
        # `ask.question` is read)``.
        self._derivations: dict[tuple, tuple] | None = {} if remember else None
        ids: dict[str, None] = {}
        facts: set[Any] = set()
        for step in self._steps_plain:
            if step[0] is None:
                for guard in step[2] or ():
                    ids.update(dict.fromkeys(guard[2]))
                    facts.add(guard[3])
            else:
                ids.update(dict.fromkeys(step[3]))
        self._derivation_key = (next(iter(ids)) if len(ids) == 1 else None, tuple(ids), _ask_question in facts)

    def _guards(self, source: str, zero: Mapping[str, int], facts: set[str]) -> tuple[tuple, bool, bool] | None:
        """The guards of a condition, whether they are the whole of it and whether all of them are read directly
        (see :meth:`_index_conditions`); a guard is ``(memo, pick, ids, facts, slot)``."""
        parts = conjuncts(source) or [source]
        guards: list[tuple] = []
        costs: list[int] = []
        direct = True
        for part in parts:
            read, found = direct_conjunct(part) or (None, inputs(part))
            if found is None or not all(g in zero for g in found.groups) or not facts.issuperset(found.facts):
                continue
            slot = len(self._evaluators)
            if read is None:
                direct = False
                read = _first_call(self._evaluators, slot, _lazy_condition(part, None))
            self._evaluators.append(read)
            pick = _pick(found.groups, zero) if found.groups else None
            guards.append(({}, pick, found.ids, _facts(found.facts), slot))
            costs.append(2 if {"words", "ask.words"}.intersection(found.facts) else 1 if pick or found.ids else 0)
        # Any guard that does not hold decides, so the cheap ones go first: facts that cost nothing to tell
        # (question, chars, narrowed), then counts and hits, then word counts (a pass over the text).
        guards = [guard for _, guard in sorted(zip(costs, guards), key=itemgetter(0))]
        return (tuple(guards), len(guards) == len(parts), direct) if guards else None

    def _entry(self, index: int) -> tuple:
        """The hot path's view of an entry of the matcher, built the first time it fires: the signal it stands
        for and its effect — its first weight (rank 0 and 0.0 when it has none: adding 0.0 changes no score),
        the rare rest (its other weights and its boost; None when it has neither), its group's index and its id."""
        signal = self._items[index][0]
        before, _, ranked, lift, group = self._effect(signal)
        rank, weight = ranked[0] if ranked else (0, 0.0)
        rest = (ranked[1:], lift) if len(ranked) > 1 or lift else None
        entry = self._entries[index] = (signal, rank, weight, rest,
                                        None if group is None else self._groups[group], before[0])
        return entry

    def _arm(self) -> None:
        """From now on, use the guards of the conditions evaluated :data:`_GUARDS_AFTER` times (their steps no
        longer count)."""

        def armed(steps: tuple) -> tuple:
            return tuple(step[:4] + (None,) if step[0] is None and step[4] is not None
                         and step[4][0] >= _GUARDS_AFTER else step for step in steps)

        self._steps, self._steps_plain = armed(self._steps), armed(self._steps_plain)

    @property
    def signals(self) -> tuple[Signal, ...]:
        """The signals, in policy order (from a ``detection:`` section: all built now, if not yet)."""
        if self._signal_tuple is None:
            self._signal_tuple = tuple(self._signals)
        return self._signal_tuple

    @property
    def conditions(self) -> tuple:
        """The derived signals' compiled conditions, in policy order (compiled now if not yet)."""
        return tuple(compile_condition(self._signals[i].when or "") for i, _, _ in self._derived)

    @classmethod
    def from_data(cls, detection: Mapping[str, Any], tiers: Sequence[str], default_tier: str,
                  plan: Mapping[str, Any] | None = None) -> "Detector":
        """The detector of a validated ``detection:`` section (absent: no signals, always the default tier)."""
        detection = detection or {}
        return cls(SignalTable(detection.get("signals", ())), tiers, default_tier,
                   detection.get("confidence_scale", DEFAULT_CONFIDENCE_SCALE), plan,
                   detection.get("calibration"), detection.get("ask"))

    def _effect(self, index: int) -> _Effect:
        """The effect of signal ``index`` (see _Effect), worked out the first time it is needed; its Hit's
        fields go to :attr:`_hit_parts`."""
        found = self._effects.get(index)
        if found is None:
            signal = self._signals[index]
            tier, weight = signal.main
            ranked = tuple((self._ranks[t], w) for t, w in signal.weights.items() if w)
            found = self._effects[index] = ((signal.id, tier, weight), (signal.boost, signal.weights, signal.group),
                                            ranked, signal.boost, signal.group)
            self._hit_parts[index] = found[:2]
        return found

    # -- the hot path -----------------------------------------------------------------------------------

    def detect(self, text: str, context: Mapping[str, Any] | None = None) -> Detection:
        """The tier of ``text`` (a task description), with the signals that fired and where.

        The tier, confidence and scores come from which entries of the matcher fired; where they matched (the
        hits and their spans) is worked out when :attr:`Detection.hits` is first read."""
        if text.isascii():  # NFKC leaves ASCII alone, and folding it keeps every offset
            norm, folded = None, text.lower()
            data = folded.encode("ascii")
        else:
            norm = normalize(text)
            folded = norm.text
            data = folded.encode("utf-8", "surrogatepass")
        scores = [0.0] * self._size
        boost = 0
        named: dict[str, bool] = {}  # signal id → True, for the conditions' `hits`
        count = self._zero_counts.copy()  # for the conditions' `count`
        hits = span = pending = None
        fired = self._matcher.fired(data)
        if fired:
            fired.sort()  # entries are in policy order, a signal's entries next to each other
            last = fired[-1]
            if last >= self._ask_entry:  # the ask rules' entries come last (none without ask rules)
                if last == self._boundary_entry and not (len(fired) > 1 and fired[-2] >= self._ask_entry) \
                        and not folded.rstrip().endswith("?"):
                    fired.pop()  # only a sentence boundary, and no final question: the whole task asks
                else:
                    ask = self._find_ask(fired, folded, data)
                    if ask is not None:
                        scores, boost, hits, span = self._score_with_ask(text, norm, folded, data, fired, ask,
                                                                         context)
            if hits is None:
                entries = self._entries
                current = -1
                for i in fired:
                    try:
                        signal, rank, weight, rest, group, name = entries[i]
                    except KeyError:  # the first time this entry fires
                        signal, rank, weight, rest, group, name = self._entry(i)
                    if signal == current:  # another word of the same signal: it counts once
                        continue
                    current = signal
                    scores[rank] += weight
                    if rest is not None:  # more weights or a boost: few signals have them (-2 % instructions here)
                        more, lift = rest
                        for rank, weight in more:
                            scores[rank] += weight
                        boost += lift
                    named[name] = True
                    if group is not None:
                        count[group] += 1
        if hits is None:
            derived: Sequence[Hit] = ()
            if context:
                if self._steps:
                    derived = []
                    boost += self._derive(self._steps, text, folded, derived, scores, named, count, context, None,
                                          count)[0]
            elif self._steps_plain:
                # The derivation of these counts, signals and facts, when it was decided by them alone before (it
                # saves evaluating the steps one by one: about a quarter of a 100-character task).
                derivations = self._derivations
                if derivations is not None:  # the key: as _derivation_key says, built inline
                    one, ids, ask_question = self._derivation_key
                    key = (*count, one in named) if one is not None else (*count, *map(named.__contains__, ids))
                    if ask_question:
                        key = (key, folded.rstrip().endswith("?"))  # _ask_question of the task
                    known = derivations.get(key)
                else:
                    known = None
                if known is None:
                    derived = []
                    ranked = []
                    lift, keyed = self._derive(self._steps_plain, text, folded, derived, scores, named, count, None,
                                               None, count, ranked)
                    boost += lift
                    if keyed and derivations is not None and len(derivations) < _MEMO_MAX:
                        derivations[key] = (tuple(derived), tuple(ranked), lift)
                else:
                    derived, ranked, lift = known
                    for rank, weight in ranked:  # in the order the steps added them: the same sums to the bit
                        scores[rank] += weight
                    boost += lift
            pending = (self, text, norm, folded, data, fired, derived)  # the hits: Detection.hits calls _hits

        # The decision: the best score's tier and the confidence are a function of the scores alone, remembered
        # per scores (weights are few, so scores repeat: 169 distinct among the 320 labelled tasks); it saves
        # sorting them, about 5 % of a 100-character task. Then the boosts move the tier.
        key = tuple(scores)
        decided = self._decisions.get(key)
        if decided is None:
            decided = self._decide(scores, key)
        best, confidence = decided
        final = best + boost
        if boost:
            final = 0 if final < 0 else len(scores) - 1 if final >= len(scores) else final
        tiers = self.tiers
        detection = _new_detection(Detection)
        detection._tier = tiers[final]
        detection._confidence = confidence
        detection._base_tier = tiers[best]
        detection._boost = boost
        detection._ask = span
        detection._scores = scores  # a list: Detection.scores makes it a mapping when first read
        detection._tiers = tiers
        detection._hits = hits
        detection._pending = pending
        return detection

    def _hits(self, text: str, norm: Any, folded: str, data: bytes, fired: list[int], derived: list[Hit]
              ) -> tuple[Hit, ...]:
        """The hits of a detection without a narrower ask: each fired signal at its earliest match, then the
        derived ones (:attr:`Detection.hits` calls this when first read)."""
        hits: list[Hit] = []
        spots = self._spots
        current, first = -1, (0, 0)
        if norm is not None:  # other text: the locators, in folded offsets, then mapped to the text's
            for i in fired:
                try:
                    signal, head, whole, size, check, locate, name, tier, weight, boost, weights, group = spots[i]
                except KeyError:  # the first time this entry is located
                    signal, head, whole, size, check, locate, name, tier, weight, boost, weights, group = self._spot(i)
                found = locate(folded, data)
                if found is None:
                    continue
                if signal == current:  # another word of the same signal: keep the earliest (in folded offsets)
                    if found >= first:
                        continue
                    hits.pop()
                current, first = signal, found
                found = start, end = norm.span(*found)
                hits.append(_new_tuple(Hit, (name, tier, weight, text[start:end], found, boost, weights, group)))
            hits += derived
            return tuple(hits)
        # ASCII text: a word entry's earliest match is found with a bytes.find and a slice in a padded copy whose
        # non-word bytes are spaces (see engine.detect.matcher.WORD_BYTES), a phrase's with two finds and two slices
        # (phrase_needles); other entries (without needles) and a form before the base form: their
        # locators. Each Hit is built here from one record per entry (no call per hit). Slices are compared
        # rather than bytes.startswith called (whose arguments are parsed: about twice the cost).
        padded = b" %s " % data.translate(WORD_BYTES)
        for i in fired:
            try:
                signal, head, whole, size, check, locate, name, tier, weight, boost, weights, group = spots[i]
            except KeyError:  # the first time this entry is located
                signal, head, whole, size, check, locate, name, tier, weight, boost, weights, group = self._spot(i)
            if head is not None and padded[(start := padded.find(head)):(end := start + size) + 2] == whole and (
                    check is None or start == padded.find(check[0])
                    and data[start:end].translate(SEPARATOR_BYTES) == check[1]):
                # the first word that starts like one of the forms is the base form (a phrase: with single
                # separators, where its first word first occurs)
                found = (start, end)
            else:
                found = locate(folded, data)  # ASCII: folded offsets are the text's
                if found is None:
                    continue
                start, end = found
            if signal == current:  # another word of the same signal: keep the earliest
                if found >= first:
                    continue
                hits.pop()
            current, first = signal, found
            hits.append(_new_tuple(Hit, (name, tier, weight, text[start:end], found, boost, weights, group)))
        hits += derived
        return tuple(hits)

    def _spot(self, index: int) -> tuple:
        """What :meth:`_hits` needs of entry ``index`` (it fired, so its entry is built), worked out the first
        time it is located: its signal, its needles (:func:`~engine.detect.matcher.word_needles`, or
        :func:`~engine.detect.matcher.phrase_needles` and ``check``, its first word and inner form; None
        when it has none), its locator and the fields of its signal's Hit besides the text and span."""
        signal = self._entries[index][0]
        (name, tier, weight), (boost, weights, group) = self._hit_parts[signal]
        item = self._items[index]
        head, whole, size, check = None, None, 0, None
        if (needles := word_needles(item)) is not None:
            head, whole, size = needles
        elif (needles := phrase_needles(item)) is not None:
            head, whole, size, check = needles[0], needles[1], needles[2], needles[3:]
        spot = self._spots[index] = (signal, head, whole, size, check, self._locate(index), name, tier, weight,
                                     boost, weights, group)
        return spot

    def _signal_ids(self, text: str, norm: Any, folded: str, data: bytes, fired: list[int], derived: list[Hit]
                    ) -> tuple[str, ...]:
        """The ids of the signals that fired, in the order of :meth:`_hits`, without locating any span
        (:attr:`Detection.signal_ids` calls this when the hits were not read)."""
        parts, entries = self._hit_parts, self._entries
        return (*dict.fromkeys(parts[entries[i][0]][0][0] for i in fired), *(h.signal for h in derived))

    def _find_ask(self, fired: list[int], folded: str, data: bytes) -> Any:
        """The ask when it is narrower than the task, else None; pops the ask rules' entries off ``fired``."""
        last = fired.pop()
        if last == self._boundary_entry and not (fired and fired[-1] >= self._ask_entry) \
                and not folded.rstrip().endswith("?"):
            return None  # only a sentence boundary, and no final question: the whole task asks
        kinds = self.ask_rules.kinds
        found = [kinds[last - self._ask_entry]]
        while fired and fired[-1] >= self._ask_entry:
            found.append(kinds[fired.pop() - self._ask_entry])
        ask = self.ask_rules.find(folded, data, "marker" in found, "aside" in found, "reference" in found,
                                  "boundary" in found)
        return ask if ask.narrowed else None

    def _score_with_ask(self, text: str, norm: Any, folded: str, data: bytes, fired: list[int], ask: Any,
                        context: Mapping[str, Any] | None) -> tuple[list[float], int, tuple[Hit, ...], tuple]:
        """The scores, boost, hits and the ask's span of a task whose ask is narrower than it: a second pass of
        the matcher over the ask alone (the task blanked outside it) says which signals occur in the ask;
        signals scoped to the ask count only there, and ``ask.count`` counts the groups' signals that occur
        there. Whether a scoped signal counts depends on locating it, so the hits are built here, not when
        first read."""
        scores = [0.0] * len(self.tiers)
        boost = 0
        hits: list[Hit] = []
        named: dict[str, bool] = {}
        count = self._zero_counts.copy()
        ask_text = ask.text
        ask_data = ask_text.encode("utf-8", "surrogatepass")
        in_ask = frozenset(filter(self._ask_entry.__gt__, self._matcher.fired(ask_data)))
        ask_count = self._zero_counts.copy()
        ask_named: set[int] = set()
        whole = frozenset(fired)
        entries = self._entries
        parts = self._hit_parts
        scoped_entries = self._scoped_entries
        current, first = -1, (0, 0)
        for i in sorted(whole | in_ask):
            signal, rank, weight, rest, group, name = entries[i] if i in entries else self._entry(i)
            inside = i in in_ask
            if i in scoped_entries:
                if not inside:
                    continue
                found = self._locate(i)(ask_text, ask_data)
                if found is not None and found[0] < ask.start:  # an anchored pattern's blank lead
                    found = (min(ask.start, found[1]), found[1])
            elif i in whole:
                found = self._locate(i)(folded, data)
            else:
                continue
            if found is None:
                continue
            if inside and group is not None and signal not in ask_named:
                ask_named.add(signal)
                ask_count[group] += 1
            before, after = parts[signal]
            if signal == current:  # keep the earliest (in folded offsets)
                if found < first:
                    first = found
                    hits[-1] = _located(text, norm, found, before, after)
                continue
            current = signal
            first = found
            hits.append(_located(text, norm, found, before, after))
            scores[rank] += weight
            if rest is not None:
                more, lift = rest
                for rank, weight in more:
                    scores[rank] += weight
                boost += lift
            named[name] = True
            if group is not None:
                count[group] += 1
        steps = self._steps if context else self._steps_plain
        if steps:
            boost += self._derive(steps, text, folded, hits, scores, named, count, context, ask, ask_count)[0]
        span = (ask.start, len(folded)) if norm is None else norm.span(ask.start, len(folded))
        return scores, boost, tuple(hits), span

    def _derive(self, steps: tuple, text: str, folded: str, hits: list[Hit], scores: list[float],
                named: dict[str, bool], count: list[int], context: Mapping[str, Any] | None, ask: Any,
                ask_count: list[int], ranked_out: list | None = None) -> tuple[int, bool]:
        """Evaluate the derived signals in order; each sees the hits before it, and its hit is appended to
        ``hits`` (and the (rank, weight) pairs it adds to the scores to ``ranked_out``, when given). Returns
        their net boost and whether every condition was decided by remembered values read from the counts, the
        signals that fired and the facts of :data:`_KEYED_FACTS` alone (then the derivation is a function of
        those: see :meth:`detect`). A condition that cannot be evaluated (a missing context key, a type
        mismatch) does not hold."""
        bindings = None  # built when a condition is first evaluated
        boost = 0
        keyed = True
        evaluators = self._evaluators  # a list: a condition's slot changes once it is compiled
        narrowed = ask_count is not count
        for step in steps:
            if step[0] is None:  # one condition
                _, row, guards, complete, uses = step
                holds = None  # decided by its guards: True or False; None: evaluate it
                if guards is not None:
                    if uses is not None and uses[0] < _GUARDS_AFTER:
                        uses[0] += 1
                        if uses[0] == _GUARDS_AFTER:
                            self._arm()
                    else:
                        holds = True if complete else None
                        for memo, pick, ids, reads, slot in guards:
                            if reads is not None and reads not in _KEYED_FACTS:
                                keyed = False
                            if pick is None and not ids:  # facts alone (they are the ask's when it is narrower)
                                key = reads(text, folded, ask)
                            else:
                                key = pick(count) if pick is not None else ()
                                if ids:
                                    key = (key, *map(named.__contains__, ids))
                                if narrowed:
                                    key = ("ask", key, pick(ask_count) if pick is not None else ())
                                if reads is not None:
                                    key = (key, reads(text, folded, ask))
                            value = memo.get(key)
                            if value is None:
                                if bindings is None:
                                    bindings = self._bindings(text, folded, named, count, context, ask, ask_count)
                                try:
                                    value = evaluators[slot](bindings) is True
                                except Exception:  # noqa: BLE001 - the language raises EvaluationError
                                    value = False
                                if len(memo) < _MEMO_MAX:
                                    memo[key] = value
                            if not value:
                                holds = False
                                break
                if holds is None:
                    keyed = False
                    if bindings is None:
                        bindings = self._bindings(text, folded, named, count, context, ask, ask_count)
                    try:
                        if evaluators[row[0]](bindings) is not True:
                            continue
                    except Exception:  # noqa: BLE001 - the language raises EvaluationError; nothing may escape
                        continue
                elif not holds:
                    continue
                held, found = (row,), None
            else:  # a run of conditions that read only counts and hits: which hold is remembered
                memo, pick, flag, ids, rows = step
                key = pick(count) if pick is not None else ()  # the key as _memo_key builds it, inline
                if flag is not None:  # one signal id
                    key = (key, flag in named)
                elif ids:
                    key = (key, *map(named.__contains__, ids))
                if narrowed:
                    key = ("ask", key, pick(ask_count) if pick is not None else ())
                held, found = memo.get(key), None
                if held is None:  # evaluate the run's conditions, in order: each sees what the ones before did
                    if bindings is None:
                        bindings = self._bindings(text, folded, named, count, context, ask, ask_count)
                    held, found = rows, []
            for row in held:
                if found is not None:
                    try:
                        if evaluators[row[0]](bindings) is not True:
                            continue
                    except Exception:  # noqa: BLE001 - as above
                        continue
                    found.append(row)
                _, hit, ranked, lift, group = row
                hits.append(hit)
                for rank, weight in ranked:
                    scores[rank] += weight
                if ranked_out is not None:
                    ranked_out += ranked
                boost += lift
                named[hit[0]] = True
                if group is not None:
                    count[group] += 1
                    if narrowed:
                        ask_count[group] += 1
                    if bindings is not None:
                        bindings.counted(group)
            if found is not None and len(memo) < _MEMO_MAX:
                memo[key] = tuple(found)
        return boost, keyed

    def _bindings(self, text: str, folded: str, named: dict[str, bool], count: list[int],
                  context: Mapping[str, Any] | None, ask: Any, ask_count: list[int]) -> "_Bindings":
        groups = self._groups
        counts = dict(zip(groups, count))  # the conditions' `count` (then kept in step by _Bindings.counted)
        bindings = _Bindings({"hits": named, "count": counts, "chars": len(text), "text": folded,
                              "tiers": self._ranks,
                              "context": context if type(context) is dict else {} if context is None else dict(context)})
        bindings.task = text
        bindings.groups = tuple(groups)
        # `ask` is built when a condition first reads it; its `count` is the task's when the ask is the task
        bindings.ask = (ask, counts if ask_count is count else dict(zip(groups, ask_count)))
        return bindings

    def _decide(self, scores: list[float], key: tuple[float, ...]) -> tuple[int, float]:
        """The rank of the best score (ties go to the tier nearest the default, then the smaller) and the
        confidence of its margin over the second-best score; remembered under ``key`` (``scores`` as a tuple)."""
        ordered = sorted(scores)
        top = ordered[-1]
        second = ordered[-2] if self._size > 1 else 0.0
        if second != top:  # one best tier
            best = scores.index(top)
        else:
            for best in self._tie_order:
                if scores[best] == top:
                    break
        margin = top - second
        if self.calibration is not None:
            slope, intercept = self.calibration
            confidence = round(1.0 / (1.0 + _exp(-(slope * margin + intercept))), 3)
        else:
            confidence = round(margin / (margin + self.confidence_scale), 3) if margin > 0 else 0.0
        if len(self._decisions) < _MEMO_MAX:
            self._decisions[key] = best, confidence
        return best, confidence


def _is_word(ch: str) -> bool:
    """Whether ``ch`` is a character of Python's ``\\w`` (in a str pattern)."""
    return ch.isalnum() or ch == "_"


def _needs_context(source: str) -> bool:
    """Whether a condition has the form ``has(context.K) && …`` (and cannot hold without a context): the regex
    ``\\s*has\\(\\s*context\\.\\w+\\s*\\)\\s*&&`` matched at its start, written with str methods (a start that
    detects imports no ``re``)."""
    rest = source.lstrip()
    if not rest.startswith("has("):
        return False
    rest = rest[4:].lstrip()
    if not rest.startswith("context."):
        return False
    at = 8
    while at < len(rest) and _is_word(rest[at]):
        at += 1
    if at == 8:
        return False
    rest = rest[at:].lstrip()
    return rest.startswith(")") and rest[1:].lstrip().startswith("&&")


def _reads_question(source: str) -> bool:
    """Whether a condition reads the name ``question`` (not ``ask.question``): the regex
    ``(?<![\\w.])question\\b``, written with str methods."""
    at = source.find("question")
    while at >= 0:
        end = at + 8
        if (at == 0 or not (_is_word(source[at - 1]) or source[at - 1] == ".")) and (
                end == len(source) or not _is_word(source[end])):
            return True
        at = source.find("question", at + 1)
    return False


def compile_condition(source: str, python_source: str | None = None) -> Any:
    """:func:`engine.detect.conditions.compile_condition`, imported when a condition is first compiled (a start
    whose guards decide every condition never loads that module or the expression language)."""
    from engine.detect.conditions import compile_condition as compile_

    return compile_(source, python_source)


def _steps(rows: list[tuple[tuple, Any, Any]], groups: dict[str, int]) -> tuple:
    """:meth:`Detector._index_conditions`'s steps of ``rows`` (``(row, quiet, guards)``): runs of remembered
    conditions become one step each, seeded with what holds when none of their inputs fired (``groups``: each
    group's index in a task's counts)."""
    zero = [0] * len(groups)
    steps: list[tuple] = []
    run: list[tuple[tuple, Any]] = []

    def close() -> None:
        if not run:
            return
        read = {g for _, quiet in run for g in quiet[0]}
        ids = tuple(sorted({i for _, quiet in run for i in quiet[1]}))
        pick = _pick(read, groups) if read else None
        memo: dict = {}
        held = _seed(run)
        if held is not None:
            memo[_memo_key(pick, ids, zero, {}, None)] = held
            memo[_memo_key(pick, ids, zero, {}, zero)] = held
        steps.append((memo, pick, ids[0] if len(ids) == 1 else None, ids, tuple(row for row, _ in run)))
        run.clear()

    for row, quiet, guards in rows:
        if quiet is None:
            close()
            found, complete, direct = guards if guards is not None else (None, False, False)
            # Guards read directly (no compiling) are in use from the first task; compiled ones only in a
            # process that has evaluated the condition _GUARDS_AFTER times.
            steps.append((None, row, found, complete, None if direct else [0]))
        else:
            run.append((row, quiet))
    close()
    return tuple(steps)


# The task's scalar facts, as _Bindings and _AskBinding work them out, for guards (text, folded, ask → value).
def _words(text: str, folded: str, ask: Any) -> int:
    return len(folded.split())


def _chars(text: str, folded: str, ask: Any) -> int:
    return len(text)


def _question(text: str, folded: str, ask: Any) -> bool:
    return text.rstrip().endswith("?")


def _ask_words(text: str, folded: str, ask: Any) -> int:
    return len((folded if ask is None else ask.text).split())


def _ask_question(text: str, folded: str, ask: Any) -> bool:
    return (folded if ask is None else ask.text).rstrip().endswith("?")


def _ask_narrowed(text: str, folded: str, ask: Any) -> bool:
    return ask is not None


# The facts a remembered derivation may be keyed by (Detector._derive): they cost nothing to tell and take few
# values (``chars`` costs nothing but takes as many values as there are lengths; ``words`` and ``ask.words``
# cost a pass; no guard reads ``question``, see _index_conditions).
_KEYED_FACTS = frozenset({_ask_question, _ask_narrowed})

_FACTS = {"words": _words, "chars": _chars, "question": _question, "ask.words": _ask_words,
          "ask.question": _ask_question, "ask.narrowed": _ask_narrowed}


def _facts(names: Sequence[str]) -> Any:
    """``(text, folded, ask) → value`` of the facts ``names`` (one fact: its value; several: a tuple), or None."""
    if not names:
        return None
    if len(names) == 1:
        return _FACTS[names[0]]
    functions = tuple(_FACTS[name] for name in names)
    return lambda text, folded, ask: tuple([fact(text, folded, ask) for fact in functions])


def _seed(run: list[tuple[tuple, Any]]) -> tuple | None:
    """Which conditions of a run hold when none of its inputs fired, from the plan's values with nothing
    fired; None when that cannot be told without evaluating (a condition that holds then changes the inputs of
    a later one)."""
    groups: set[str] = set()
    names: set[str] = set()
    held = []
    for row, (reads, ids, value) in run:
        if groups.intersection(reads) or names.intersection(ids):
            return None
        if value:
            held.append(row)
            names.add(row[1].signal)
            if row[1].group is not None:
                groups.add(row[1].group)
    return tuple(held)


_new_detection = object.__new__


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


class _LocatorTable:
    """The matcher's ``entries``: entry index → the function that locates it (``locate(text, data)``), built
    when first needed into ``built`` (a plain dict: the detector's hot path looks it up directly)."""

    __slots__ = ("items", "built")

    def __init__(self, items: Sequence[Any]):
        self.items = items
        self.built: dict[int, Any] = {}

    def __getitem__(self, index: int) -> Any:
        found = self.built.get(index)
        if found is None:
            found = self.built[index] = plan_entry(self.items[index]).locate
        return found

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):  # in entry order
        return (self[i] for i in range(len(self.items)))


def _lazy_condition(source: str, python_source: str | None) -> Any:
    """``evaluate(bindings)`` of a condition, compiled when first called (the plan compiled it once already,
    so a validated policy's conditions compile)."""
    compiled: list = []

    def evaluate(bindings: Mapping[str, Any]) -> Any:
        if not compiled:  # a condition of counts and facts alone is read directly, with nothing compiled
            compiled.append(direct_condition(source) or compile_condition(source, python_source).evaluate)
        return compiled[0](bindings)

    evaluate.compiled = compiled
    return evaluate


def _memo_key(pick: Any, ids: Sequence[str], count: list[int], named: Mapping[str, bool],
              ask_count: list[int] | None) -> Any:
    """What a remembered condition's value is kept under (Detector._derive builds the same inline): the counts
    of its groups, whether each of its signals fired, and, when the ask is narrower, the ask's counts."""
    key = pick(count) if pick is not None else ()
    if ids:
        key = (key, *map(named.__contains__, ids))
    if ask_count is not None:
        key = ("ask", key, pick(ask_count) if pick is not None else ())
    return key


def _pick(read: Any, groups: Mapping[str, int]) -> Any:
    """The key of the counts of the groups ``read`` (names) in a task's list of counts (``groups``: name →
    index): ``tuple`` when they are all of them (one C call), else an itemgetter of their indices (in index
    order: a key only needs to be the same for the same counts)."""
    positions = sorted(groups[g] for g in read)
    return tuple if positions == list(range(len(groups))) else itemgetter(*positions)


def _first_call(table: list, slot: int, evaluate: Any) -> Any:
    """``evaluate``, which on its first call puts the compiled condition itself in ``table[slot]`` (the hot path
    then calls it without the lazy wrapper)."""

    def first(bindings: Mapping[str, Any]) -> Any:
        try:
            return evaluate(bindings)
        finally:
            real = getattr(evaluate, "compiled", None)
            if real:
                table[slot] = real[0]

    return first


def _quiet(found: Any) -> tuple[tuple[str, ...], tuple[str, ...], bool] | None:
    return None if found is None else (tuple(found[0]), tuple(found[1]), bool(found[2]))


class _Bindings(dict):
    """What conditions see. ``words`` and ``question`` cost a pass over the task, so they are worked out the
    first time a condition reads them (most tasks never get that far in the conditions that use them)."""

    __slots__ = ("task", "ask", "groups")

    def counted(self, group: int) -> None:
        """One more signal of group ``group`` (its index) fired: the conditions' dicts of counts say so."""
        name = self.groups[group]
        counts = self["count"]
        counts[name] += 1
        ask_counts = self.ask[1]
        if ask_counts is not counts:
            ask_counts[name] += 1

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
