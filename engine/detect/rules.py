"""Semantic checks of the ``detection:`` section (what the schema cannot say about signals), and the rules of
the task files detection reads (``detect --batch``, ``accuracy``, ``bench``; reported by
:mod:`engine.detect.taskfile`).

Each check is a generator over the schema-valid policy data yielding :class:`Problem` records at the YAML
position of the offending node, registered with :func:`engine.policy.rules.check` (docs/policy.md lists them).
"""

from __future__ import annotations

import re
TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Iterator

from engine.diagnostics import Problem, did_you_mean
from engine.policy.rules import check, register
from engine.policy.semantics import check_expression, problem_at
from engine.policy.yamlsource import Document

register("task-encoding", "a line of a task file that is not UTF-8", "tasks")
register("task-too-long", "a line of a task file longer than 4 MiB; like every bad task line, it is skipped and "
         "the others are read ([detection.md](detection.md#bad-lines-in-a-task-file))", "tasks")
register("task-json", "a line of a task file starting with `{` that is not valid JSON (nested deeper than 64, a "
         "number out of range, ...)", "tasks")
register("task-shape", "a task line without a string `text`, or with a wrongly typed field", "tasks")
register("task-label", "a labelled task (`accuracy`, `tune`) that is not a JSON object with `text` and `tier`",
         "tasks")

_KINDS = ("words", "pattern", "when")


def _signals(data: dict) -> list[tuple[int, dict]]:
    detection = data.get("detection") or {}
    return list(enumerate(detection.get("signals") or []))


def _where(i: int, *rest: Any) -> tuple:
    return ("detection", "signals", i) + rest


def _items(value: Any) -> list[tuple[tuple, str]]:
    """``(path suffix, text)`` of a string-or-list field."""
    if isinstance(value, str):
        return [((), value)]
    return [((j,), v) for j, v in enumerate(value or [])]


@check("detection", ("signal-kind", "a signal without exactly one of `words`, `pattern`, `when` "
                                    "([detection.md](detection.md))"))
def signal_kind(data: dict, doc: Document) -> Iterator[Problem]:
    """Exactly one of ``words``, ``pattern`` and ``when`` says when a signal fires."""
    for i, signal in _signals(data):
        kinds = [k for k in _KINDS if k in signal]
        if len(kinds) != 1:
            found = " and ".join(repr(k) for k in kinds) if kinds else "none"
            yield problem_at(doc, _where(i, "id"), "signal-kind",
                             f"signal {signal.get('id')!r} needs exactly one of 'words', 'pattern' or 'when' "
                             f"(found {found})")


@check("detection", reports=("duplicate-id",))
def duplicate_signal(data: dict, doc: Document) -> Iterator[Problem]:
    first: dict[str, int] = {}
    for i, signal in _signals(data):
        sid = signal.get("id")
        if sid in first:
            line = doc.pos(_where(first[sid], "id")).line
            yield problem_at(doc, _where(i, "id"), "duplicate-id", f"signal id {sid!r} is already used at line {line}")
        else:
            first[sid] = i


@check("detection", reports=("unknown-tier",))
def signal_tier(data: dict, doc: Document) -> Iterator[Problem]:
    """Signal weights name tiers of the policy."""
    tiers = [t.get("id") for t in data.get("tiers", [])]
    for i, signal in _signals(data):
        for tier in (signal.get("weights") or {}):
            if tier not in tiers:
                yield problem_at(doc, _where(i, "weights", tier), "unknown-tier",
                                 f"signal {signal.get('id')!r} weighs unknown tier {tier!r}"
                                 + did_you_mean(tier, tiers, f" (tiers: {', '.join(tiers)})"), key=True)


@check("detection", ("bad-word", "a signal's literal has no word to match"))
def signal_words(data: dict, doc: Document) -> Iterator[Problem]:
    """Every literal has at least one word once normalised."""
    from engine.detect.literals import words_of

    for i, signal in _signals(data):
        for suffix, word in _items(signal.get("words")):
            if not words_of(word):
                yield problem_at(doc, _where(i, "words", *suffix), "bad-word",
                                 f"signal {signal.get('id')!r}: {word!r} has no word to match")


@check("detection", ("bad-pattern", "a signal's pattern is not valid RE2 (no lookaround or backreferences)"))
def signal_pattern(data: dict, doc: Document) -> Iterator[Problem]:
    """Patterns are valid RE2 (no backreferences or lookaround: they could not run in linear time)."""
    import re2

    from engine.detect.matcher import options
    from engine.detect.plan import user_pattern

    for i, signal in _signals(data):
        for suffix, pattern in _items(signal.get("pattern")):
            for candidate in (pattern, user_pattern(pattern)):
                try:
                    re2.compile(candidate, options())
                except re2.error as exc:
                    yield problem_at(doc, _where(i, "pattern", *suffix), "bad-pattern",
                                     f"signal {signal.get('id')!r}: {_re2_message(exc, pattern)}")
                    break


@check("detection", ("bad-expression", "a signal's `when` condition does not compile"),
       reports=("expression-type", "expression-cost"))
def signal_condition(data: dict, doc: Document) -> Iterator[Problem]:
    """``when`` conditions compile (syntax, known names), type-check against what a condition sees, and
    cannot cost more than the evaluation budget."""
    from engine.detect.conditions import condition_variables

    signals = _signals(data)
    groups = {s.get("group") for _, s in signals if isinstance(s, dict) and s.get("group")}
    tiers = data.get("tiers")
    variables = condition_variables(len(signals), len(groups), len(tiers) if isinstance(tiers, list) else 64)
    for i, signal in signals:
        source = signal.get("when")
        if not isinstance(source, str):
            continue
        problem = check_expression(doc, _where(i, "when"), source, variables, "bad-expression",
                                   f"signal {signal.get('id')!r}, condition", ("bool",), "the condition")
        if problem is not None:
            yield problem


@check("detection", ("signal-no-effect", "(warning) a signal with no weights, boost or group that no condition names"))
def signal_effect(data: dict, doc: Document) -> Iterator[Problem]:
    """A warning for a signal that changes nothing: no weights, no boost, no group, and no condition names it."""
    conditions = " ".join(s.get("when", "") for _, s in _signals(data) if isinstance(s.get("when"), str))
    for i, signal in _signals(data):
        sid = str(signal.get("id"))
        if any((signal.get("weights") or {}).values()) or signal.get("boost") or signal.get("group"):
            continue
        if re.search(r"(?<![\w-])" + re.escape(sid) + r"(?![\w-])", conditions):
            continue
        yield problem_at(doc, _where(i, "id"), "signal-no-effect",
                         f"signal {sid!r} has no weights, boost or group and no condition refers to it",
                         severity="warning")


@check("detection", ("pattern-set-too-large", "the words and patterns of all signals do not fit in one matcher"))
def pattern_set(data: dict, doc: Document) -> Iterator[Problem]:
    """All patterns together fit in one RE2 set (its memory budget bounds a hostile policy)."""
    import re2

    from engine.detect.literals import literal_pattern, words_of
    from engine.detect.matcher import SET_MAX_MEM, options
    from engine.detect.plan import user_pattern

    patterns = []
    for _, signal in _signals(data):
        for _, word in _items(signal.get("words")):
            if words_of(word):
                patterns.append(literal_pattern(word, bool(signal.get("inflect", True))))
        for _, pattern in _items(signal.get("pattern")):
            try:
                re2.compile(user_pattern(pattern), options())
            except re2.error:
                return  # bad-pattern reports it; the set is checked once every pattern compiles
            patterns.append(user_pattern(pattern))
    if not patterns:
        return
    matcher = re2.Set.SearchSet(options(SET_MAX_MEM))
    try:
        for pattern in patterns:
            matcher.Add(pattern)
        matcher.Compile()
    except re2.error:
        yield problem_at(doc, ("detection", "signals"), "pattern-set-too-large",
                         f"the {len(patterns)} words and patterns of the signals do not fit in one matcher; "
                         "use fewer or simpler patterns")


def _re2_message(exc: Exception, pattern: str) -> str:
    raw = exc.args[0] if exc.args else str(exc)
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    reason, _, fragment = text.partition(": ")
    if "too large" in reason:
        return f"RE2 pattern '{pattern}' is too large (it would compile to over ~40,000 instructions)"
    column = pattern.find(fragment) + 1 if fragment and fragment in pattern else 0
    message = f"bad RE2 pattern '{pattern}': {reason}"
    if fragment:
        message += f" ({fragment!r}" + (f" at column {column} of the pattern)" if column else ")")
    if re.match(r"\\[1-9]|\(\?<?[=!]", fragment):
        message += "; RE2 has no lookaround or backreferences"
    return message
