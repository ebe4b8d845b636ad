"""apply: confident recommendations written into the policy file, and nothing else changed."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

import engine
import engine.apply as apply_module
from engine.analytics import analyze
from engine.apply import PolicyChanged, plan_apply, plan_changes, policy_file, remove_stale_temps, validate_text, write_plan
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


def test_the_plan_is_a_record_whose_json_form_is_the_apply_contract(tmp_path):
    policy_path = tmp_path / "ctxbudget.yaml"
    policy_path.write_text("version: 1\nextends: default\n")
    plan = plan_for(policy_path, write_known_log(tmp_path / "k.jsonl"))
    data = plan.to_dict()
    assert list(data) == ["policy", "changes", "skipped", "valid", "problems", "stale_examples", "diff", "written"]
    assert data["policy"] == plan.label and data["diff"] == plan.diff() and data["written"] is False
    assert data["changes"][1] == {"action": "upgrade", "target": "specialists/dbt-expert",
                                  "description": "specialists/dbt-expert: specialist-narrow → specialist-broad",
                                  "confidence": round(plan.changes[1].confidence, 4)}
    assert plan.to_dict(written=True) == plan._replace(written=True).to_dict() == {**data, "written": True}
    with pytest.raises(AttributeError):
        plan.changes = ()  # type: ignore[misc]
    # recommend and report count the same changes without a file
    policy = engine.load_policy(policy_path)
    counted = plan_changes(policy, recommend(policy, analyze(policy, tmp_path / "k.jsonl")))
    assert (counted.changes, counted.skipped) == (plan.changes, plan.skipped) and counted.updated == ""


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


@pytest.mark.parametrize("text", [
    "---\nversion: 1\nextends: default\n...\n",
    "version: 1\nextends: default\nagents:\n  specialists/react-expert: specialist-broad\n...\n# the end\n",
    "version: 1\nextends: default\n... # done\n",
])
def test_keys_inserted_into_a_policy_with_a_document_end_marker_go_before_it(tmp_path, text):
    # YAML's "..." ends the document: apply added new sections after it, the edit did not parse, and apply
    # refused ("the edited policy would not validate") a policy it could have edited.
    path = tmp_path / "p.yaml"
    path.write_text(text)
    editor = PolicyEditor.open(path)
    editor.set_agent_profile("specialists/dbt-expert", "specialist-broad")
    editor.set_weights("specialist-narrow", {"global": 0.1, "agent_recent": 0.2, "agent_patterns": 0.7})
    edited = editor.text()
    marker = edited.index("\n...") + 1
    assert edited[marker:] == text[text.index("\n...") + 1:]  # the marker and what follows it, as written
    problems, compiled = validate_text(path, edited, "p.yaml")
    assert compiled is not None, [p.format() for p in problems]
    assert "specialists/dbt-expert: specialist-broad" in edited[:marker]


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


# -- apply is safe when other things touch the policy (issue 8, section 6) --------------------------------------

def _team_policy(tmp_path, text: str = "# ours\nextends: default\nenforcement: soft\n", newline: str = "\n"):
    path = tmp_path / "ctxbudget.yaml"
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_an_edit_made_after_the_plan_is_kept_and_apply_aborts(tmp_path):
    """Reproduced: an edit saved while apply ran was lost (6 of 20 runs). Now the last look before the swap
    sees it: nothing is written, the other edit stays, no temp file is left."""
    path = _team_policy(tmp_path)
    plan = plan_for(path, write_known_log(tmp_path / "k.jsonl"))
    assert plan.changes
    theirs = path.read_text() + "name: edited-meanwhile\n"
    path.write_text(theirs)
    with pytest.raises(PolicyChanged, match="changed on disk while apply ran; nothing written"):
        write_plan(plan)
    assert path.read_text() == theirs and _leftovers(tmp_path) == []


def test_an_edit_made_while_the_temp_file_is_written_is_kept(tmp_path, monkeypatch):
    """The compare happens after the new text is on disk, just before os.replace."""
    path = _team_policy(tmp_path)
    plan = plan_for(path, write_known_log(tmp_path / "k.jsonl"))
    real_write = apply_module._TempFile.write

    def write_then_someone_saves(temp, data):
        real_write(temp, data)
        path.write_text("extends: default\nname: saved-in-between\n")

    monkeypatch.setattr(apply_module._TempFile, "write", write_then_someone_saves)
    with pytest.raises(PolicyChanged):
        write_plan(plan)
    assert path.read_text() == "extends: default\nname: saved-in-between\n" and _leftovers(tmp_path) == []


def test_an_edit_made_between_loading_and_planning_is_not_overwritten(tmp_path):
    path = _team_policy(tmp_path)
    policy = engine.load_policy(path)
    analysis = analyze(policy, write_known_log(tmp_path / "k.jsonl"))
    path.write_text(path.read_text() + "name: edited-while-the-log-was-read\n")
    with pytest.raises(PolicyChanged, match="changed on disk since it was loaded"):
        plan_apply(policy, recommend(policy, analysis))


def test_the_cli_exits_1_when_the_policy_changed(tmp_path, run_cli, monkeypatch):
    path = _team_policy(tmp_path)
    log = write_known_log(tmp_path / "k.jsonl")
    real_plan = apply_module.plan_apply

    def plan_then_someone_saves(*args, **kwargs):
        plan = real_plan(*args, **kwargs)
        path.write_text("extends: default\nname: theirs\n")
        return plan

    monkeypatch.setattr(apply_module, "plan_apply", plan_then_someone_saves)
    code, out, err = run_cli("apply", "--policy", str(path), "--log", str(log), "--yes")
    assert code == 1, err
    assert err.strip().splitlines()[-1].startswith(f"ctxbudget: error: {path} changed on disk while apply ran")
    assert path.read_text() == "extends: default\nname: theirs\n" and _leftovers(tmp_path) == []


def test_a_symlink_planted_at_the_old_predictable_temp_path_is_not_followed(tmp_path):
    """Reproduced: the temp path was .NAME.PID.apply.tmp, so a symlink planted there overwrote its target."""
    path = _team_policy(tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("untouched\n")
    plan = plan_for(path, write_known_log(tmp_path / "k.jsonl"))
    for pid in {os.getpid(), *range(os.getpid() - 5, os.getpid() + 5)}:
        (tmp_path / f".{path.name}.{pid}.apply.tmp").symlink_to(victim)
    write_plan(plan)
    assert victim.read_text() == "untouched\n"
    assert path.read_text() == plan.updated


def test_temp_files_are_unpredictable_and_exclusive(tmp_path, monkeypatch):
    """Every temp file comes from mkstemp in the policy's folder, with our recognisable name."""
    import tempfile

    made = []
    real = tempfile.mkstemp

    def spy(*args, **kwargs):
        fd, name = real(*args, **kwargs)
        made.append((kwargs.get("dir"), os.path.basename(name)))
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    path = _team_policy(tmp_path)
    write_plan(plan_for(path, write_known_log(tmp_path / "k.jsonl")))
    made = [(folder, name) for folder, name in made if Path(folder) == tmp_path]  # not the policy cache's
    assert len(made) == 2  # the validation copy, the replacement
    pattern = re.compile(r"\.ctxbudget\.yaml\.[A-Za-z0-9_]{8}\.ctxbudget-apply\.tmp")
    assert all(folder == tmp_path and pattern.fullmatch(name) for folder, name in made), made
    assert made[0][1] != made[1][1] and _leftovers(tmp_path) == []


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664])
def test_the_policy_keeps_its_mode(tmp_path, mode):
    path = _team_policy(tmp_path)
    path.chmod(mode)
    write_plan(plan_for(path, write_known_log(tmp_path / "k.jsonl")))
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert "specialists/dbt-expert: specialist-broad" in path.read_text()


def test_a_read_only_policy_is_refused(tmp_path, run_cli):
    """Reproduced: a 0444 policy was silently rewritten (os.replace ignores the file's mode). Root too."""
    path = _team_policy(tmp_path)
    log = write_known_log(tmp_path / "k.jsonl")
    plan = plan_for(path, log)
    before = path.read_bytes()
    path.chmod(0o444)
    with pytest.raises(UsageError, match=r"is read-only \(mode 0444\)"):
        write_plan(plan)
    code, out, err = run_cli("apply", "--policy", str(path), "--log", str(log), "--yes")
    assert (code, out) == (2, "")
    assert err.strip() == (f"ctxbudget: error: {path} is read-only (mode 0444); apply does not rewrite a read-only "
                           f"policy — make it writable (chmod u+w {path}) to apply, or use --dry-run")
    code, out, _ = run_cli("apply", "--policy", str(path), "--log", str(log), "--dry-run")
    assert code == 0 and "+  specialists/dbt-expert: specialist-broad" in out
    assert path.read_bytes() == before and _leftovers(tmp_path) == []


@pytest.mark.parametrize("text", [
    "# ours\nextends: default\nenforcement: soft\n",  # the changes are inserted sections
    None,  # the bundled default, commented: the changes are replaced in place
])
def test_crlf_stays_crlf(tmp_path, text):
    """Reproduced: CRLF files came back LF. Now every line keeps CRLF, the new ones too."""
    text = text or Path(bundled_policy("default")).read_text()
    path = _team_policy(tmp_path, text, newline="\r\n")
    plan = plan_for(path, write_known_log(tmp_path / "k.jsonl"))
    assert plan.valid and len(plan.changes) == 3
    write_plan(plan)
    written = path.read_bytes()
    assert b"\r\n" in written and written.count(b"\n") == written.count(b"\r\n") >= text.count("\n")
    as_lf = written.decode().replace("\r\n", "\n")
    lf_path = tmp_path / "lf" / "ctxbudget.yaml"
    lf_path.parent.mkdir()
    lf_path.write_text(text)
    assert as_lf == plan_for(lf_path, write_known_log(tmp_path / "k2.jsonl")).updated
    assert "\r" not in plan.diff()


def test_no_temp_file_is_left_on_an_error(tmp_path, monkeypatch):
    path = _team_policy(tmp_path)
    plan = plan_for(path, write_known_log(tmp_path / "k.jsonl"))
    before = path.read_bytes()

    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(apply_module.os, "replace", fail)
    with pytest.raises(UsageError, match="cannot write .*: No space left on device"):
        write_plan(plan)
    monkeypatch.undo()

    def interrupt(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(apply_module.os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        write_plan(plan)
    monkeypatch.undo()
    assert path.read_bytes() == before and _leftovers(tmp_path) == []


def test_an_invalid_edit_leaves_no_temp_file(tmp_path):
    path = _team_policy(tmp_path, "extends: default\nprofiles:\n  specialist-broad: {max: 1}\n")
    problems, _ = validate_text(path, "extends: default\nprofiles: 3\n", "ctxbudget.yaml")
    assert [p.rule for p in problems] == ["schema-type"] and problems[0].path == "ctxbudget.yaml"
    assert _leftovers(tmp_path) == []


KILLED_APPLY = """
import os, signal, sys
import engine, engine.apply as apply
from engine.analytics import analyze
from engine.recommend import recommend
policy = engine.load_policy(sys.argv[1])
plan = apply.plan_apply(policy, recommend(policy, analyze(policy, sys.argv[2])))
os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # killed at the worst moment
apply.write_plan(plan)
"""


@pytest.mark.skipif(not hasattr(os, "kill") or os.name != "posix", reason="SIGKILL is POSIX")
def test_a_temp_file_left_by_a_killed_apply_is_recognised_and_cleaned_after_an_hour(tmp_path):
    path = _team_policy(tmp_path)
    log = write_known_log(tmp_path / "k.jsonl")
    before = path.read_bytes()
    done = subprocess.run([sys.executable, "-c", KILLED_APPLY, str(path), str(log)], capture_output=True,
                          timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    [stale] = _leftovers(tmp_path)
    assert re.fullmatch(r"\.ctxbudget\.yaml\.[A-Za-z0-9_]{8}\.ctxbudget-apply\.tmp", stale)
    assert path.read_bytes() == before  # the policy itself is whole
    foreign = tmp_path / ".ctxbudget.yaml.notours.tmp"
    foreign.write_text("someone else's\n")
    old = time.time() - 2 * 3600
    os.utime(foreign, (old, old))
    fresh = tmp_path / ".ctxbudget.yaml.abcdefgh.ctxbudget-apply.tmp"  # a running apply's, maybe
    fresh.write_text("")
    assert remove_stale_temps(path) == []  # the killed one is minutes old: left alone
    os.utime(tmp_path / stale, (old, old))
    write_plan(plan_for(path, log))
    assert _leftovers(tmp_path) == sorted([foreign.name, fresh.name])
