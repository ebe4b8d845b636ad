"""The ask apart from its context: how it is found, `in: ask` signals, `ask.*` in conditions, the runner-up."""

from __future__ import annotations

import math
import re

import pytest

from engine.detect import Detector
from engine.detect.ask import AskRules
from engine.detect.plan import signals_from_data

TIERS = ["simple", "medium", "complex", "multi-system"]
RULES = AskRules()


def ask_of(text: str):
    folded = text.lower()
    data = folded.encode("utf-8")
    return RULES.find(folded, data, True, True, True, True)


@pytest.mark.parametrize(("task", "ask"), [
    # a marker starts the ask; the last one counts
    ("We argued about the lineage from Fivetran through dbt into Tableau for weeks, but right now all I need is "
     "the warehouse name.", "all i need is the warehouse name."),
    ("Can you look at this? Long thread about Kafka and Airflow. Anyway, which topic has the orders?",
     "which topic has the orders?"),  # a wh-question right after the marker starts the ask
    # a colon just after the marker introduces the ask itself
    ("Lots going on with the warehouse consolidation, but before any of that: what's the SSO ticket number?",
     "what's the sso ticket number?"),
    # punctuation right after the marker closes it: the ask starts after it
    ("Long thread about Kafka and Airflow. Anyway. Is the orders topic still compacted?",
     "is the orders topic still compacted?"),
    ("We argued about naming for weeks. Long story short \u2014 rename stg_orders to stg_shop__orders",
     "rename stg_orders to stg_shop__orders"),
    # a final question after other sentences
    ("hi! hope the offsite was fun. What's the deadline on the SOC2 ticket?", "what's the deadline on the soc2 ticket?"),
])
def test_the_ask_is_found(task: str, ask: str) -> None:
    found = ask_of(task)
    assert found.narrowed and found.text.strip() == ask
    assert len(found.text) == len(task) and found.text[found.start:].strip() == ask  # offsets are the task's


@pytest.mark.parametrize("task", [
    "can you list the tables in the marts schema",  # the marker opens the task
    "hey, can you list the tables?",  # only a greeting before it
    "the flow succeeded but the table is empty. what gives?",  # a short question refers back to the story
    "Which dbt models spill to remote storage, why, and should we fix it?",  # one sentence
    "Marketing wants it in HubSpot, finance in the board pack. Can you work out how it gets to all three?",  # refers back
    "Trace the orders data end to end and find where the totals diverge",
])
def test_the_whole_task_asks(task: str) -> None:
    assert not ask_of(task).narrowed


def test_an_aside_is_cut_out_of_the_ask() -> None:
    task = "Ignore the bits about Snowflake, dbt and Tableau in the thread below — I only want to know: who signed?"
    found = ask_of(task)
    assert found.text.strip() == "who signed?"
    task = "Add descriptions to fct_invoices; ignore the Tableau side. Then run the tests."
    found = ask_of(task)
    assert "tableau" not in found.text and "add descriptions" in found.text and "run the tests" in found.text


def test_a_closing_pleasantry_is_cut_out_of_the_ask() -> None:
    found = ask_of("Could you check whether the masking policy is attached to customers.email? Thanks!!")
    assert found.text.split() == ["could", "you", "check", "whether", "the", "masking", "policy", "is", "attached",
                                  "to", "customers.email?", "!!"]
    found = ask_of("Kindly provide the warehouse of the prod profile. Regards, Anil")
    assert "anil" not in found.text and "regards" not in found.text and "warehouse" in found.text


def test_non_ascii_offsets_are_characters() -> None:
    task = "Café notes — ünïcode everywhere, but all I need is the row count?"
    folded = task.lower()
    found = RULES.find(folded, folded.encode("utf-8"), True, False)
    assert found.narrowed and folded[found.start:] == "all i need is the row count?"


# -- signals and conditions ---------------------------------------------------------------------------------

SIGNALS = [
    {"id": "snowflake", "group": "system", "words": ["snowflake"]},
    {"id": "dbt", "group": "system", "words": ["dbt"]},
    {"id": "tableau", "group": "system", "words": ["tableau"]},
    {"id": "lookup", "in": "ask", "pattern": r"^\W*(?:what|which|who)\b[^.!?]*\?\W*$", "weights": {"simple": 4}},
    {"id": "owner", "in": "ask", "words": ["owner"], "group": "breadth"},
    {"id": "three-systems", "when": "ask.count.system >= 3", "weights": {"multi-system": 5}},
    {"id": "broad-owner", "when": "count.breadth > 0 && ask.count.system >= 2", "weights": {"multi-system": 2}},
    {"id": "narrow", "when": "ask.narrowed && ask.words < 10 && ask.question"},
    {"id": "everywhere", "when": "count.system >= 3", "weights": {"complex": 0.5}},
]


@pytest.fixture(scope="module")
def detector() -> Detector:
    return Detector(signals_from_data({"signals": SIGNALS}), TIERS, "medium")


def test_systems_in_background_do_not_count_in_the_ask(detector: Detector) -> None:
    task = ("We keep discussing the Snowflake → dbt → Tableau chain and the roadmap, but all I need is this: "
            "which warehouse do the extracts use?")
    found = detector.detect(task)
    fired = {h.signal for h in found.hits}
    assert found.tier == "simple" and "three-systems" not in fired
    assert {"lookup", "narrow", "everywhere"} <= fired  # count still sees all three; ask.count does not
    lookup = next(h for h in found.hits if h.signal == "lookup")
    assert task[lookup.span[0]:lookup.span[1]] == lookup.text and lookup.text.startswith("which warehouse")
    assert found.ask is not None and task[found.ask[0]:].startswith("which warehouse")


def test_the_same_systems_in_the_ask_count(detector: Detector) -> None:
    found = detector.detect("Trace the revenue from Snowflake through dbt to Tableau")
    assert found.tier == "multi-system" and found.ask is None
    assert "three-systems" in {h.signal for h in found.hits}


def test_an_aside_hides_its_systems(detector: Detector) -> None:
    task = "Ignore what the thread says about Snowflake, dbt and Tableau — who is the owner of the extract?"
    fired = {h.signal for h in detector.detect(task).hits}
    assert "three-systems" not in fired and "lookup" in fired


def test_breadth_words_count_only_in_a_broad_ask(detector: Detector) -> None:
    one = {h.signal for h in detector.detect("Add an owner to the dbt models that lack one").hits}
    two = {h.signal for h in detector.detect("Agree the owner of each dbt model and Tableau workbook").hits}
    assert "owner" in one and "broad-owner" not in one
    assert "broad-owner" in two


def test_an_ask_scoped_signal_outside_the_ask_does_not_fire(detector: Detector) -> None:
    task = "Who owns this was my first question. Never mind: can you rebuild the tiles please."
    assert "lookup" not in {h.signal for h in detector.detect(task).hits}


def test_a_policy_without_ask_signals_does_not_look_for_the_ask() -> None:
    plain = Detector(signals_from_data({"signals": SIGNALS[:3]}), TIERS, "medium")
    assert plain.ask_rules is None and plain.detect("x, but all I need is y?").ask is None


def test_the_ask_lists_come_from_the_policy() -> None:
    signals = signals_from_data({"signals": SIGNALS})
    custom = Detector(signals, TIERS, "medium", ask={"markers": ["my question is"], "asides": [], "references": []})
    task = "Snowflake, dbt and Tableau all changed. My question is who approved it?"
    assert custom.detect(task).tier == "simple"
    default = Detector(signals, TIERS, "medium")
    assert default.detect("We use Snowflake, dbt and Tableau; all I need: who approved it?").tier == "simple"
    assert custom.detect("We use Snowflake, dbt and Tableau; all I need: who approved it").tier == "multi-system"


@pytest.mark.parametrize(("scores", "tier", "runner_up"), [
    ({"simple": 0, "medium": 2, "complex": 1.5, "multi-system": 0}, "medium", "complex"),
    ({"simple": 1, "medium": 3, "complex": 1, "multi-system": 0}, "medium", "simple"),  # tie: nearest, smaller
    ({"simple": 0, "medium": 0, "complex": 0, "multi-system": 4}, "multi-system", "complex"),
])
def test_the_runner_up_is_the_best_other_tier(scores: dict, tier: str, runner_up: str) -> None:
    from engine.detect.model import Detection

    assert Detection(tier, 0.5, scores, base_tier=tier).runner_up == runner_up


def test_default_policy_reads_the_ask(default_policy) -> None:
    preamble = ("Hi team, hope everyone had a good weekend! I know the roadmap review is Thursday and there's a lot "
                "going on with the warehouse consolidation and the new BI rollout, but before any of that: what's "
                "the ticket number for the SSO bug?")
    assert default_policy.detect(preamble).tier == "simple"
    aside = ("Ignore the bits about Snowflake, dbt and Tableau in the thread below — I only want to know: what date "
             "did we sign the Fivetran contract?")
    assert default_policy.detect(aside).tier == "simple"


def test_explain_shows_the_ask_and_the_calibration(run_cli) -> None:
    task = "Hi team! Long week with the Snowflake, dbt and Tableau migration. Anyway, what's the ticket for the SSO bug?"
    code, out, _ = run_cli("detect", task, "--explain")
    assert code == 0
    assert "the ask (the rest is context): \"what's the ticket for the SSO bug?\"" in out
    assert "best score: simple" in out and "(calibrated)" in out
    # the line shows the calibration's own numbers, and they give the confidence shown
    line = next(line for line in out.splitlines() if line.startswith("confidence "))
    found = re.fullmatch(r"confidence (\S+) = 1 / \(1 \+ exp\(-\((\S+) × margin (\S+) \+ (\S+)\)\)\) \(calibrated\)", line)
    assert found, line
    shown, slope, margin, intercept = map(float, found.groups())
    assert float(margin) > 2 and abs(1 / (1 + math.exp(-(slope * margin + intercept))) - shown) < 0.002


def test_the_earliest_match_is_kept_when_an_ask_narrows_the_task() -> None:
    """The ask path keeps a signal's earliest match as the whole-task path does: offsets compared folded
    ("ß" folds to "ss", so folded and original offsets differ by 20 here)."""
    signals = [{"id": "greek", "in": "ask", "words": ["alpha", "beta", "gamma"], "weights": {"complex": 1}}]
    found = Detector(signals_from_data({"signals": signals}), TIERS, "medium").detect(
        "Long story. All I need is this: " + "ß" * 20 + " gamma beta alpha?")
    assert found.ask is not None
    (hit,) = found.hits
    assert hit.text == "gamma" and found._pending is None  # located as it was detected
