"""The word index (engine/detect/words.py) and the conditions decided without evaluation when none of their
inputs fired (engine/detect/plan.py's quiet_inputs) change no result. The word index screens literals exactly
as one RE2 set of their patterns does: the same entries fire, and every detection — tier, confidence, scores,
hits and their spans — is identical, on the dev set, the golden examples, a 2,000-task generated corpus and
hand-made edge cases."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from engine import load_policy
from engine.policy import load_data
from engine.detect import Detector
from engine.detect.literals import entry_forms, forms_pattern, literal_forms
from engine.detect.matcher import Matcher
from engine.detect.normalize import normalize
from engine.detect.plan import plan_detection, signals_from_data
from engine.detect.words import WordIndex, gate_literal

SHARED = [Path(__file__).resolve().parents[2] / "shared" / "data", Path("/work/shared/data")]
EDGES = [
    "", " ", "-", "end-to-end", "end to end", "end\u2014to\u2014end", "end\u2010to\u2010end", "end -- to  end",
    "end, to end", "root causes", "root-cause", "rootcause", "root_cause", "Root   CAUSE!", "queries,queried",
    "querying_x", "x_querying", "2queries", "queries2", "caf\u00e9 queries", "quer\u00e9ies", "c++ and c#",
    "fp&a team", "don't match", "doesn't matching", "what's going on", "can't happen agains", "before/after",
    "Can you fix dbt? I need Snowflake and Tableau. ignore the Airflow part; all three", "\ufb01le queries",
    "ＱＵＥＲＩＥＳ", "dbt\nsnowflake\r\ntableau\tairflow", "a" * 300, "pipelines pipeline piping",
]


def _tasks() -> list[str]:
    texts = []
    for folder in SHARED:
        for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else ():
            texts += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line]
        if texts:
            break
    return texts


def generated(policy, count: int = 2000, seed: int = 7) -> list[str]:
    """Tasks of policy words and phrases (inflected, re-cased, glued with separators, punctuation and
    letters that break or keep word boundaries) and filler."""
    rng = random.Random(seed)
    plan = policy.artifacts["detection"]
    pieces = []
    for item in plan["entries"]:
        forms = entry_forms(item)
        if forms is not None and not forms[0]:  # a word: all its forms
            pieces += forms[1]
        elif forms is not None:  # a phrase: its leading words and one form of its last
            pieces.append(" ".join(forms[0] + [rng.choice(forms[1])]))
    filler = ("the a of to and in for on with from by at data run job table model query report team why how "
              "can you i need ignore all three what each?").split()
    glue = [" ", " ", " ", "  ", "-", "\u2014", "\u2013", "\u2010", ", ", ". ", "; ", ": ", "\n", "_", "/", "'",
            "", "é", "2", "? ", "! ", " -> ", "\t"]
    texts = []
    for _ in range(count):
        words = []
        for _ in range(rng.randint(1, 40)):
            word = rng.choice(pieces) if rng.random() < 0.4 else rng.choice(filler)
            if rng.random() < 0.1:
                word = word.upper() if rng.random() < 0.5 else word.title()
            if rng.random() < 0.05:
                word = word.replace(" ", rng.choice(["-", "  ", "\u2011", "_"]))
            words.append(word)
            words.append(rng.choice(glue))
        texts.append("".join(words))
    return texts


@pytest.fixture(scope="module")
def policy():
    return load_policy("default", cache=False)


def _baseline(detector: Detector) -> Detector:
    """The same detector screening with one RE2 set of every pattern (as before the word index) and evaluating
    every condition (as before conditions were decided when none of their inputs fired)."""
    twin = Detector(detector.signals, detector.tiers, detector.default_tier, detector.confidence_scale)
    object.__setattr__(twin, "calibration", detector.calibration)
    twin.ask_rules = detector.ask_rules
    matcher = detector._matcher
    twin._matcher = Matcher(matcher.patterns, matcher.entries, words=False)
    twin._derived = tuple((i, evaluate, None) for i, evaluate, _ in twin._derived)
    twin._derived_plain = tuple((i, evaluate, None) for i, evaluate, _ in twin._derived_plain)
    twin._index_conditions(remember=False)
    assert all(step[0] is None and step[2] is None for step in twin._steps)  # nothing remembered, no guards
    assert any(quiet for _, _, quiet in detector._derived)
    return twin


def _folded(text: str) -> bytes:
    return (text.lower() if text.isascii() else normalize(text).text).encode("utf-8", "surrogatepass")


def test_the_index_covers_most_of_the_default_policy(policy) -> None:
    matcher = policy.detector._matcher
    plan = policy.artifacts["detection"]
    assert len(matcher.index.covered) >= 0.9 * len([e for e in plan["entries"] if e[1] != "regex"])
    assert not any(plan["entries"][i][1] == "regex" for i in matcher.index.covered)


@pytest.mark.parametrize("source", ["dev set", "golden examples", "generated", "edges"])
def test_same_entries_fire_and_same_detections(policy, source: str) -> None:
    if source == "dev set":
        texts = _tasks()
        if not texts:
            pytest.skip("the labelled dev set is not beside the repository (../shared/data)")
    elif source == "golden examples":
        texts = [e.task for e in policy.task_examples]
    elif source == "generated":
        texts = generated(policy)
    else:
        texts = EDGES
    assert texts
    detector = policy.detector
    matcher = detector._matcher
    sets = Matcher(matcher.patterns, matcher.entries, words=False)
    twin = _baseline(detector)
    fired_any = 0
    for text in texts:
        data = _folded(text)
        ours, theirs = sorted(matcher.fired(data)), sorted(sets.fired(data))
        assert ours == theirs, text
        fired_any += bool(ours)
        context = {"repo": "x"} if len(text) % 3 == 0 else None
        assert detector.detect(text, context) == twin.detect(text, context), text
    assert fired_any >= len(texts) // 2 or source == "edges"


def test_a_generated_policy_of_odd_literals_screens_the_same() -> None:
    """Literals at the edges of what the index takes: one letter, digits, underscores, uninflected, phrases of
    one-letter words, punctuation and non-ASCII (left to RE2)."""
    items = [
        {"id": "a", "words": ["x", "a b", "q_1", "2fa", "e2e"], "weights": {"complex": 1}},
        {"id": "b", "words": ["plan", "stop", "go", "apply"], "weights": {"simple": 1}},
        {"id": "c", "words": ["step by step", "c++", "ci/cd", "café"], "inflect": False, "weights": {"medium": 1}},
        {"id": "d", "pattern": r"\bplan\w*", "weights": {"medium": 1}},
        # gated patterns (see gate_literal): compiled and run only when a word starts with their literal
        {"id": "f", "pattern": [r"\bstop(?:ped|ping)?\s+go\b", r"\bappl(?:y|ies)\b", r"\bcaf[ée]\b",
                                r"\bstep\W+by", r"\bgoe?s?\b", r"\bplans?[-_]", r"\b2fa\d*"], "weights": {"simple": 1}},
        {"id": "e", "words": ["end-to-end", "Re-Run"], "weights": {"complex": 2}, "group": "g"},
    ]
    tiers = ["simple", "medium", "complex", "multi-system"]
    detector = Detector(signals_from_data({"signals": items}), tiers, "medium")
    plan = plan_detection(detector.signals)
    sets = Matcher(plan["patterns"], detector._matcher.entries, plan["entries"], words=False)
    assert len(detector._matcher.index.gated) == 7  # d and all of f but `\bgoe?s?\b` (its literal: "go")
    rng = random.Random(5)
    vocabulary = ["x", "a", "b", "q_1", "2fa", "e2e", "planned", "planning", "plans", "stopped", "goes", "applies",
                  "applied", "step", "by", "c++", "c", "ci/cd", "café", "cafe", "end", "to", "re", "run", "reruns",
                  "xx", "_x", "x_"]
    glue = [" ", "-", "--", " - ", "_", ".", "/", "é", "", "\u2014", "+", "\n"]
    for _ in range(2000):
        text = "".join(rng.choice(vocabulary) + rng.choice(glue) for _ in range(rng.randint(1, 12)))
        data = _folded(text)
        assert sorted(detector._matcher.fired(data)) == sorted(sets.fired(data)), text


def test_the_index_is_plain_data() -> None:
    index = WordIndex([[0, "literal", "Query"], [1, "literal", "root cause"], [2, "literal", "c++"], [3, "regex", "x"]])
    assert index.covered == {0, 1}
    assert sorted(index.fired(b"root - causes of queries")) == [0, 1]
    assert index.fired(b"root/cause") == [] and index.fired(b"rootcause queriesx") == []


@pytest.mark.parametrize("source, expected", [
    ("ask.count.system + ask.count.layer >= 3", (["layer", "system"], [])),
    ("count.breadth > 0 && (ask.count.system >= 2 || count.team >= 2)", (["breadth", "system", "team"], [])),
    ("ask.count.system >= 2 && has(hits.migration) && count.lookup == 0", (["lookup", "system"], ["migration"])),
    ("'a-b' in hits || count.a >= 1.5", (["a"], ["a-b"])),
    ("count.lookup == 0 && ask.question", None), ("has(context.n) && context.n > 1", None),
    ("count.a.b > 1", None), ("size(count.a) > 1", None), ("count['a'] > 0", None), ("count.a.size() > 0", None),
    ("true", None), ("words <= 8 && count.a == 0", None), ("count.a > 0 && text.contains('x')", None),
])
def test_quiet_inputs(source: str, expected) -> None:
    from engine.detect.plan import quiet_inputs

    assert quiet_inputs(source) == expected


def test_a_task_without_hits_compiles_only_the_conditions_it_must_evaluate(policy, monkeypatch) -> None:
    import engine.detect.detector as module

    compiled = []
    real = module.compile_condition
    monkeypatch.setattr(module, "compile_condition", lambda source, *a: compiled.append(source) or real(source, *a))
    detector = Detector.from_data(load_data("default")["detection"], [t.id for t in policy.tiers], policy.default_tier,
                                  plan=policy.artifacts["detection"])
    assert compiled == []
    for text in ("zzz qqq", "zzz qqq?"):  # the one condition that is not quiet is decided by guards read directly
        detector.detect(text)
    assert compiled == []
    detector.detect("zzz qqq", {"previous_tier": "complex"})  # with a context, the context's conditions are evaluated
    assert compiled == [s.when for s in detector.signals if s.when and "has(context." in s.when]


def test_quiet_conditions_that_hold_without_hits_give_the_same_detections() -> None:
    items = [
        {"id": "x", "words": ["alpha", "beta gamma"], "weights": {"complex": 1}, "group": "a"},
        {"id": "y", "words": ["delta"], "weights": {"simple": 1}, "group": "b"},
        {"id": "none-of-a", "when": "count.a == 0", "weights": {"simple": 1}, "group": "b"},
        {"id": "not-x", "when": "!has(hits.x) && count.b < 2", "weights": {"medium": 2}},
        {"id": "chain", "when": "'none-of-a' in hits || count.a >= 1", "boost": 1},
        {"id": "ask-b", "when": "ask.count.b >= 2", "weights": {"multi-system": 1}},
    ]
    tiers = ["simple", "medium", "complex", "multi-system"]
    detector = Detector(signals_from_data({"signals": items}), tiers, "medium")
    assert all(quiet for _, _, quiet in detector._derived)
    twin = _baseline(detector)
    rng = random.Random(11)
    vocabulary = ["alpha", "beta", "gamma", "delta", "can you", "ignore", "the", "?", ".", "-"]
    for _ in range(500):
        text = " ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 10)))
        assert detector.detect(text) == twin.detect(text), text


def test_after_many_texts_the_matcher_switches_to_one_set_and_answers_the_same(policy, monkeypatch) -> None:
    import engine.detect.matcher as module

    monkeypatch.setattr(module, "SWITCH_AFTER", 5)
    matcher = policy.detector._matcher
    fresh = Matcher(matcher.patterns, matcher.entries, policy.artifacts["detection"]["entries"])
    sets = Matcher(matcher.patterns, matcher.entries, words=False)
    compiled = []
    real = module._lazy_set
    monkeypatch.setattr(module, "_lazy_set", lambda patterns: compiled.append(len(patterns)) or real(patterns))
    texts = [e.task for e in policy.task_examples] * 2
    assert len(texts) > 10
    for text in texts:
        data = _folded(text)
        assert sorted(fresh.fired(data)) == sorted(sets.fired(data)), text
    assert compiled == [len(matcher.patterns)]  # the whole set, once, after five texts
    assert not isinstance(fresh.fired, type(_folded))  # then the set's own Match: no Python frame in between


def test_remembered_conditions_stay_bounded_and_answer_the_same(policy, monkeypatch) -> None:
    """Conditions that read only counts and hits are remembered per the values they read (and confidences per
    margin): with room for only two values each, the rest are evaluated, and every detection is the same as
    the reference's, which evaluates every condition every time."""
    import engine.detect.detector as module

    monkeypatch.setattr(module, "_MEMO_MAX", 2 + 2)  # the two seeded values and two more
    monkeypatch.setattr(module, "_GUARDS_AFTER", 3)  # guards in use after three evaluations
    detector = Detector.from_data(load_data("default")["detection"], [t.id for t in policy.tiers], policy.default_tier,
                                  plan=policy.artifacts["detection"])
    twin = _baseline(detector)
    texts = generated(policy, count=400, seed=3) + [e.task for e in policy.task_examples]
    for i, text in enumerate(texts):
        context = {"agent_count": 2, "previous_tier": "complex"} if i % 5 == 0 else None
        assert detector.detect(text, context) == twin.detect(text, context), text
    runs = [step[0] for step in detector._steps + detector._steps_plain if step[0] is not None]
    guards = [guard[0] for step in detector._steps + detector._steps_plain if step[0] is None and step[2]
              for guard in step[2]]
    assert runs and guards
    assert all(len(memo) <= 4 for memo in runs + guards)
    assert any(len(memo) > 2 for memo in runs)  # values other than "nothing fired" were remembered
    assert any(memo for memo in guards)  # the guards were used
    assert len(detector._decisions) <= 4
    assert 0 < len(detector._derivations) <= 4  # whole derivations, remembered (see the next test)


def test_a_derivation_decided_by_counts_signals_and_cheap_facts_is_remembered_whole(policy, monkeypatch) -> None:
    """Tasks whose counts, signals read by conditions and final question mark are the same derive the same
    signals: only the first is evaluated step by step. One whose conditions read its word count (a fact that is
    not part of the key) is evaluated every time. Each gives what the reference gives."""
    detector = Detector.from_data(load_data("default")["detection"], [t.id for t in policy.tiers], policy.default_tier,
                                  plan=policy.artifacts["detection"])
    twin = _baseline(detector)
    calls = []
    real = Detector._derive
    monkeypatch.setattr(Detector, "_derive", lambda self, *a: calls.append(self) or real(self, *a))

    def evaluated(text: str) -> bool:
        calls.clear()
        assert detector.detect(text) == twin.detect(text), text
        return detector in calls

    slow = "Troubleshoot why the nightly dbt run got slow; compare Snowflake and Tableau timings."
    assert evaluated(slow)
    assert not evaluated("Debug why the weekly dbt job got slower; compare Snowflake and Tableau numbers.")
    assert "three-systems" in {h.signal for h in detector.detect(slow).hits}
    assert evaluated(slow[:-1] + "?")  # `ask.question` is part of the key (and then `ask.words` is read)
    # `plain-ask` reads `words <= 12` once its count guards hold: such a derivation is never remembered whole
    short = "How do I run one dbt model?"
    long = ("How do I run one dbt model from the command line when the project has many packages installed and I "
            "only want that one model and nothing else to build?")
    for text in (short, long, short, long):
        assert evaluated(text), text
    assert "plain-ask" in {h.signal for h in detector.detect(short).hits}
    assert "plain-ask" not in {h.signal for h in detector.detect(long).hits}


def test_spans_are_those_of_finditer() -> None:
    """The ask rules' RE2 searches read spans straight from the extension: the same as finditer's, empty
    matches and all."""
    import re2

    from engine.detect.ask import _spans
    from engine.detect.matcher import options

    rng = random.Random(4)
    patterns = [r"\bcan\s+you\b", r"x*", r"(?:a|ab)", r"\b", r"ignore[^.;]*", r"$", r"é+"]
    for pattern in patterns:
        regex = re2.compile(pattern.encode("utf-8"), options())
        for _ in range(200):
            text = "".join(rng.choice(["can you ", "x", "ab", "a", "ignore it", ".", ";", " ", "é", ""])
                           for _ in range(rng.randint(0, 12)))
            data = text.encode("utf-8")
            assert list(_spans(regex, data)) == [m.span() for m in regex.finditer(data)], (pattern, text)


@pytest.mark.parametrize("pattern, literal", [
    (r"\bversus\b", "versus"), (r"\boptions?\b", "option"), (r"\bshould (?:we|i)\b", "should"),
    (r"\babcd?e", "abc"), (r"\bfooo{2}", "foo"), (r"\bfoo(bar|baz)qux", "foo"), (r"\bfoo[|]bar", "foo"),
    (r"\bfoo\|bar", "foo"), (r"\bfoo[]|]", "foo"), (r"\bfoo[^]|]x", "foo"), (r"\bq_1\d", "q_1"),
    (r"\babc|d", None), (r"\bfoo)|(bar", None), (r"\b(?:a|b)c", None), (r"\bab", None), (r"\bab?c", None),
    (r"foo\b", None), (r"\Bfoo", None), (r"(?i:\bfoo)", None), (r"\bFoo", None), (r"\bfoo[[:alpha:]]|x", None),
    (r"\bfoo\Q|\E", None), (r"\b\w+foo", None),
])
def test_a_pattern_is_gated_by_a_literal_only_when_every_match_starts_a_word_with_it(pattern, literal) -> None:
    assert gate_literal(pattern) == literal


@pytest.mark.parametrize("pattern, literals", [
    (r"\bversus\b", ("versus",)),
    (r"\b(?:across|spanning|between)\b[^.;:?!]{0,40},", ("across", "spanning", "between")),
    (r"\b(?:owners?|teams?)\s+(?:of|for)", ("owner", "team")), (r"\b(?:abc|def)(x|y)", ("abc", "def")),
    (r"\b(?:abc|defg(?:h|i))z", ("abc", "defg")), (r"\b(?:ab[|]c|def)", None),
    (r"\b(?:in half|by x)", None), (r"\b(?:abc|def)?x", None), (r"\b(?:abc|def)*x", None), (r"\b(?:abc|def)x|y", None),
    (r"\b(?:abc|de)", None), (r"\b(?:abc|d[e|]f)", None), (r"\b(?:abc|def", None), (r"\b(?:abc|def)x)|(y", None),
    (r"\b(?:abc|d(?:ef|gh))", None), (r"\b(?:abc|)", None), (r"\b(?:Abc|def)", None), (r"(?:abc|def)", None),
    (r"\b(?:abc|\Qdef\E)", None), (r"\b(?:abc|[[:alpha:]]ef)", None),
])
def test_a_pattern_starting_with_alternatives_is_gated_by_each_alternative_s_literal(pattern, literals) -> None:
    """Every match starts a word with one of the alternatives' literals (then the text is a candidate)."""
    from engine.detect.words import gate_literals

    assert gate_literals(pattern) == literals


def test_patterns_gated_by_alternatives_screen_the_same() -> None:
    """A pattern gated by several literals fires on exactly the texts one RE2 set of everything says it does."""
    items = [{"id": "a", "pattern": [r"\b(?:across|spanning|between)\b[^.;:?!]{0,40},[^.;:?!]{0,60}\b(?:and|or)\b",
                                     r"\b(?:owners?|teams?)\s+(?:of|for)\b", r"\b(?:all|every|each)\s+(?:the\s+)?tables?"],
              "weights": {"complex": 1}},
             {"id": "b", "words": ["table", "across"], "weights": {"simple": 1}}]
    tiers = ["simple", "medium", "complex", "multi-system"]
    detector = Detector(signals_from_data({"signals": items}), tiers, "medium")
    plan = plan_detection(detector.signals)
    assert len(detector._matcher.index.gated) == 3
    sets = Matcher(plan["patterns"], detector._matcher.entries, plan["entries"], words=False)
    rng = random.Random(6)
    vocabulary = ["across", "acrossing", "spanning", "between", "owner", "owners", "teams", "team", "of", "for", "all",
                  "every", "each", "the", "tables", "table", "and", "or", "x", ",", ".", "_all", "all_", "é", "2team"]
    glue = [" ", "-", ", ", ".", "", "\n", "é"]
    for _ in range(2000):
        text = "".join(rng.choice(vocabulary) + rng.choice(glue) for _ in range(rng.randint(1, 10)))
        data = text.encode("utf-8")
        assert sorted(detector._matcher.fired(data)) == sorted(sets.fired(data)), text


def test_gated_patterns_are_compiled_only_for_a_text_that_could_match(monkeypatch) -> None:
    import engine.detect.matcher as module

    compiled = []
    real = module._spans_function
    monkeypatch.setattr(module, "_spans_function", lambda pattern: compiled.append(pattern) or real(pattern))
    items = [{"id": f"p{i}", "pattern": rf"\bw{i}x(?:ing|ed)?\s+o{i}x\b", "weights": {"simple": 1}}
             for i in range(50)] + [{"id": "w", "words": ["plain"], "weights": {"medium": 1}}]
    detector = Detector(signals_from_data({"signals": items}), ["simple", "medium"], "medium")
    assert len(detector._matcher.index.gated) == 50
    found = detector.detect("plain words: w1x and o7x, w22xing o22x, xw3x")
    assert [h.signal for h in found.hits] == ["p22", "w"]
    # w1x and w22x were candidates (a word starts with their literal); w22x matched and was then located
    assert sorted(compiled) == [r"\bw1x(?:ing|ed)?\s+o1x\b"] + [r"\bw22x(?:ing|ed)?\s+o22x\b"] * 2


def test_a_policy_of_words_and_gated_patterns_also_switches_to_one_set(monkeypatch) -> None:
    """Nothing left for the start's RE2 set (every literal indexed, every pattern gated): the matcher still
    switches to one set of everything after SWITCH_AFTER texts, and answers the same."""
    import engine.detect.matcher as module

    monkeypatch.setattr(module, "SWITCH_AFTER", 3)
    items = [{"id": "p", "pattern": [r"\bstop(?:ped)?\s+go\b", r"\bappl(?:y|ies)\b"], "weights": {"simple": 1}},
             {"id": "w", "words": ["plan", "root cause"], "weights": {"medium": 1}}]
    detector = Detector(signals_from_data({"signals": items}), ["simple", "medium"], "medium")
    matcher = detector._matcher
    assert matcher.index.gated == {0, 1} and matcher.index.covered == {2, 3}
    texts = ["stopped go", "applies the plan", "root causes", "nothing", "stop  go, apply", "planning"]
    expected = [sorted(Matcher(matcher.patterns, matcher.entries, words=False).fired(_folded(t))) for t in texts]
    assert [sorted(matcher.fired(_folded(t))) for t in texts] == expected
    fired = matcher.fired  # the set's own Match: neither a Python function nor the index's method
    assert not isinstance(fired, type(_folded)) and getattr(fired, "__self__", None) is not matcher.index


def test_the_ask_rules_lists_are_screened_by_the_word_index_as_by_their_alternations() -> None:
    """The ask rules' entries (one alternation of literals per list): the literals of word characters are found
    by a word index, the others by the alternation of just them in the set (none for a list of plain words);
    which entries fire is what one RE2 set of the full alternations says."""
    from engine.detect.ask import AskRules
    from engine.detect.matcher import _split_alternations

    rules = AskRules(markers=("can you", "all i'm asking", "tl;dr", "i need"), asides=("ignore", "don't worry about"),
                     references=("all three", "each one"))
    alternations = [(1 + i, literals) for i, literals in enumerate(rules.lists) if literals]
    narrowed, _ = _split_alternations(alternations)
    assert narrowed[3] == ""  # the references are all words: nothing of them goes to the set
    assert "can" not in narrowed[1] and "tl" in narrowed[1]
    items = [[0, "literal", "alpha"]]
    patterns = [forms_pattern(*literal_forms("alpha"))] + list(rules.patterns)
    matcher = Matcher(patterns, None, items, alternations=alternations)
    reference = Matcher(patterns, None, items, words=False)
    rng = random.Random(7)
    vocabulary = ["can", "you", "can you", "all", "i'm", "asking", "tl;dr", "tl", "dr", "i", "need", "ignore",
                  "ignored", "don't", "worry", "about", "three", "each", "one", "alpha", "é", "x"]
    glue = [" ", "-", ". ", ";", "", "\n", "\u2014", "'", "\u2010"]
    for _ in range(250):  # below SWITCH_AFTER: the word index in use
        text = "".join(rng.choice(vocabulary) + rng.choice(glue) for _ in range(rng.randint(1, 10)))
        data = text.encode("utf-8")
        fired = matcher.fired(data)
        assert len(fired) == len(set(fired)) and sorted(fired) == sorted(reference.fired(data)), text
