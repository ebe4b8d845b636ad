"""The labelled corpus of tests/data/complexity/ and the default policy's gates on it (issue 12's targets)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from conftest import DATA
from engine.detect.accuracy import measure

CORPUS = DATA / "complexity"
TIERS = ["simple", "medium", "complex", "multi-system"]


def load(name: str) -> list[dict]:
    return [json.loads(line) for line in (CORPUS / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]


def tasks(name: str) -> list[tuple]:
    return [(t["id"], t["text"], t["tier"], None, t["agent"]) for t in load(name)]


def test_the_corpus_is_wide_and_split_once() -> None:
    train, held = load("train"), load("heldout")
    both = train + held
    assert len(both) >= 600
    assert all(n >= 150 for n in Counter(t["tier"] for t in both).values())
    assert all(n >= 45 for n in Counter(t["tier"] for t in held).values())
    assert len({t["id"] for t in both}) == len(both)  # no task in both splits
    assert len({t["text"] for t in both}) == len(both)
    assert all(set(t) == {"id", "text", "tier", "agent", "why"} and t["tier"] in TIERS for t in both)


def test_the_split_is_the_documented_rule() -> None:
    """Every third task of a tier in writing order is held out, except the guide's and the seed's examples."""
    by_prefix: dict[str, list[dict]] = {}
    for t in load("train") + load("heldout"):
        by_prefix.setdefault(t["id"][0], []).append(t)
    held = {t["id"] for t in load("heldout")}
    for items in by_prefix.values():
        for position, t in enumerate(sorted(items, key=lambda t: t["id"])):
            golden = t["why"].startswith(("guide example", "seed example"))
            assert (t["id"] in held) == (position % 3 == 1 and not golden), t["id"]


@pytest.mark.parametrize(("split", "minimum"), [("heldout", 0.88), ("train", 0.90)])
def test_default_policy_accuracy(default_policy, split: str, minimum: float) -> None:
    report = measure(default_policy, tasks(split))
    assert report.accuracy >= minimum
    assert all(t.recall >= 0.75 for t in report.per_tier), [(t.tier, t.recall) for t in report.per_tier]


# The fresh sets: written in other voices, without reading the signals, before anything was measured (README).
FRESH = ("fresh-tune", "fresh-heldout")
FRESH_PREFIXES = {"fs": "simple", "fm": "medium", "fc": "complex", "fx": "multi-system"}


def test_the_fresh_sets_are_wide_and_well_formed() -> None:
    both = [t for name in FRESH for t in load(name)]
    assert len({t["id"] for t in both}) == len(both)  # no task in both files
    assert len({t["text"] for t in both}) == len(both)
    older = {t["text"] for t in load("train") + load("heldout")}
    assert not older & {t["text"] for t in both}
    assert all(set(t) == {"id", "text", "tier", "agent", "why"} and t["tier"] in TIERS for t in both)
    assert all(t["why"].strip() and t["text"].strip() for t in both)
    for name in FRESH:
        counts = Counter(t["tier"] for t in load(name))
        assert set(counts) == set(TIERS) and all(n >= 30 for n in counts.values()), (name, counts)


def test_the_fresh_split_is_the_documented_rule() -> None:
    """Ids number each tier's tasks in writing order; odd numbers tune, even numbers are held out."""
    for name in FRESH:
        for t in load(name):
            prefix, number = t["id"][:2], int(t["id"][2:])
            assert FRESH_PREFIXES[prefix] == t["tier"], t["id"]
            assert (number % 2 == 1) == (name == "fresh-tune"), t["id"]


def test_the_fresh_sets_name_only_known_agents(default_policy) -> None:
    assert {t["agent"] for name in FRESH for t in load(name)} <= set(default_policy.agents)


def test_default_policy_accuracy_on_fresh_heldout(default_policy) -> None:
    """Tasks nobody tuned on: 76.6 % when the floor was set (75.0 % before the wave that wrote them)."""
    assert measure(default_policy, tasks("fresh-heldout")).accuracy >= 0.74


def test_default_policy_confidence_is_calibrated(default_policy) -> None:
    report = measure(default_policy, tasks("heldout"))
    assert report.calibration_error <= 0.08
    assert abs(report.mean_confidence - report.accuracy) <= 0.08


# The hard cases issue 12 names, each written differently from any task of the corpus.
HARD_CASES = [
    ("Morning! Context: the lineage goes HubSpot → Fivetran → Snowflake → dbt → Tableau and the roadmap says we "
     "move it all to Dagster in Q3. Anyway, what's the row count of stg_hubspot__contacts today?", "simple"),
    ("Ignore the Salesforce, Airflow and Looker stuff in that email — just tell me the name of the S3 bucket for "
     "raw events.", "simple"),
    ("Write a short explainer page on our current platform architecture for the analyst wiki", "medium"),
    ("Draft an FAQ for analysts about the Looker migration: what changes for them day to day", "medium"),
    ("Add a GitHub Actions job that runs sqlfluff, dbt build and pytest on every PR", "medium"),
    ("Propose a better folder layout for the finance models in dbt and move them", "medium"),
    ("Add an owner tag to the seven dbt models that lack one", "medium"),
    ("Find the downstream models of stg_payments in dbt and add the new currency column to them", "medium"),
    ("Analyze query performance on the finance warehouse and list the five slowest queries", "medium"),
    ("Investigate data issue: 30 orders have no region since Monday; find the source rows", "medium"),
    ("Agree table ownership with the data, BI and app teams and roll it out across Snowflake and Tableau",
     "multi-system"),
]


# One task per kind of cue the fresh-tune misses taught (issue s8), each written differently from any labelled task;
# every one was detected wrongly before those changes.
FRESH_KINDS = [
    # lookups in other voices (openers, softeners, answer-kind trailers, closing pleasantries)
    ("yo which warehouse does the looker user run on", "simple"),
    ("CAN ANYONE TELL ME WHEN THE ORDERS SNAPSHOT LAST RAN", "simple"),
    ("Could you maybe tell me which schema the hubspot seeds land in? Cheers!", "simple"),
    ("Is the REPORTING_WH multi-cluster? yes/no", "simple"),
    ("link me the dbt style guide pls", "simple"),
    ("Hi there, I hope the week is going well. Could you set up a nightly schedule for the churn flow please?", "medium"),
    # depth cues
    ("Is the uplift in the onboarding experiment real? Work out the power analysis and sample size first", "complex"),
    ("Reimplement the legacy margin view as dbt models and prove parity on last year's data", "complex"),
    ("Set up Snowflake cost chargeback to the four business units from query tags", "complex"),
    # breadth cues
    ("Follow one invoice all the way from Stripe to the finance dashboard and note each transformation", "multi-system"),
    ("SOC2 prep: gather access-review evidence for Snowflake, AWS, GitHub and Tableau and fix the gaps before the audit",
     "multi-system"),
    # how the answer is to be handed back is not the size of the work (an overfit cue, tried and dropped: "names
    # only", "post the number of …", "share the result …" read as one-fact asks, +12 simple, took these)
    ("Audit every role grant across Snowflake, AWS and dbt Cloud and list the violations, names only.", "multi-system"),
    ("Migrate all 40 Airflow DAGs to Dagster, coordinate with the platform and analytics teams, and post the number of "
     "DAGs moved", "multi-system"),
    ("Redesign the orders data model as a star schema in dbt and Snowflake; share the result of the review in the channel",
     "complex"),
    ("Please provide the value of the late-arriving orders fix: diagnose why the incremental model double counts and "
     "fix it", "complex"),
    # one consumer named with a pronoun is not an impact analysis (cues tried and dropped: "reads from it", "relies
    # on it", "touches it" as impact, +3 multi-system)
    ("Drop the unused column from the Snowflake table and fix the one dbt model that reads from it", "medium"),
    ("Rename the column in fct_orders in dbt and update the Looker view that relies on it", "medium"),
]


@pytest.mark.parametrize(("task", "tier"), HARD_CASES + FRESH_KINDS)
def test_hard_cases(default_policy, task: str, tier: str) -> None:
    assert default_policy.detect(task).tier == tier
