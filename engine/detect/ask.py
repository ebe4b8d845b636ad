"""The ask of a task: the clause that asks, apart from the context around it.

A task often carries background before its request ("we've been going back and forth about the lineage from
Fivetran through dbt into Tableau … but right now all I need is the name of the warehouse") or an aside that
rules things out ("ignore the bits about Snowflake and dbt — I only want to know …"). The ask is found by
plain rules, in this order:

1. **a marker**: the last occurrence of a phrase that introduces a request (``can you``, ``I need``, ``all I
   want``, ``just tell me``, ``before any of that``, …) starts the ask, which runs to the end of the task
   (or, when a colon follows the marker closely, starts after the colon: "I only want to know: what …";
   when a wh-question follows the marker, starts at it: "my question is who approved it?"; when punctuation
   closes the marker, starts after it: "Anyway. Is the pipe running?");
2. otherwise, when the task ends with a question of at least :data:`MIN_QUESTION_WORDS` words after other
   sentences, that last question is the ask;
3. otherwise the whole task is the ask.

Then every **aside** (``ignore …``, ``leaving aside …``, ``don't worry about …``) is cut out of the ask, up to
the end of its clause (``.``, ``;``, ``:``, ``!``, ``?``, a dash or a line break). An ask that **refers back**
to its context ("… and how it gets to all three", "who does what") takes the context with it: the ask is
then the whole task (less its asides).

The ask is returned as the folded task with everything outside the ask blanked out with spaces, so offsets
stay those of the task and a pattern anchored at ``^`` matches where the ask starts. The markers and asides
are in the set matcher beside the signals (:class:`AskRules` gives their patterns), so a task without any
costs nothing more than that one pass.
"""

from __future__ import annotations

from engine.records import Record

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Iterable, Iterator, Sequence

import re2

from engine.detect.literals import SEPARATOR, forms_pattern, literal_forms

MARKERS = (
    "can you", "could you", "can u", "could u", "would you", "will you", "i need", "i just need", "all i need",
    "all i want", "all i'm asking", "i only want", "i only need", "i just want", "i'd like", "i would like",
    "just tell me", "just need", "just want", "before any of that", "none of that matters", "for today",
    "long story short", "anyway", "anyways", "my question is", "the question is", "the ask is",
    "what i need is", "what i want is", "tl;dr", "tldr", "bottom line", "for this ticket",
)
ASIDES = (
    "ignore", "ignoring", "leave aside", "leaving aside", "set aside", "setting aside", "putting aside",
    "never mind", "nevermind", "not asking about", "don't worry about", "do not worry about", "forget about",
    "no need to look at", "no need to touch", "no need to dig into", "no need to check",
    # closing pleasantries: "… is it attached to customers.email? Thanks!!", "… in the prod profile. Regards, Anil"
    "thanks", "thank you", "thx", "many thanks", "cheers", "regards", "best regards", "kind regards",
)
_BOUNDARY = r"[.!?:;]\s|\n|\x{2014}"
MAX_LEAD = 40  # a colon this close after a marker introduces the ask itself ("I only want to know: …")
REFERENCES = (
    "all three", "all four", "all five", "all of them", "each of them", "both of them", "each one", "all these",
    "all of these", "every one of them", "who does what", "who needs to do what", "what each",
)
MIN_QUESTION_WORDS = 4  # "what gives?" after a story refers back to it; it is not an ask of its own
_CLAUSE_END = r"[.;:!?\n\x{2013}\x{2014}]"
_SENTENCE_ENDS = ".!?:\n\u2014"


class Ask(Record):
    """Where the ask is: ``text`` is the folded task blanked outside the ask (same length), ``start`` the
    index the ask starts at; ``narrowed`` is False when the ask is the whole task."""

    text: str
    start: int
    narrowed: bool


def _alternation(literals: Iterable[str], forms: dict | None = None) -> str:
    """The RE2 alternation of ``literals`` (uninflected), their forms taken from ``forms`` when it has them."""
    forms = forms or {}
    return "|".join(forms_pattern(*(forms.get(lit) or literal_forms(lit, False))) for lit in literals)


class AskRules:
    """The compiled ask rules of a policy (the defaults, or its ``detection.ask`` lists)."""

    __slots__ = ("markers", "asides", "references", "patterns", "kinds", "lists", "forms", "_compiled")

    def __init__(self, markers: Sequence[str] = MARKERS, asides: Sequence[str] = ASIDES,
                 references: Sequence[str] = REFERENCES):
        # Each literal's forms (literal_forms, uninflected), worked out once: a literal without words is left out.
        self.forms: dict[str, tuple[list[str], list[str]]] = {}
        for literal in (*markers, *asides, *references):
            if literal not in self.forms:
                self.forms[literal] = literal_forms(literal, False)
        self.markers = tuple(m for m in markers if self.forms[m][1])
        self.asides = tuple(a for a in asides if self.forms[a][1])
        self.references = tuple(r for r in references if self.forms[r][1])
        # One entry per list in the set matcher: "some marker occurs", "some aside occurs".
        lists = [(kind, lits) for kind, lits in (("marker", self.markers), ("aside", self.asides),
                                                 ("reference", self.references)) if lits]
        # A sentence boundary: only a task with one can end with a question after other sentences.
        self.patterns = tuple(_alternation(lits, self.forms) for _, lits in lists) + (_BOUNDARY,)
        self.kinds = tuple(kind for kind, _ in lists) + ("boundary",)  # what each pattern says when it fires
        # Each pattern's literals (uninflected; none for the boundary): a matcher screens most with its word index.
        self.lists = tuple(lits for _, lits in lists) + ((),)
        self._compiled: dict[str, Any] = {}  # "marker", "reference", "aside" → RE2 regex, when first needed

    def _regex(self, kind: str) -> Any:
        """The RE2 regex that locates the markers (left to right, a DFA search), references or asides (to the
        end of their clause), compiled the first time a task has one (most tasks have none: the set matcher
        says so, and the regex is never built)."""
        regex = self._compiled.get(kind)
        if regex is None:
            from engine.detect.matcher import options

            if kind == "aside":
                source = "(?:" + _alternation(self.asides, self.forms) + ")" + "[^.;:!?\\n\\x{2013}\\x{2014}]*"
            else:
                source = _alternation(self.markers if kind == "marker" else self.references, self.forms)
            regex = self._compiled[kind] = re2.compile(source.encode("utf-8"), options())
        return regex

    @property
    def _last_marker(self) -> Any:
        return self._regex("marker") if self.markers else None

    @property
    def _reference(self) -> Any:
        return self._regex("reference") if self.references else None

    @property
    def _aside(self) -> Any:
        return self._regex("aside") if self.asides else None

    def find(self, folded: str, data: bytes, marker: bool, aside: bool, reference: bool = False,
             boundary: bool = True) -> Ask:
        """The ask of a task (``folded``, its UTF-8 ``data``); ``marker``, ``aside``, ``reference`` and
        ``boundary`` say whether the set matcher found a marker, an aside, a reference back or a sentence
        boundary in it."""
        start = 0
        if marker and self._last_marker is not None:
            found = None
            for found in _spans(self._last_marker, data):
                pass
            if found is not None:
                start = _characters(found[0], folded, data)
                colon = folded.find(": ", start, start + MAX_LEAD)  # "before any of that: what's …"
                end = _characters(found[1], folded, data)
                wh = _python_regex("wh").match(folded, end)
                if colon >= 0:
                    start = colon + 2
                elif wh is not None:  # "my question is who approved it?"
                    start = wh.start(1)
                else:  # "Anyway. Is the pipe running?": punctuation closes the marker, the ask follows it
                    stop = _python_regex("stop").match(folded, end)
                    if stop is not None:
                        start = stop.end()
        if not start and boundary and folded.rstrip().endswith("?"):
            start = _last_question(folded)
        if start and not _has_word(folded, 0, start):
            start = 0  # only greetings and punctuation before the marker: the whole task asks
        if start and reference and self._reference is not None and any(
                _characters(m[0], folded, data) >= start for m in _spans(self._reference, data)):
            start = 0  # the ask refers back to its context
        spans = []
        if aside and self._aside is not None:
            for match in _spans(self._aside, data):
                a, b = _characters(match[0], folded, data), _characters(match[1], folded, data)
                if b > start:
                    spans.append((max(a, start), b))
        if not start and not spans:
            return Ask(folded, 0, False)
        pieces, at = [" " * start], start
        for a, b in spans:
            if a >= at:
                pieces += (folded[at:a], " " * (b - a))
                at = b
        pieces.append(folded[at:])
        return Ask("".join(pieces), start, True)


_UNANCHORED = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)


def _spans(regex: "re2._Regexp", data: bytes) -> Iterator[tuple[int, int]]:
    """The byte spans of ``regex.finditer(data)``'s matches, straight from the extension's ``Match`` (the
    wrapper builds a match object per match, several microseconds per task)."""
    low_level = getattr(regex, "_regexp", None)
    if low_level is None or _UNANCHORED is None or not hasattr(low_level, "Match"):  # pragma: no cover
        yield from (m.span() for m in regex.finditer(data))
        return
    match = low_level.Match
    pos, endpos = 0, len(data)
    while True:  # the wrapper's loop for bytes, without its match objects
        span = match(_UNANCHORED, data, pos, endpos)[0]
        if span[0] == -1:
            return
        yield span
        if pos == endpos:
            return
        pos = pos + 1 if pos == span[1] else span[1]


def _characters(offset: int, text: str, data: bytes) -> int:
    """A byte offset of ``data`` (``text`` as UTF-8) as a character offset of ``text``."""
    if len(data) == len(text):
        return offset
    return len(data[:offset].decode("utf-8", "surrogatepass"))


def _has_word(text: str, start: int, end: int) -> bool:
    """Whether ``text[start:end]`` says more than a greeting ("hey", "hi team,", "ok so")."""
    for word in _python_regex("word").finditer(text, start, end):  # usually the first word decides
        if word.group() not in _GREETINGS:
            return True
    return False


_PYTHON_REGEXES = {"word": r"\w+", "wh": r"[\s,-]*(?:is\s+|was\s+)?(what|which|who|whom|whose|when|where|why|how)\b",
                   "stop": r"\s*[.,;!\u2013\u2014-]+\s+(?=\w)"}
_compiled_regexes: dict = {}


def _python_regex(name: str) -> Any:
    """One of :data:`_PYTHON_REGEXES`, compiled (and ``re`` imported) the first time a task has an ask to look
    at: most tasks have no marker and no final question, and a start that detects them imports no ``re``."""
    regex = _compiled_regexes.get(name)
    if regex is None:
        import re

        regex = _compiled_regexes[name] = re.compile(_PYTHON_REGEXES[name])
    return regex


_GREETINGS = frozenset({"hey", "hi", "hello", "ok", "okay", "so", "team", "all", "folks", "quick", "q", "question",
                        "please", "pls", "thanks", "morning", "yo", "um", "hmm", "also", "and", "but"})


def _last_question(text: str) -> int:
    """Where the final question starts when it follows other sentences and has enough words, else 0."""
    end = len(text.rstrip().rstrip("?"))
    i = end
    while True:
        i = max(text.rfind(ch, 0, i) for ch in _SENTENCE_ENDS)
        if i <= 0:
            return 0
        if text[i] in "\n\u2014" or text[i + 1:i + 2].isspace():
            break
    start = i + 1
    if len(text[start:end].split()) < MIN_QUESTION_WORDS:
        return 0
    while start < end and text[start].isspace():
        start += 1
    return start


__all__ = ["ASIDES", "Ask", "AskRules", "MARKERS", "REFERENCES", "SEPARATOR"]
