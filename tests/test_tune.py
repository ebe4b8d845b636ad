"""`ctxbudget tune`: the fit, the calibration, the edit of the policy file, and the command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from engine import load_policy
from engine.policy import load_data
from engine.detect.tune import (Problem, Sample, calibration_error, cross_validate, edit_policy_text, fit,
                                fit_platt, folds_of, plan_tune, predict)
from engine.policy.edit import PolicyEditor

TIERS = ("simple", "medium", "complex", "multi-system")


def synthetic(n: int = 80) -> Problem:
    """Feature j points at tier j; feature 4 is noise that fires everywhere."""
    samples = tuple(Sample((i % 4, 4), 0, i % 4) for i in range(n))
    return Problem(TIERS, ("a", "b", "c", "d", "noise"), samples, (1, 0, 2, 3), tuple((0.0,) * 4 for _ in range(5)))


def test_the_fit_separates_separable_data() -> None:
    problem = synthetic()
    weights = fit(problem, problem.samples, l2=0.001)
    assert predict(problem, weights, problem.samples).accuracy == 1.0
    for j in range(4):  # each feature weighs most on its own tier
        assert max(range(4), key=lambda t: weights[j][t]) == j


def test_l2_shrinks_the_weights() -> None:
    problem = synthetic()
    loose = fit(problem, problem.samples, l2=0.0001)
    tight = fit(problem, problem.samples, l2=1.0)
    assert sum(abs(w) for row in tight for w in row) < sum(abs(w) for row in loose for w in row) / 3


def test_folds_are_stratified_and_deterministic() -> None:
    samples = synthetic(40).samples
    folds = folds_of(samples, 4)
    assert folds == folds_of(samples, 4)
    assert sorted(i for f in folds for i in f) == list(range(40))
    assert all(sorted(samples[i].label for i in f) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3] or len(f) == 10 for f in folds)
    assert cross_validate(synthetic(), 0.001, 4).accuracy == 1.0


def test_platt_scaling_matches_a_known_curve() -> None:
    margins = [m / 10 for m in range(0, 60)] * 20
    # correct with probability sigmoid(1.5 m - 1), deterministically spread
    correct = [((i * 7919) % 1000) / 1000 < 1 / (1 + math.exp(-(1.5 * m - 1))) for i, m in enumerate(margins)]
    slope, intercept = fit_platt(margins, correct)
    assert 1.2 < slope < 1.8 and -1.4 < intercept < -0.6


def test_expected_calibration_error() -> None:
    assert calibration_error([0.9] * 10, [True] * 9 + [False]) == pytest.approx(0.0)
    assert calibration_error([0.95, 0.95, 0.05, 0.05], [False, False, True, True]) == pytest.approx(0.95)
    assert calibration_error([], []) == 0.0


POLICY = """\
# my team's policy
extends: default
detection:
  confidence_scale: 2   # kept
  signals:
    - {id: snowflake, group: system, words: [snowflake]}
    - id: diagnosis
      words: [troubleshoot, why, root cause]
      weights: {complex: 3}   # flow, with a comment
    - id: lookup
      pattern: '^\\W*(?:show|list|what|which)\\b'
      weights:
        simple: 3
    - id: change
      pattern: '^\\W*(?:add|create|rename)\\b'
      weights: {medium: 2}
    - id: never
      words: [zzzyzzy]
      weights: {multi-system: 7}
"""

LABELS = [
    ("Show the warehouses", "simple"), ("List all dbt models", "simple"), ("What is the retention?", "simple"),
    ("Which role owns it?", "simple"), ("Show current status", "simple"), ("List the grants", "simple"),
    ("Add a test to fct_orders", "medium"), ("Create a staging model", "medium"), ("Rename the column", "medium"),
    ("Add a filter to the dashboard", "medium"), ("Create a role", "medium"), ("Rename the schema", "medium"),
    ("Troubleshoot the failing load", "complex"), ("Why is the run slow?", "complex"),
    ("Find the root cause of the drift", "complex"), ("Troubleshoot the snapshot", "complex"),
    ("why do numbers differ", "complex"), ("Root cause the outage", "complex"),
]


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "ctxbudget.yaml"
    path.write_text(POLICY, encoding="utf-8")
    return path


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t, "tier": tier}) + "\n"
                            for i, (t, tier) in enumerate(LABELS)), encoding="utf-8")
    return path


def test_plan_tune_edits_only_the_numbers(policy_file: Path) -> None:
    policy = load_policy(policy_file)
    tasks = [(i, t, tier, None) for i, (t, tier) in enumerate(LABELS)]
    plan = plan_tune(policy, tasks, policy_file, folds=3, l2=(0.01,))
    assert plan.valid and plan.cv_accuracy == 1.0 and plan.accuracy_before == 1.0
    assert set(plan.weights) == {"diagnosis", "lookup", "change"}  # 'never' never fires: kept as it is
    after = plan.updated.splitlines()
    before = POLICY.splitlines()
    changed = [(b, a) for b, a in zip(before, after[1:] if len(after) > len(before) else after) if a != b]
    from engine.detect.plan import weights_digest

    assert after[2] == "detection:" and after[3].startswith(
        f"  calibration: {{slope: {plan.calibration[0]:g}, intercept: {plan.calibration[1]:g}, signals: '")
    assert "      weights: {multi-system: 7}" in after and "# my team's policy" == after[0]
    assert any("# flow, with a comment" in line and "weights: {" in line for line in after)
    assert any(line.startswith("        simple: ") for line in after)
    assert changed  # numbers did change
    tuned = load_policy_text(policy_file.parent, plan.updated)
    assert tuned.detector.calibration == plan.calibration  # fitted for exactly these weights
    assert f"signals: '{weights_digest(tuned.signals)}'" in after[3]
    assert all(tuned.detect(t).tier == tier for t, tier in LABELS)


def load_policy_text(folder: Path, text: str):
    path = folder / "tuned.yaml"
    path.write_text(text, encoding="utf-8")
    return load_policy(path)


def test_calibration_is_replaced_in_place(policy_file: Path) -> None:
    policy_file.write_text(POLICY.replace("detection:\n", "detection:\n  calibration: {slope: 9, intercept: 9}\n"))
    editor = PolicyEditor.open(policy_file)
    text = edit_policy_text(editor, {}, (1.25, -0.5))
    assert text == POLICY.replace("detection:\n", "detection:\n  calibration: {slope: 1.25, intercept: -0.5}\n")


def test_a_policy_without_its_own_detection_gets_one_for_calibration(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("extends: default\n", encoding="utf-8")
    text = edit_policy_text(PolicyEditor.open(path), {}, (1.0, 0.5))
    assert text == "extends: default\ndetection:\n  calibration: {slope: 1, intercept: 0.5}\n"
    policy = load_policy_text(tmp_path, text)
    assert len(policy.signals) > 50 and policy.detector.calibration == (1.0, 0.5)  # signals still inherited


def test_weights_need_the_files_own_signals(tmp_path: Path) -> None:
    from engine.detect.tune import TuneError

    path = tmp_path / "p.yaml"
    path.write_text("extends: default\n", encoding="utf-8")
    with pytest.raises(TuneError, match="no detection signals of its own"):
        edit_policy_text(PolicyEditor.open(path), {"diagnosis": {"complex": 2.0}}, (1.0, 0.0))


def test_tune_command_dry_run_then_yes(run_cli, policy_file: Path, labels: Path) -> None:
    code, out, err = run_cli("tune", str(labels), "--policy", str(policy_file), "--dry-run", "--folds", "3")
    assert code == 0, err
    assert "+  calibration: {slope:" in out and "cross-validated" in out and "dry run: nothing written" in out
    assert policy_file.read_text(encoding="utf-8") == POLICY
    code, out, _ = run_cli("tune", str(labels), "--policy", str(policy_file), "--yes", "--json", "--l2", "0.01")
    report = json.loads(out)
    assert code == 0 and report["written"] and report["cv_accuracy"] == 1.0 and report["l2"] == 0.01
    assert 0 <= report["ece_after"] <= 0.1  # out of fold; every task is right, confidence about 0.95
    assert "calibration:" in policy_file.read_text(encoding="utf-8")
    code, out, _ = run_cli("accuracy", str(labels), "--policy", str(policy_file), "--json")
    assert code == 0 and json.loads(out)["accuracy"] == 1.0


def test_tune_calibrate_only_keeps_the_weights(run_cli, policy_file: Path, labels: Path) -> None:
    code, out, _ = run_cli("tune", str(labels), "--policy", str(policy_file), "--calibrate-only", "--yes")
    assert code == 0 and "wrote" in out
    text = policy_file.read_text(encoding="utf-8")
    assert text.replace(text.splitlines()[3] + "\n", "", 1) == POLICY


@pytest.mark.parametrize(("args", "message"), [
    (["--policy", "default"], "bundled policy"),
    (["--folds", "1"], "--folds"),
    (["--l2", "-1"], "--l2"),
])
def test_tune_refuses(run_cli, policy_file: Path, labels: Path, args: list[str], message: str) -> None:
    argv = ["tune", str(labels), "--dry-run"] + (args if "--policy" in args else args + ["--policy", str(policy_file)])
    code, _, err = run_cli(*argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_tune_needs_two_tiers_and_good_labels(run_cli, policy_file: Path, tmp_path: Path) -> None:
    one = tmp_path / "one.jsonl"
    one.write_text('{"text": "Show x", "tier": "simple"}\n{"text": "List y", "tier": "simple"}\n')
    code, _, err = run_cli("tune", str(one), "--policy", str(policy_file), "--dry-run")
    assert code == 2 and "at least two tiers" in err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "Show x", "tier": "huge"}\n')
    code, _, err = run_cli("tune", str(bad), "--policy", str(policy_file), "--dry-run")
    assert code == 2 and "unknown tier 'huge'" in err


def test_tune_does_not_write_without_yes_off_a_terminal(run_cli, policy_file: Path, labels: Path) -> None:
    code, _, err = run_cli("tune", str(labels), "--policy", str(policy_file))
    assert code == 2 and "--yes" in err
    assert policy_file.read_text(encoding="utf-8") == POLICY


def test_a_calibration_fitted_for_other_signals_is_not_used(tmp_path: Path) -> None:
    """A policy that replaces the signals it inherits, or changes a weight, does not keep the calibration."""
    from engine.detect.plan import weights_digest

    default = load_policy("default")
    assert default.detector.calibration is not None
    assert load_data("default")["detection"]["calibration"]["signals"] == weights_digest(default.signals)
    replaced = load_policy_text(tmp_path, POLICY)  # extends default, its own signals
    assert replaced.detector.calibration is None and replaced.detect("troubleshoot it").confidence == 0.6
    text = "extends: default\ndetection:\n  calibration: {slope: 2, intercept: 0}\n"
    assert load_policy_text(tmp_path, text).detector.calibration == (2.0, 0.0)  # no digest: always used


def test_fitted_weights_are_calibrated_on_tasks_they_were_not_fitted_on(tmp_path: Path) -> None:
    """A signal per task fits its training tasks perfectly and says nothing about others: Platt scaling of the
    fitted weights' own margins would make every confidence ~1 (it did: slope 0, intercept 6 for the default
    policy's learned vocabulary on train.jsonl). The calibration comes from the cross-validated margins."""
    words = [f"zq{i}word" for i in range(48)]
    signals = "".join(f"    - {{id: s{i}, words: [{w}], weights: {{medium: 0.1}}}}\n" for i, w in enumerate(words))
    path = tmp_path / "memorise.yaml"
    path.write_text("extends: default\ndetection:\n  signals:\n" + signals, encoding="utf-8")
    policy = load_policy(path)
    tasks = [(i, f"{w} {w}x", TIERS[i % 4], None) for i, w in enumerate(words)]
    plan = plan_tune(policy, tasks, path, folds=4, l2=(0.001,))
    assert plan.cv_accuracy <= 0.5  # nothing carries over to a held-out task
    slope, intercept = plan.calibration
    confidence = 1 / (1 + math.exp(-(slope * 2.0 + intercept)))
    assert confidence < 0.9, plan.calibration
