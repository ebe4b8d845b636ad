"""Guards (engine/detect/parts.py): the conjuncts of a condition that read only counts, hits and the task's scalar
facts are remembered per those values and decide the condition when one does not hold — with the same result as
evaluating every condition every time."""

from __future__ import annotations

import random

import pytest

from engine.detect import Detector
from engine.detect.parts import Inputs, conjuncts, inputs
from engine.detect.plan import signals_from_data
from test_detect_words import _baseline

TIERS = ["simple", "medium", "complex", "multi-system"]


@pytest.mark.parametrize("source, expected", [
    ("a && b", ["a", "b"]),
    ("count.lookup == 0 && ask.question && ask.words <= 12", ["count.lookup == 0", "ask.question", "ask.words <= 12"]),
    ("a && (b || c) && d", ["a", "(b || c)", "d"]),
    ("f(a && b, c) && [1, 2].exists(x, x > 1 && y)", ["f(a && b, c)", "[1, 2].exists(x, x > 1 && y)"]),
    ("'a && b' in hits && c", ["'a && b' in hits", "c"]),
    ('"x" in hits && count.a > 1', ['"x" in hits', "count.a > 1"]),
    ("a", None),  # one conjunct: nothing to split
    ("a && b || c", None),  # || binds more loosely: not a conjunction
    ("a || b && c", None),
    ("a ? b && c : d", None),
    ("a && b ? c : d", None),
    ("'it\\'s' in hits && a", None),  # an escape: not followed
    ("a && '''x''' == b", None),
    ("a && (b", None), ("a) && (b", None), ("a && 'b", None),
    ("a && && b", None),  # an empty conjunct
])
def test_conjuncts(source: str, expected) -> None:
    assert conjuncts(source) == expected


@pytest.mark.parametrize("source, expected", [
    ("count.lookup == 0", Inputs(("lookup",), (), ())),
    ("ask.question", Inputs((), (), ("ask.question",))),
    ("ask.words <= 12", Inputs((), (), ("ask.words",))),
    ("words > 8 && chars > 40 && question", Inputs((), (), ("words", "chars", "question"))),
    ("ask.narrowed && ask.count.system >= 2", Inputs(("system",), (), ("ask.narrowed",))),
    ("!has(hits.migration) || 'a-b' in hits", Inputs((), ("a-b", "migration"), ())),
    ("count.a + count.b >= words", Inputs(("a", "b"), (), ("words",))),
    ("text.contains('x')", None), ("context.n > 1", None), ("has(context.n)", None), ("tiers['a'] > 1", None),
    ("size(text) > words", None), ("ask.text == 'x'", None), ("count.a.b > 1", None), ("words.size() > 1", None),
    ("true", None), ("1 > 0", None), ("question_mark", None), ("x.words > 1", None),
])
def test_inputs(source: str, expected) -> None:
    assert inputs(source) == expected


# Conditions of every shape the guards meet: complete (every conjunct remembered), partial (a guard, then the
# whole condition), a whole condition that is one remembered part, ones a guard cannot help, and contexts.
CONDITIONS = [
    {"id": "x", "words": ["alpha", "beta gamma"], "weights": {"complex": 1}, "group": "a"},
    {"id": "y", "in": "ask", "words": ["delta", "epsilon"], "weights": {"simple": 1}, "group": "b"},
    {"id": "z", "pattern": r"\bzeta\b", "weights": {"medium": 1}},
    {"id": "short", "when": "count.b == 0 && ask.question && ask.words <= 4", "weights": {"simple": 1.5}},
    {"id": "long", "when": "words > 8 && chars > 40", "weights": {"complex": -0.5}, "group": "b"},
    {"id": "narrow", "when": "ask.narrowed && count.a >= 1", "weights": {"medium": 0.25}},
    {"id": "both", "when": "count.a >= 1 && count.b >= 1", "weights": {"multi-system": 1}, "group": "a"},
    {"id": "partial", "when": "count.a >= 1 && text.contains('gamma')", "boost": 1},
    {"id": "either", "when": "words <= 3 || count.a > 1", "weights": {"medium": 0.5}},
    {"id": "chain", "when": "has(hits.short) && !('long' in hits) && ask.words < 3", "weights": {"simple": 1}},
    {"id": "agents", "when": "has(context.n) && context.n > 1 && count.a > 0", "weights": {"multi-system": 2}},
    {"id": "previous", "when": "tiers[context.previous] >= 2 && words <= 6", "boost": 1},
]
VOCABULARY = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "can you", "ignore", "all three", "?", "？",
              ".", "the", "a", "of", "ＡＬＰＨＡ", "\u00a8", "\n", "i need", "what", "—"]


def _texts(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(VOCABULARY) for _ in range(rng.randint(0, 16))) for _ in range(count)]


@pytest.mark.parametrize("reads_question", [False, True])
def test_guards_answer_as_evaluating_every_condition(monkeypatch, reads_question: bool) -> None:
    """With guards in use from the first task and room for only a few values each, every detection equals
    the reference's. With a condition reading ``question``, ``ask.question`` is not remembered (the bindings
    then take it from ``question``: the original text's last character, "？" is not "?")."""
    import engine.detect.detector as module

    monkeypatch.setattr(module, "_GUARDS_AFTER", 0)
    monkeypatch.setattr(module, "_MEMO_MAX", 6)
    asks = [{"id": "asks", "when": "question && count.a == 0", "weights": {"simple": 0.5}}] if reads_question else []
    items = CONDITIONS[:3] + asks + CONDITIONS[3:]  # `question` read before `ask.question`
    detector = Detector(signals_from_data({"signals": items}), TIERS, "medium")
    twin = _baseline(detector)
    guarded = [step for step in detector._steps if step[0] is None and step[2]]
    assert len(guarded) >= 5
    facts = {name for step in guarded for guard in step[2] for name in _fact_names(guard)}
    assert ("ask.question" in facts) is not reads_question
    contexts = [None, {"n": 2}, {"n": 1}, {"previous": "complex"}, {"previous": "nope"}, {}]
    for i, text in enumerate(_texts(1500, seed=21)):
        context = contexts[i % len(contexts)]
        assert detector.detect(text, context) == twin.detect(text, context), (text, context)
    assert any(guard[0] for step in guarded for guard in step[2])


def _fact_names(guard: tuple) -> set[str]:
    from engine.detect.detector import _FACTS

    reads = guard[3]
    return {name for name, fact in _FACTS.items() if reads is fact} if reads is not None else set()


def test_guards_are_compiled_only_in_a_process_that_detects_many_tasks(monkeypatch) -> None:
    """A guard that is not read directly is a conjunct compiled from its source (the parser): a one-shot process
    never pays for it."""
    import engine.detect.detector as module

    compiled = []
    real = module.compile_condition
    monkeypatch.setattr(module, "compile_condition", lambda source, *a: compiled.append(source) or real(source, *a))
    monkeypatch.setattr(module, "_GUARDS_AFTER", 4)
    items = [{"id": "product", "when": "count.b == 0 && ask.words * 2 <= 8", "weights": {"simple": 1}}]
    detector = Detector(signals_from_data({"signals": items}), TIERS, "medium")
    for _ in range(4):
        detector.detect("what is alpha?")
    assert compiled == ["count.b == 0 && ask.words * 2 <= 8"]
    detector.detect("what is beta?")
    assert "ask.words * 2 <= 8" in compiled


def test_guards_read_directly_decide_from_the_first_task_without_compiling(monkeypatch) -> None:
    """``count.b == 0 && ask.question && ask.words <= 4``: each conjunct is read from the bindings
    (:func:`direct_conjunct`), so the guards are in use at once and a one-shot process compiles nothing, whether
    the condition holds or not — and answers as the reference does."""
    import engine.detect.detector as module

    compiled = []
    real = module.compile_condition
    monkeypatch.setattr(module, "compile_condition", lambda source, *a: compiled.append(source) or real(source, *a))
    both = next(c for c in CONDITIONS if c["id"] == "both")  # a quiet condition, which the reference needs
    detector = Detector(signals_from_data({"signals": CONDITIONS[:4] + [both]}), TIERS, "medium")
    twin = _baseline(detector)
    compiled.clear()
    texts = ("what is alpha?", "alpha beta. no question here", "what is alpha and beta and gamma?",
             "delta? what is it", "what is delta?")
    found = [detector.detect(text) for text in texts]
    # "alpha" and "delta" fired: the quiet condition is evaluated — read directly too (direct_condition)
    assert compiled == []
    assert found == [twin.detect(text) for text in texts]
    assert "short" in {h.signal for h in detector.detect("what is alpha?").hits}


def _bindings(words: int, chars: int, question: bool, narrowed: bool, counts: dict, ask_counts: dict) -> dict:
    return {"words": words, "chars": chars, "question": question, "count": counts,
            "ask": {"words": words // 2, "question": not question, "narrowed": narrowed, "count": ask_counts}}


@pytest.mark.parametrize("source", [
    "ask.question", "question", "ask.narrowed", "words > 8", "chars >= 40", "ask.words <= 12", "ask.words < 0",
    "count.lookup == 0", "count.lookup != 0", "ask.count.system >= 2", "count.team > 1", "words == 0",
    "chars  <=\t3", "count.lookup == 999999999999999999",
])
def test_a_direct_conjunct_reads_what_the_compiled_one_evaluates(source: str) -> None:
    """Table and random bindings: the direct reading equals the compiled condition's value."""
    from engine.detect.conditions import compile_condition
    from engine.detect.parts import direct_conjunct

    read, found = direct_conjunct(source)
    assert found == inputs(source)
    compiled = compile_condition(source).evaluate
    rng = random.Random(source)
    for _ in range(200):
        counts = {g: rng.randint(0, 4) for g in ("lookup", "system", "team")}
        ask_counts = {g: rng.randint(0, n) for g, n in counts.items()}
        bindings = _bindings(rng.randint(0, 30), rng.randint(0, 80), rng.random() < 0.5, rng.random() < 0.5,
                             counts, ask_counts)
        assert read(bindings) is compiled(bindings), (source, bindings)


@pytest.mark.parametrize("source", [
    "words", "count.a", "question == true", "!question", "ask.words <= 012", "ask.words <= 1u", "ask.words <= 0x1",
    "ask.words <= -1", "ask.words <= 1.0", "words<=3", "3 >= words", "count.a.b > 1", "count. > 1", "hits.a",
    "has(hits.a)", "'a' in hits", "words + chars > 3", "count.lookup == 0 && ask.question", "question\v",
    "words > 1234567890123456789", "ask.words\u00a0<= 3", "text.size() > 1",
])
def test_what_is_not_read_directly_is_compiled(source: str) -> None:
    from engine.detect.parts import direct_conjunct

    assert direct_conjunct(source) is None


def test_a_guard_that_does_not_hold_decides_without_evaluating() -> None:
    detector = Detector(signals_from_data({"signals": CONDITIONS[:4]}), TIERS, "medium")
    step = next(step for step in detector._steps_plain if step[0] is None)
    assert step[4] is None  # read directly: in use from the first task
    calls = []
    slot = step[1][0]
    real = detector._evaluators[slot]
    detector._evaluators[slot] = lambda bindings: calls.append(1) or real(bindings)
    for _ in range(3):
        assert detector.detect("alpha beta. no question here").hits == (detector.detect("alpha").hits[0],)
    assert calls == []  # not a question: the guard decides, the condition is never evaluated


DIRECT_BINDINGS = {"hits": {"migration": True}, "words": 7, "chars": 30, "question": True,
                   "count": {"breadth": 1, "system": 1, "layer": 0, "team": 0, "reach": 1, "lookup": 0},
                   "ask": {"words": 5, "question": True, "narrowed": False,
                           "count": {"system": 2, "layer": 1, "team": 0}}}


@pytest.mark.parametrize("source", [
    # the default policy's count conditions that a task naming a system reaches
    "ask.count.system + ask.count.layer >= 3", "ask.count.system + ask.count.layer >= 4", "ask.count.team >= 2",
    "count.breadth > 0 && (ask.count.system + ask.count.layer >= 2 || ask.count.team >= 2)",
    "ask.count.system >= 2 && has(hits.migration) && count.lookup == 0", "has(hits.nothing)",
    "count.reach > 0 && count.system == 1 && count.layer == 0 && count.team < 2",
    # an error (a group the bindings lack) where CEL puts it: true || error holds; false || error does not
    "(count.nope > 0 || count.system == 1)", "(count.system == 0 || count.nope > 0)",
    "count.breadth > 0 && (count.nope > 0 || count.system == 1)", "count.nope > 0 && count.system == 1",
    "words + chars + ask.words > 41", "words + chars + ask.words > 42",
])
def test_a_condition_of_counts_and_facts_is_read_as_the_compiled_one_decides(source: str) -> None:
    """direct_condition reads the condition from the bindings with nothing compiled, and holds exactly where
    the compiled condition holds (an error: it does not)."""
    from engine.detect.conditions import compile_condition
    from engine.detect.parts import direct_condition

    read = direct_condition(source)
    assert read is not None, source
    try:
        expected = compile_condition(source).evaluate(DIRECT_BINDINGS) is True
    except Exception:  # noqa: BLE001 - the language's EvaluationError: the condition does not hold
        expected = False
    try:
        found = read(DIRECT_BINDINGS) is True
    except Exception:  # noqa: BLE001 - as the detector treats it
        found = False
    assert found == expected, source


@pytest.mark.parametrize("source", [
    "count.a > 0 || count.b > 0",  # a top-level || is compiled
    "size(hits) > 2", "a+b>=3", "ask.words * 2 <= 8", "count.a > 0 && (count.b > 0 && count.c > 0 || x)",
    "has(hits.a-b)", "count.a >= 1.5", "count.a >= 01",
])
def test_other_conditions_are_compiled(source: str) -> None:
    from engine.detect.parts import direct_condition

    assert direct_condition(source) is None


def test_a_one_shot_process_decides_a_task_naming_a_system_without_the_expression_compiler(monkeypatch) -> None:
    """"Why is the nightly dbt run slow?" names dbt: the default policy's six count conditions on systems,
    layers and teams are reached, and read directly — nothing is compiled (it cost a hook ~14 ms)."""
    import engine.detect.detector as module
    from engine import load_policy

    compiled = []
    real = module.compile_condition
    monkeypatch.setattr(module, "compile_condition", lambda source, *a: compiled.append(source) or real(source, *a))
    fresh = load_policy("default", cache=False).detector
    remembered = fresh.detect("Why is the nightly dbt run slow?")
    assert compiled == []
    reference = load_policy("default", cache=False).detector
    reference._index_conditions(remember=False)
    assert remembered == reference.detect("Why is the nightly dbt run slow?")
