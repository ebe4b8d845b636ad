"""The detector's semantics: scores, ties, boosts, confidence, derived signals, context, hits and spans."""

from __future__ import annotations

import pytest

from engine.detect import Detector
from engine.detect.model import Hit

TIERS = ["simple", "medium", "complex", "multi-system"]


def detector(*signals: dict, default: str = "medium", scale: float = 2) -> Detector:
    return Detector.from_data({"signals": list(signals), "confidence_scale": scale}, TIERS, default)


DIAGNOSIS = {"id": "diagnosis", "words": ["troubleshoot", "root cause"], "weights": {"complex": 3}}
LOOKUP = {"id": "lookup", "pattern": r"^(?:show|list)\b", "weights": {"simple": 3}}
SYSTEMS = [{"id": name, "group": "system", "words": [name]} for name in ("snowflake", "dbt", "tableau")]
MANY = {"id": "many-systems", "when": "count.system >= 3", "weights": {"multi-system": 4}}


def test_nothing_fires_gives_the_default_tier_with_no_confidence() -> None:
    found = detector(DIAGNOSIS).detect("hello")
    assert (found.tier, found.confidence, found.hits, found.boost) == ("medium", 0.0, (), 0)
    assert dict(found.scores) == dict.fromkeys(TIERS, 0.0)


def test_a_policy_without_detection_always_gives_its_default_tier() -> None:
    assert Detector.from_data({}, TIERS, "complex").detect("Troubleshoot anything").tier == "complex"


def test_weights_add_up_and_confidence_grows_with_the_margin() -> None:
    d = detector(DIAGNOSIS, LOOKUP)
    found = d.detect("Show the root cause")
    assert dict(found.scores) == {"simple": 3.0, "medium": 0.0, "complex": 3.0, "multi-system": 0.0}
    assert found.confidence == 0.0  # a tie
    found = d.detect("Troubleshoot the root cause")  # one signal, two of its words: counted once
    assert found.scores["complex"] == 3.0 and found.confidence == round(3 / (3 + 2), 3)
    assert [h.text for h in found.hits] == ["Troubleshoot"]  # the earliest of its words


@pytest.mark.parametrize(("default", "tier"), [
    ("medium", "simple"),  # simple and complex tie, both one step from medium: the smaller wins
    ("complex", "complex"),  # the default itself is among the best
    ("multi-system", "complex"),  # the nearest to the default
])
def test_ties_go_to_the_tier_nearest_the_default(default: str, tier: str) -> None:
    assert detector(DIAGNOSIS, LOOKUP, default=default).detect("show the root cause").tier == tier


@pytest.mark.parametrize(("boost", "tier"), [(1, "multi-system"), (5, "multi-system"), (-1, "medium"),
                                             (-9, "simple")])
def test_boosts_move_the_tier_and_stop_at_the_ends(boost: int, tier: str) -> None:
    urgent = {"id": "urgent", "words": ["urgent"], "boost": boost}
    found = detector(DIAGNOSIS, urgent).detect("urgent: troubleshoot it")
    assert (found.base_tier, found.tier, found.boost) == ("complex", tier, boost)


def test_derived_signals_count_groups_and_see_earlier_derived_ones() -> None:
    follow = {"id": "follows", "when": "'many-systems' in hits && words < 10", "boost": -1}
    d = detector(*SYSTEMS, MANY, follow)
    found = d.detect("Snowflake, dbt and Tableau together")
    assert [h.signal for h in found.hits] == ["snowflake", "dbt", "tableau", "many-systems", "follows"]
    assert (found.base_tier, found.tier) == ("multi-system", "complex")
    assert d.detect("Snowflake and dbt").tier == "medium"


def test_derived_hits_have_no_text_and_no_span() -> None:
    hit = detector(*SYSTEMS, MANY).detect("snowflake dbt tableau").hits[-1]
    assert hit == Hit("many-systems", "multi-system", 4.0, "", None, 0, hit.weights, None)
    assert hit.to_dict() == {"id": "many-systems", "tier": "multi-system", "weight": 4.0, "text": "", "span": None}


@pytest.mark.parametrize(("context", "tier"), [
    (None, "complex"),
    ({}, "complex"),
    ({"agent_count": 1}, "complex"),
    ({"agent_count": 3}, "multi-system"),
    ({"agent_count": "three"}, "complex"),  # a type error: the condition does not hold
])
def test_context_reaches_conditions(context: dict | None, tier: str) -> None:
    agents = {"id": "agents", "when": "has(context.agent_count) && context.agent_count > 1", "boost": 1}
    assert detector(DIAGNOSIS, agents).detect("troubleshoot it", context).tier == tier


def test_previous_tier_and_tier_ranks() -> None:
    follow = {"id": "follow-up", "when": "tiers[context.previous_tier] >= 2 && words <= 4",
              "weights": {"complex": 1}}
    d = detector(follow)
    assert d.detect("and the rest?", {"previous_tier": "multi-system"}).tier == "complex"
    assert d.detect("and the rest?", {"previous_tier": "simple"}).tier == "medium"
    assert d.detect("and the rest?", {"previous_tier": "no-such-tier"}).tier == "medium"


@pytest.mark.parametrize(("when", "fires"), [
    ("question", True), ("words == 3", True), ("chars == 13", True), ("text == 'what is dbt? '", True),
    ("size(text) == 13", True), ("context.missing > 1", False),  # an evaluation error: does not hold
])
def test_bindings(when: str, fires: bool) -> None:
    d = detector({"id": "x", "when": when, "weights": {"simple": 1}})
    assert (d.detect("What is DBT? ").tier == "simple") is fires


def test_hits_carry_original_text_and_spans_for_non_ascii_tasks() -> None:
    d = detector(DIAGNOSIS, {"id": "fi", "words": ["file"], "weights": {"medium": 1}},
                 {"id": "cafe", "pattern": "caf[eé]", "weights": {"medium": 1}})
    text = "Ｔｒｏｕｂｌｅｓｈｏｏｔ the ﬁle at the Café"
    found = d.detect(text)
    assert [(h.signal, h.text, text[h.span[0]:h.span[1]]) for h in found.hits] == [
        ("diagnosis", "Ｔｒｏｕｂｌｅｓｈｏｏｔ", "Ｔｒｏｕｂｌｅｓｈｏｏｔ"), ("fi", "ﬁle", "ﬁle"), ("cafe", "Café", "Café")]


def test_detection_to_dict() -> None:
    found = detector(DIAGNOSIS).detect("troubleshoot")
    assert found.to_dict() == {
        "tier": "complex", "confidence": 0.6, "scores": {"simple": 0.0, "medium": 0.0, "complex": 3.0,
                                                          "multi-system": 0.0},
        "base_tier": "complex", "boost": 0,
        "signals": [{"id": "diagnosis", "tier": "complex", "weight": 3.0, "text": "troubleshoot", "span": [0, 12]}]}


@pytest.mark.parametrize("pattern, matches_a_run", [(r"(a+)+$", True), (r"(a|aa)+$", True), (r"(a*)*b", False),
                                                    (r"^(\w+\s?)*$", True)])
def test_backtracking_traps_give_the_right_answer(pattern: str, matches_a_run: bool) -> None:
    """Patterns that make a backtracking engine run for ages (RE2 answers in linear time; the speed goal is in
    benchmarks/bench_detect.py::test_hostile_input)."""
    d = detector({"id": "evil", "pattern": pattern, "weights": {"complex": 1}}, DIAGNOSIS)
    assert [h.signal for h in d.detect("a" * 10_000 + "!").hits] == []
    assert [h.signal for h in d.detect("a" * 50).hits] == (["evil"] if matches_a_run else [])
    assert d.detect("troubleshoot " + "a" * 10_000 + "!").tier == "complex"


def test_lone_surrogates_and_control_characters_do_not_break_detection() -> None:
    d = detector(DIAGNOSIS, LOOKUP)
    assert d.detect("troubleshoot \ud800 this\x00").tier == "complex"


# -- the detection's lazy parts ---------------------------------------------------------------------------------

def test_hits_are_located_when_first_read_and_equal_a_detection_built_whole() -> None:
    """The tier, confidence and scores come from what fired; the hits and spans are worked out when first
    read, once, and the detection then equals one built with them (and compares, iterates and renders as the
    NamedTuple it replaced)."""
    from engine.detect.model import Detection
    from engine.records import to_dict

    d = detector(DIAGNOSIS, LOOKUP, *SYSTEMS, MANY)
    found = d.detect("Show why: Snowflake, dbt and Tableau root causes")
    assert found._hits is None and found._pending is not None  # nothing located yet
    assert (found.tier, found.base_tier, found.confidence) == ("multi-system", "multi-system", 0.333)
    hits = found.hits
    assert found._pending is None and found.hits is hits  # located once
    assert [(h.signal, h.text, h.span) for h in hits] == [  # policy order, derived signals last
        ("diagnosis", "root causes", (37, 48)), ("lookup", "Show", (0, 4)), ("snowflake", "Snowflake", (10, 19)),
        ("dbt", "dbt", (21, 24)), ("tableau", "Tableau", (29, 36)), ("many-systems", "", None)]
    whole = Detection(found.tier, found.confidence, dict(found.scores), found.base_tier, found.boost, hits, None)
    assert found == whole and whole == found and found != d.detect("troubleshoot")
    assert tuple(found) == (found.tier, found.confidence, found.scores, found.base_tier, found.boost, hits, None)
    assert to_dict(found) == found.to_dict() == whole.to_dict()
    assert list(found.to_dict()) == ["tier", "confidence", "scores", "base_tier", "boost", "signals"]
    assert repr(found).startswith("Detection(tier='multi-system', confidence=0.333, scores=")


def test_a_detection_is_read_only() -> None:
    found = detector(DIAGNOSIS).detect("troubleshoot")
    for name in ("tier", "confidence", "scores", "base_tier", "boost", "hits", "ask"):
        with pytest.raises(AttributeError):
            setattr(found, name, None)
    with pytest.raises(TypeError):
        found.scores["complex"] = 0.0  # type: ignore[index]
    with pytest.raises(TypeError):
        hash(found)


def test_every_entry_that_fires_is_located(default_policy) -> None:
    """Scores count a signal when its entry fires, before any span is located: that is right only because
    every entry the matcher says fired is found by its locator (the same boundary and separator rules)."""
    from test_detect_equivalence import _labelled
    from test_detect_words import EDGES, generated

    matcher_detector = default_policy.detector
    fired_entries = 0
    for text in _labelled() + generated(default_policy) + EDGES:
        found = matcher_detector.detect(text)
        pending = found._pending
        if pending is None:  # an ask narrower than the task: located as it was detected
            continue
        _, _, norm, folded, data, fired, _ = pending
        for i in fired:
            assert matcher_detector._locate(i)(folded, data) is not None, (text, i)
            fired_entries += 1
    assert fired_entries > 5000


def test_signal_ids_without_locating_equal_the_ids_of_the_hits(default_policy) -> None:
    """What a usage record's provenance needs (`Policy.pack`, the hook): the ids of the signals that fired, in
    hit order, worked out without locating a span — and the same as reading the hits."""
    from test_detect_equivalence import _labelled
    from test_detect_words import EDGES, generated

    compared = 0
    for text in _labelled() + generated(default_policy) + EDGES:
        found = default_policy.detect(text)
        ids = found.signal_ids
        assert found._hits is None or found._pending is None  # reading the ids located nothing
        assert ids == tuple(dict.fromkeys(h.signal for h in found.hits)), text
        compared += bool(ids)
    assert compared > 500


def test_the_earliest_match_of_a_signal_is_kept_in_non_ascii_text() -> None:
    """Three words of one signal, matched in the policy's word order but found in the reverse order in a task
    whose folding moves offsets ("ß" folds to "ss"): the hit is the earliest match, with its span in the
    original text. (An earlier version compared a folded offset with an original one after the second word.)"""
    d = detector({"id": "greek", "words": ["alpha", "beta", "gamma"], "weights": {"complex": 1}})
    text = "ß" * 20 + " gamma beta alpha"
    (hit,) = d.detect(text).hits
    assert (hit.text, hit.span) == ("gamma", (21, 26))
