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
# A second round (fresh2-*) was written the same way once fresh-heldout had been measured (README), and a third
# (fresh3-*) once fresh2-heldout had been; fresh3-heldout was merged after the round that tuned on fresh3-tune
# and is for reporting only (scripts/learn_vocabulary.py leaves it out too). A fourth (fresh4-*) was written
# after the learned vocabulary, to measure it, and more (fresh5-* to fresh10-*) after that; each tune
# half then joined the vocabulary's labelled tasks, each heldout half is for reporting only.
ROUNDS = {"fresh": "f", "fresh2": "g", "fresh3": "h", "fresh4": "i", "fresh5": "j", "fresh6": "k", "fresh7": "l",
          "fresh8": "m", "fresh9": "n", "fresh10": "o"}  # round → the letter its ids start with
FRESH = tuple(f"{r}-{half}" for r in ROUNDS for half in ("tune", "heldout"))
OPTIONAL: tuple[str, ...] = ()
TIER_LETTERS = {"s": "simple", "m": "medium", "c": "complex", "x": "multi-system"}


def fresh_sets() -> list[str]:
    """The fresh sets that are present: every one but those of :data:`OPTIONAL` must be."""
    missing = [n for n in FRESH if not (CORPUS / f"{n}.jsonl").exists()]
    assert set(missing) <= set(OPTIONAL), missing
    return [n for n in FRESH if n not in missing]


def test_the_fresh_sets_are_wide_and_well_formed() -> None:
    names = fresh_sets()
    both = [t for name in names for t in load(name)]
    assert len({t["id"] for t in both}) == len(both)  # no task in two files
    assert len({t["text"] for t in both}) == len(both)
    older = {t["text"] for t in load("train") + load("heldout")}
    assert not older & {t["text"] for t in both}
    assert all(set(t) == {"id", "text", "tier", "agent", "why"} and t["tier"] in TIERS for t in both)
    assert all(t["why"].strip() and t["text"].strip() for t in both)
    for name in names:
        counts = Counter(t["tier"] for t in load(name))
        least = 24 if name.startswith(("fresh4", "fresh5", "fresh7")) else 30  # later rounds asked for 24 per tier and file
        assert set(counts) == set(TIERS) and all(n >= least for n in counts.values()), (name, counts)


def test_the_fresh_split_is_the_documented_rule() -> None:
    """Ids number each tier's tasks in writing order; odd numbers tune, even numbers are held out."""
    for name in fresh_sets():
        letter = ROUNDS[name.rsplit("-", 1)[0]]
        for t in load(name):
            prefix, number = t["id"][:2], int(t["id"][2:])
            assert prefix[0] == letter and TIER_LETTERS[prefix[1]] == t["tier"], t["id"]
            assert (number % 2 == 1) == name.endswith("-tune"), t["id"]


def test_the_fresh_sets_name_only_known_agents(default_policy) -> None:
    assert {t["agent"] for name in fresh_sets() for t in load(name)} <= set(default_policy.agents)


def test_default_policy_accuracy_on_fresh_heldout(default_policy) -> None:
    """Tasks nobody tuned on: 76.6 % when the floor was set (75.0 % before the wave that wrote them); studied
    while tuning since (s9), 80.5 % now."""
    assert measure(default_policy, tasks("fresh-heldout")).accuracy >= 0.74


def test_default_policy_accuracy_on_fresh2_heldout(default_policy) -> None:
    """The second blind set: 86.1 % when the floor was set (80.6 % before the wave that wrote it)."""
    report = measure(default_policy, tasks("fresh2-heldout"))
    assert report.accuracy >= 0.84
    assert all(t.recall >= 0.75 for t in report.per_tier), [(t.tier, t.recall) for t in report.per_tier]


def test_default_policy_accuracy_on_fresh3_tune(default_policy) -> None:
    """The third blind round's tuning half: 68.4 % before the round that studied it (s10), 71.3 % after."""
    assert measure(default_policy, tasks("fresh3-tune")).accuracy >= 0.70


def test_default_policy_accuracy_on_fresh3_heldout(default_policy) -> None:
    """The third blind set, never fitted on or studied: 70.9 % before the round that wrote it and after the
    hand-written round (s10), 78.4 % with the learned vocabulary (docs/detection.md), 81.3 % once fresh4-tune
    joined its labelled tasks, 79.8 % once fresh5-tune did too, 79.1 % with the golden examples fitted on."""
    report = measure(default_policy, tasks("fresh3-heldout"))
    assert report.accuracy >= 0.77
    assert all(t.recall >= 0.6 for t in report.per_tier), [(t.tier, t.recall) for t in report.per_tier]
    assert report.calibration_error <= 0.1


def test_default_policy_accuracy_on_fresh4(default_policy) -> None:
    """The fourth blind pair (s11-writer: people around a data team, tools earlier sets use little), written after
    the learned vocabulary was fitted and measured once: 68.3 / 68.6 % with the hand-written signals alone,
    75.8 / 75.4 % with the vocabulary (tune / heldout); then fresh4-tune joined the vocabulary's labelled tasks
    (89.2 / 78.8 %), then fresh5-tune (80.5 % on fresh4-heldout when the floor was set). fresh4-heldout is for
    reporting only."""


def test_default_policy_accuracy_on_fresh5(default_policy) -> None:
    """The fifth blind pair (s12-writer: sub-agent specs from orchestrators, chat-assistant voices, analysts and
    scientists), measured once: 65.1 / 63.0 % with the hand-written signals alone, 71.6 / 73.2 % with the
    vocabulary (tune / heldout); then fresh5-tune joined the vocabulary's labelled tasks (87.2 / 74.1 % when the
    floor was set). fresh5-heldout is for reporting only."""
    for name, floor in (("fresh5-tune", 0.8), ("fresh5-heldout", 0.72)):
        report = measure(default_policy, tasks(name))
        assert report.accuracy >= floor, (name, report.accuracy)
        assert report.calibration_error <= 0.15, (name, report.calibration_error)
    for name in ("fresh4-tune", "fresh4-heldout"):
        report = measure(default_policy, tasks(name))
        assert report.accuracy >= 0.78, (name, report.accuracy)
        assert report.calibration_error <= 0.15, (name, report.calibration_error)


def test_default_policy_accuracy_on_fresh6(default_policy) -> None:
    """The sixth blind pair (s13-writer: engineers outside the data team, on-call channels, executives, second-
    language and terse writers), measured once: 58.8 / 54.5 % with the hand-written signals alone, 69.8 / 68.9 %
    with the vocabulary (tune / heldout); then fresh6-tune joined the vocabulary's labelled tasks (83.1 / 69.7 %
    when the floor was set). fresh6-heldout is for reporting only."""
    for name, floor in (("fresh6-tune", 0.8), ("fresh6-heldout", 0.67)):
        report = measure(default_policy, tasks(name))
        assert report.accuracy >= floor, (name, report.accuracy)
        assert report.calibration_error <= 0.15, (name, report.calibration_error)


# Four more blind pairs, each measured once with the vocabulary as it then was (tune / heldout; hand-written
# signals alone in brackets), then its tune half joined the vocabulary's labelled tasks; the floors were set on
# the fit with all four, about three tasks under it. fresh7 (s13-writer7: six industries' jargon) 71.9 / 71.9 %
# (53.1 / 59.4 %); fresh8 (s13-writer8: the shared sets' kind and style) 77.9 / 87.5 % (75.0 / 71.3 %); fresh9
# (s13-writer9: the edges between tiers) 77.7 / 85.9 % (73.1 / 74.2 %); fresh10 (s13-writer10: each agent's own
# work) 89.1 / 77.3 % (74.2 / 64.8 %). The heldout halves are for reporting only.
LATER_FLOORS = {"fresh7-tune": 0.80, "fresh7-heldout": 0.72, "fresh8-tune": 0.78, "fresh8-heldout": 0.86,
                "fresh9-tune": 0.81, "fresh9-heldout": 0.78, "fresh10-tune": 0.88, "fresh10-heldout": 0.72}


@pytest.mark.parametrize("name", list(LATER_FLOORS))
def test_default_policy_accuracy_on_the_later_blind_pairs(default_policy, name: str) -> None:
    report = measure(default_policy, tasks(name))
    assert report.accuracy >= LATER_FLOORS[name], (name, report.accuracy)
    assert report.calibration_error <= 0.15, (name, report.calibration_error)


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
    ("who is the owner of the orders_daily flow in Prefect? (only a name please)", "simple"),
    ("link me the dbt style guide pls", "simple"),
    ("Hi there, I hope the week is going well. Could you set up a nightly schedule for the churn flow please?", "medium"),
    # depth cues
    ("Is the uplift in the onboarding experiment real? Work out the power analysis and sample size first", "complex"),
    ("Reimplement the legacy margin view as dbt models and prove parity on last year's data", "complex"),
    ("Set up Snowflake cost chargeback to the four business units from query tags", "complex"),
    # work agreed with security, legal, ML or data-engineering teams (s10; detected as complex or medium before)
    ("Agree with legal, the ML team and data eng how long raw event data is kept, and apply it", "multi-system"),
    # the same number wrong in several places people own, to put right in all of them (s10; complex before)
    ("MRR differs in HubSpot, in the finance model and in the board deck; find out why with finance and align all "
     "three.", "multi-system"),
    # a count by billing plan is not planning (s10; complex before)
    ("work out the number of upgrades last month per plan", "medium"),
    # a measured gap to explain (s10; each detected as medium before)
    ("The signups in Amplitude and in fct_signups are 8% apart since the SDK update. Work out where the gap comes "
     "from.", "complex"),
    ("Our Snowflake storage went up 45% in a month without new sources; find out what is taking the space", "complex"),
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
    # Counter-examples of the s9 cues (each kept only because these stay right). A label before the ask
    # ("dbt:", "check:") lets a lookup pattern read past it, not a change or a diagnosis:
    ("dbt: add not_null tests to the primary keys of the finance marts", "medium"),
    ("check: why do the fct_payments tests pass when the data is obviously wrong?", "complex"),
    ("perf: the exec dashboard takes 90s to load, find the bottleneck and fix it", "complex"),
    ("EU residency: design where EU customer data lives across S3, Snowflake and Tableau and plan the move with legal",
     "multi-system"),
    # a short ask with no cue of work is a lookup only when it asks (a question mark or an asking word); a
    # ticket id is a cue of work
    ("dark mode for the streamlit app", "medium"),
    ("[DATA-2001] dark mode for the streamlit app", "medium"),
    ("OPS-12 nightly snapshot of dim_plans", "medium"),
    ("lineage for fct_orders, end to end?", "multi-system"),
    ("slow dashboard?", "complex"),
    # an opening question with a tail that asks for work is not a lookup
    ("Which dashboards still use the old revenue definition? Move them to the new one.", "medium"),
    ("Which tables does the finance dashboard read? I want it rebuilt on the new marts.", "medium"),
    ("Is the orders_daily flow idempotent? If not, make it so.", "complex"),
    ("Where do the nightly loads spend their time? Get the total under an hour.", "complex"),
    ("What drove the drop in trial signups last Tuesday? The events table should be enough.", "medium"),
    # "run this" is one query only for a statement pasted in the task and nothing more
    ("run it in dev first, then promote the model to prod and backfill", "medium"),
    ("```\nselect * from fct_orders o join dim_date d on o.order_date = d.date\n```\nrun this and tell me why it "
     "spills to disk", "complex"),
    ("```\ncreate table x as select 1;\n```\nrun it in dev, then port the logic into a dbt model with tests", "medium"),
    # "snapshot" opens a change, a list number does not hide a lookup, "across the platform" (end to end) does not
    # outweigh a one-fact ask
    ("snapshot dim_plans: when did it last run?", "simple"),
    ("1. which warehouse does the dbt prod target use?", "simple"),
    ("Across the platform, which dashboards still read the legacy orders table? just the list", "simple"),
    # "just the count/status" after several cues of work is a format, not a one-fact ask
    ("Optimise the 15 slowest dbt models, then send just the count of minutes saved", "complex"),
    ("Diagnose why the incremental orders model double counts, fix it, and just the number of affected rows in the PR",
     "complex"),
    # Counter-examples of the s10 cues, each written before the cue was kept. Punctuation that closes a marker
    # ("Anyway. Is …") starts the ask after it; the work asked after it keeps its tier:
    ("The thread below is long. Anyway, can you trace the orders feed from Salesforce through Fivetran into Snowflake "
     "and the finance dashboards?", "multi-system"),
    ("Long story short \u2014 the nightly dbt run got slow last week, find the bottleneck and fix it", "complex"),
    ("We've been arguing about naming for weeks. Anyway, add a not_null test to fct_orders.order_id", "medium"),
    ("tl;dr - the revenue numbers in the Tableau workbook don't match what the dbt model says; figure out why",
     "complex"),
    ("Lots of opinions in that doc. Anyway... rename the stg_hubspot models to the new convention and update their "
     "refs", "medium"),
    # A lookup question may close with a parenthesised note on the answer ("(just a name)"); the work asked before it
    # keeps its tier:
    ("Which of our 300 dbt models got slow this month, and why? (just a list)", "complex"),
    ("What would it take to move the orders pipeline from Airflow to Prefect and dbt Cloud, and repoint the Tableau "
     "extracts? (just a rough plan)", "multi-system"),
    ("Which staging models are missing the not_null tests, and can you add them? (just the primary keys)", "medium"),
    # A measured gap or change ("8% apart", "went up 45%") is a symptom to investigate; the same measure as a
    # threshold, a label or a fact to look up is not:
    ("Add a dbt test that fails when a staging table's row count is 20% lower than its 7-day average", "medium"),
    ("Which warehouse's credits jumped 40% this week? just the name", "simple"),
    ("Set up a Slack alert in Prefect for when the orders flow runtime goes up 50% over its median", "medium"),
    ("Our churn rate went up 2% last quarter \u2014 what was the exact figure in the board pack?", "simple"),
    ("Update the KPI tile so it shows the MoM change, e.g. 'up 12%', in green when positive", "medium"),
    ("Add a column to fct_revenue that flags months where revenue is 10% lower than forecast", "medium"),
    ("Revenue is 3% higher in Tableau than in NetSuite and HubSpot; trace it through every hop with the finance and "
     "sales owners", "multi-system"),
    ("Total BI licence cost must come down by 20% this year without cutting the dashboards Finance, Sales and "
     "Marketing rely on; agree the plan with each team", "multi-system"),  # a target, not a drift (fresh3-tune hx47)
    # Security, legal, ML and data-engineering teams count among the teams; two teams named in a lookup, a change
    # or a diagnosis do not make it broad:
    ("Which Slack channel do data eng and the ML team use for incidents?", "simple"),
    ("Add the ML team and the analytics team as viewers on the Finance project in Tableau", "medium"),
    ("Data science says the churn model's features drift; the analytics team thinks it's the dbt snapshot. Find the "
     "root cause.", "complex"),
    ("Write the onboarding doc for new data engineering and data science hires", "medium"),
    ("who is our DPO, and who leads the security team these days?", "simple"),
    ("give the analytics team and the data scientists read access to the marts", "medium"),  # s9's counter-example
    ("give our BI team and finance edit rights on the Margin workbook", "medium"),
    ("give me the list of marts models", "simple"),
    # "All three" weighs (towards multi-system) only when the task names a team and two or more systems or teams:
    ("The dev, staging and prod targets in profiles.yml point at different warehouses; set the same warehouse for all "
     "three.", "medium"),
    ("fct_orders, fct_order_lines and the orders snapshot give different totals for March; find out why and fix all "
     "three", "complex"),
    ("What's the refresh schedule of the sales, margin and ops workbooks \u2014 is it the same for all three?", "simple"),
    ("Do the Tableau, Looker and Metabase connections use the same Snowflake role? Just yes or no for all three.",
     "simple"),
    ("Rename the customer_tier column in the dbt model and in the Tableau and Looker views that read it, all three.",
     "medium"),
    # design-verb reads 'plan' as a verb ('plan the', 'a plan', 'planning' …), not a billing plan:
    ("Which plan has the most churned customers last month?", "simple"),
    ("Add the plan tier and the plan start date to dim_customers", "medium"),
    ("Plan the cutover from Airflow to Dagster with the platform and analytics teams", "multi-system"),
    ("Design a backfill plan for the 8 TB events table that never blocks the nightly run", "complex"),
    ("Break the revenue chart down by plan and region", "medium"),
]


@pytest.mark.parametrize(("task", "tier"), HARD_CASES + FRESH_KINDS)
def test_hard_cases(default_policy, task: str, tier: str) -> None:
    assert default_policy.detect(task).tier == tier
