"""apply: confident recommendations written into the policy file, and nothing else changed."""

from __future__ import annotations

import json
import shutil

import pytest

import engine
from engine.analytics import analyze
from engine.apply import plan_apply, policy_file, write_plan
from engine.diagnostics import UsageError
from engine.policy import check_policy
from engine.policy.edit import PolicyEditor
from engine.recommend import recommend
from engine.resources import bundled_policy
from usage_synth import START, native_record, write_known_log


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    import difflib

    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    return [d[2:] for d in diff if d.startswith("- ")], [d[2:] for d in diff if d.startswith("+ ")]


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if "#" in line]


def plan_for(policy_path, log):
    policy = engine.load_policy(policy_path)
    return plan_apply(policy, recommend(policy, analyze(policy, log)))


def test_apply_changes_only_the_lines_it_must(tmp_path):
    policy_path = tmp_path / "ctxbudget.yaml"
    shutil.copy(bundled_policy("default"), policy_path)
    before = policy_path.read_text()
    assert len(comments(before)) > 20  # a commented policy
    plan = plan_for(policy_path, write_known_log(tmp_path / "k.jsonl"))
    assert plan.valid and plan.reformatted == 0
    assert [c.description for c in plan.changes] == [
        "specialists/aws-expert: specialist-broad → specialist-narrow",
        "specialists/dbt-expert: specialist-narrow → specialist-broad",
        "specialist-narrow weights: global 0.2→0.1, agent_recent 0.3→0.2, agent_patterns 0.5→0.7 "
        "(from specialists/snowflake-expert)",
    ]
    write_plan(plan)
    after = policy_path.read_text()
    removed, added = changed_lines(before, after)
    assert removed == ["    weights: {global: 0.20, agent_recent: 0.30, agent_patterns: 0.50}",
                       "  specialists/dbt-expert: specialist-narrow",
                       "  specialists/aws-expert: specialist-broad"]
    assert added == ["    weights: {global: 0.10, agent_recent: 0.20, agent_patterns: 0.70}",
                     "  specialists/dbt-expert: specialist-broad",
                     "  specialists/aws-expert: specialist-narrow"]
    assert comments(after) == comments(before) and len(after.splitlines()) == len(before.splitlines())
    problems, edited = check_policy(policy_path)
    assert problems == [] and edited is not None
    assert edited.agents["specialists/dbt-expert"] == "specialist-broad"
    assert dict(edited.profiles["specialist-narrow"].weights) == {"global": 0.1, "agent_recent": 0.2,
                                                                  "agent_patterns": 0.7}
    assert any(s.startswith("dbt-expert @ simple: expects 10,000, gets 17,500") for s in plan.stale_examples)


def test_a_policy_that_extends_another_gets_overrides(tmp_path):
    policy_path = tmp_path / "ctxbudget.yaml"
    policy_path.write_text("# our agents\nextends: default  # the bundled one\nenforcement: soft\n")
    plan = plan_for(policy_path, write_known_log(tmp_path / "k.jsonl"))
    assert plan.valid
    assert plan.updated == (
        "# our agents\nextends: default  # the bundled one\nenforcement: soft\n"
        "agents:\n  specialists/aws-expert: specialist-narrow\n  specialists/dbt-expert: specialist-broad\n"
        "profiles:\n  specialist-narrow:\n    weights: {global: 0.10, agent_recent: 0.20, agent_patterns: 0.70}\n")


def test_shared_weights_change_only_when_every_agent_of_the_profile_asks(tmp_path):
    policy_path = tmp_path / "ctxbudget.yaml"
    policy_path.write_text("extends: default\n")
    log = write_known_log(tmp_path / "k.jsonl")
    with open(log, "a") as handle:  # another specialist-narrow agent, content with the weights
        for i in range(20):
            handle.write(json.dumps(native_record(START, "specialists/react-expert", "specialist-narrow", 20000, 15000,
                                                  {"global": 3000, "agent_recent": 4500, "agent_patterns": 7500}))
                         + "\n")
    plan = plan_for(policy_path, log)
    assert [c.action for c in plan.changes] == ["downgrade", "upgrade"]
    [skipped] = plan.skipped
    assert (skipped.agent, skipped.action) == ("specialists/snowflake-expert", "adjust-weights")
    assert "shared with specialists/react-expert" in skipped.why


def test_unsure_recommendations_are_not_written(tmp_path):
    policy_path = tmp_path / "ctxbudget.yaml"
    policy_path.write_text("extends: default\nrecommendations:\n  min_confidence: 0.999\n")
    plan = plan_for(policy_path, write_known_log(tmp_path / "k.jsonl"))
    assert [(s.agent, s.why) for s in plan.skipped] == [("specialists/dbt-expert", "confidence 0.99 < 0.999")]
    assert [c.action for c in plan.changes] == ["downgrade", "adjust-weights"]


def test_the_bundled_policy_is_not_edited():
    with pytest.raises(UsageError, match="bundled policy"):
        policy_file(engine.load_policy("default"))


STYLES = [
    "a:\n  b: 1\n  c: [1, 2]\nlist:\n  - x: 1\n    y: 2\n",
    "a:\n    b: 1\nlist:\n    - x: 1\n      y: 2\n",
    "a:\n  b: 1\nlist:\n- x: 1\n  y: 2\n",
    "# head\na: {b: 1}   # trailing\n\n\n# gap\nlist: [x, 'y', \"z\"]\n",
    "agents:\n  specialists/dbt-expert: \"specialist-narrow\"\n",
]


@pytest.mark.parametrize("text", STYLES)
def test_the_editor_keeps_the_files_own_style(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    editor = PolicyEditor.open(path)
    assert (editor.text(), editor.reformatted) == (text, 0)
    editor.set_agent_profile("specialists/dbt-expert", "specialist-broad")
    removed, added = changed_lines(text, editor.text())
    if "agents:" in text:
        assert (removed, added) == (['  specialists/dbt-expert: "specialist-narrow"'],
                                    ['  specialists/dbt-expert: "specialist-broad"'])
    else:
        assert removed == [] and added[-1].strip() == "specialists/dbt-expert: specialist-broad"


def test_inserted_keys_leave_other_sections_as_written(tmp_path):
    text = ("extends: default\n"
            "# our assignments\n"
            "agents:\n"
            "  specialists/react-expert: specialist-broad   # needs more room\n"
            "detection:\n"
            "  signals:\n"
            "    - id: extra\n"
            "      words: [alpha, beta,\n"
            "              gamma]\n"
            "      weights: {complex: 1}\n")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    editor = PolicyEditor.open(path)
    editor.set_agent_profile("specialists/dbt-expert", "specialist-broad")  # inherited: an insertion
    editor.set_weights("specialist-narrow", {"global": 0.1, "agent_recent": 0.2, "agent_patterns": 0.7})
    assert editor.text() == text.replace(
        "  specialists/react-expert: specialist-broad   # needs more room\n",
        "  specialists/react-expert: specialist-broad   # needs more room\n"
        "  specialists/dbt-expert: specialist-broad\n") + (
        "profiles:\n  specialist-narrow:\n    weights: {global: 0.10, agent_recent: 0.20, agent_patterns: 0.70}\n")
    assert editor.reformatted == 0


@pytest.mark.parametrize("written, expected", [
    ("  specialists/dbt-expert: specialist-narrow\n", "  specialists/dbt-expert: specialist-broad\n"),
    ("  specialists/dbt-expert: 'specialist-narrow'  # was\n", "  specialists/dbt-expert: 'specialist-broad'  # was\n"),
    ("  {specialists/dbt-expert: specialist-narrow, x: y}\n", "  {specialists/dbt-expert: specialist-broad, x: y}\n"),
])
def test_values_are_replaced_in_place(tmp_path, written, expected):
    path = tmp_path / "p.yaml"
    path.write_text("agents:\n" + written)
    editor = PolicyEditor.open(path)
    editor.set_agent_profile("specialists/dbt-expert", "specialist-broad")
    assert editor.text() == "agents:\n" + expected
