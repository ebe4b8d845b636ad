"""One integration test per detection command, checking the whole output (a small policy keeps it stable)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from conftest import DATA

POLICY = str(DATA / "small-detection.yaml")
SCOPES = """\
scope           weight  tokens
--------------  ------  ------
global             0.2   8,000
agent_recent       0.3  12,000
agent_patterns     0.5  20,000
"""


def test_evaluate(run_cli) -> None:
    code, out, err = run_cli("evaluate", "Troubleshoot the dbt run in Snowflake and Tableau", "--agent", "dbt-expert",
                             "--policy", POLICY)
    assert (code, err) == (0, "")
    assert out == (
        "specialists/dbt-expert: 40,000 tokens — tier multi-system ×2 (detected, confidence 0.333), "
        "profile specialist-narrow\n"
        "signals: snowflake 'Snowflake'; dbt 'dbt'; tableau 'Tableau'; diagnosis 'Troubleshoot' complex +3; "
        "many-systems multi-system +4\n" + SCOPES)


def test_evaluate_json_is_budget_json_plus_detection(run_cli) -> None:
    code, out, _ = run_cli("evaluate", "Show current Snowflake status", "--agent", "dbt-expert", "--policy", POLICY,
                           "--json")
    _, budget, _ = run_cli("budget", "dbt-expert", "simple", "--policy", POLICY, "--json")
    assert code == 0
    assert json.loads(out) == {**json.loads(budget), "confidence": 0.6, "signals": [
        {"id": "snowflake", "tier": None, "weight": 0.0, "text": "Snowflake", "span": [13, 22]},
        {"id": "lookup", "tier": "simple", "weight": 3.0, "text": "Show", "span": [0, 4]}]}


def test_evaluate_explain(run_cli) -> None:
    code, out, _ = run_cli("evaluate", "Troubleshoot why the dbt run is slow", "--agent", "dbt-expert",
                           "--policy", POLICY, "--explain")
    assert code == 0
    assert out == """\
specialists/dbt-expert: 30,000 tokens — tier complex ×1.5 (detected, confidence 0.6), profile specialist-narrow

signals that fired
signal     matched       span   weights     boost  group
---------  ------------  -----  ----------  -----  ------
dbt        dbt           21-24                     system
diagnosis  Troubleshoot  0-12   complex +3

Troubleshoot why the dbt run is slow
^^^^^^^^^^^^         ^^^

scores
tier          score
------------  -----
simple            0
medium            0
complex           3
multi-system      0
best score: complex
confidence 0.6 = margin 3 / (margin 3 + scale 2)

scope           weight  tokens
--------------  ------  ------
global             0.2   6,000
agent_recent       0.3   9,000
agent_patterns     0.5  15,000
"""


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--tier", "multi-system"], 0, "tier multi-system ×2 (given)"),
    (["--context", '{"agent_count": 3}'], 0, "tier multi-system ×2 (detected, confidence 0.6)"),
    (["--context", "[1]"], 2, "--context: must be a JSON object"),
    (["--context", "{"], 2, "--context: not valid JSON"),
    (["--tier", "huge"], 1, "unknown tier 'huge'"),
])
def test_evaluate_options(run_cli, args: list[str], code: int, message: str) -> None:
    got, out, err = run_cli("evaluate", "troubleshoot it", "--agent", "dbt-expert", "--policy", POLICY, *args)
    assert got == code and message in out + err and "Traceback" not in err


@pytest.mark.parametrize(("context", "message"), [
    ('{"agent_count": "3', "Unterminated string at column 17"),
    ('{"agent_count" 3}', "Expecting ':' delimiter at column 16"),
    ('{"agent_count": 3,}', "Expecting property name enclosed in double quotes at column 19"),
])
def test_evaluate_refuses_broken_context_json_in_a_fresh_process(context: str, message: str) -> None:
    """Errors inside the value, read by a process that has not imported json (in-process tests always have):
    a clear error, not the SystemError traceback CPython 3.11's scanner gave there."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "CTXBUDGET_POLICY"}
    done = subprocess.run([sys.executable, "-m", "engine", "evaluate", "troubleshoot it", "--agent", "dbt-expert",
                           "--policy", POLICY, "--context", context], capture_output=True, text=True, timeout=60,
                          env=env)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"ctxbudget: error: --context: not valid JSON "
                                                                  f"({message})\n")


def test_evaluate_unknown_agent(run_cli) -> None:
    code, out, err = run_cli("evaluate", "x", "--agent", "dbt-exprt", "--policy", POLICY)
    assert (code, out) == (1, "")
    assert err == "ctxbudget: error: unknown agent 'dbt-exprt'; did you mean 'specialists/dbt-expert'?\n"


def test_detect(run_cli) -> None:
    code, out, _ = run_cli("detect", "Show current Snowflake status", "--policy", POLICY)
    assert (code, out) == (0, "simple (confidence 0.6)\nsignals: snowflake 'Snowflake'; lookup 'Show' simple +3\n")
    code, out, _ = run_cli("detect", "Show current Snowflake status", "--policy", POLICY, "--json")
    assert json.loads(out) == {"tier": "simple", "confidence": 0.6, "base_tier": "simple", "boost": 0,
                               "scores": {"simple": 3.0, "medium": 0.0, "complex": 0.0, "multi-system": 0.0},
                               "signals": [{"id": "snowflake", "tier": None, "weight": 0.0, "text": "Snowflake",
                                            "span": [13, 22]},
                                           {"id": "lookup", "tier": "simple", "weight": 3.0, "text": "Show",
                                            "span": [0, 4]}]}


def test_detect_batch_streams_one_result_per_task(run_cli, monkeypatch, tmp_path: Path) -> None:
    lines = ['Show dbt models', '{"id": "t7", "text": "why is it slow", "context": {"agent_count": 3}}',
             '{"id": 8, ', '', '{"id": "t9", "text": "nothing here", "tier": "medium"}']
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    code, out, err = run_cli("detect", "--batch", "-", "--policy", POLICY)
    assert code == 2  # one bad line
    assert err == "<stdin>:3:10: error: not valid JSON: Expecting property name enclosed in double quotes " \
                  "[task-json]\n<stdin>: 1 bad line skipped, 3 tasks answered\n"
    results = [json.loads(line) for line in out.splitlines()]
    assert [(r["id"], r["tier"], r["boost"], [s["id"] for s in r["signals"]]) for r in results] == [
        (1, "simple", 0, ["dbt", "lookup"]), ("t7", "multi-system", 1, ["diagnosis", "several-agents"]),
        ("t9", "medium", 0, [])]
    tasks = tmp_path / "tasks.txt"
    tasks.write_text("Show dbt models\n", encoding="utf-8")
    code, out, _ = run_cli("detect", "--batch", str(tasks), "--policy", POLICY, "--context", '{"agent_count": 2}')
    assert code == 0 and json.loads(out)["tier"] == "medium"  # simple, boosted by the context
    code, _, err = run_cli("detect", "--batch", str(tmp_path / "missing.jsonl"), "--policy", POLICY)
    assert code == 2 and "cannot read" in err


def test_detect_interactive(run_cli, monkeypatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("List all models\n\nwhy?\n"))
    code, out, _ = run_cli("detect", "-i", "--policy", POLICY)
    assert (code, out) == (0, "simple (confidence 0.6)\nsignals: lookup 'List' simple +3\n"
                              "complex (confidence 0.6)\nsignals: diagnosis 'why' complex +3\n")


@pytest.mark.parametrize("args", [[], ["x", "-i"], ["x", "--batch", "-"]])
def test_detect_needs_exactly_one_input(run_cli, args: list[str]) -> None:
    code, _, err = run_cli("detect", *args, "--policy", POLICY)
    assert code == 2 and "Traceback" not in err


def test_signals(run_cli) -> None:
    code, out, _ = run_cli("signals", "--policy", POLICY)
    assert code == 0
    assert out == """\
signal          kind     fires on                                             weights          boost  group
--------------  -------  ---------------------------------------------------  ---------------  -----  ------
snowflake       words    snowflake                                                                    system
dbt             words    dbt                                                                          system
tableau         words    tableau                                                                      system
diagnosis       words    troubleshoot, root cause, why                        complex +3
lookup          pattern  ^(?:show|list|what|which)\\b                          simple +3
many-systems    when     count.system >= 3                                    multi-system +4
several-agents  when     has(context.agent_count) && context.agent_count > 1                   +1
"""
    code, out, _ = run_cli("signals", "--policy", POLICY, "--group", "system", "--json")
    assert [s["id"] for s in json.loads(out)] == ["snowflake", "dbt", "tableau"]
    assert json.loads(out)[0] == {"id": "snowflake", "kind": "words", "words": ["snowflake"], "weights": {},
                                  "boost": 0, "group": "system", "description": "", "in": "anywhere"}
    code, _, err = run_cli("signals", "--policy", POLICY, "--group", "systm")
    assert code == 1 and err == "ctxbudget: error: unknown group 'systm'; did you mean 'system'?\n"


LABELS = [{"id": "a", "text": "Show current Snowflake status", "tier": "simple"},
          {"id": "b", "text": "Troubleshoot the dbt run", "tier": "complex"},
          {"id": "c", "text": "Plan the Snowflake move", "tier": "multi-system", "agent": "data-architect"}]


def test_accuracy(run_cli, tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps(x) + "\n" for x in LABELS), encoding="utf-8")
    code, out, _ = run_cli("accuracy", str(labels), "--policy", POLICY, "--min", "0.8")
    assert code == 1
    assert out == f"""\
{labels}: 2 of 3 tasks detected as labelled — accuracy 66.7% (minimum 80.0%)
tier          precision  recall  tasks
------------  ---------  ------  -----
simple             100%    100%      1
medium               0%       —      0
complex            100%    100%      1
multi-system          —      0%      1
confusion matrix
labelled \\ detected  simple  medium  complex  multi-system
-------------------  ------  ------  -------  ------------
simple                    1       0        0             0
medium                    0       0        0             0
complex                   0       0        1             0
multi-system              0       1        0             0
cost of the errors: 0 tokens over-allocated on 0 task(s) (0.0% of the 190,000 the labels give), 75,000 under-allocated on 1 task(s) (39.5% of the 190,000 the labels give); tasks without a known agent costed as specialists/snowflake-expert
calibration: expected calibration error 0.267 (mean confidence 0.40, accuracy 0.67)
misclassified
id  expected      detected  confidence  task
--  ------------  --------  ----------  -----------------------
c   multi-system  medium    0           Plan the Snowflake move
accuracy 66.7% is below the minimum 80.0%
"""
    code, out, _ = run_cli("accuracy", str(labels), "--policy", POLICY, "--min", "0.6", "--json")
    report = json.loads(out)
    assert code == 0 and (report["accuracy"], report["passed"], report["min"]) == (0.6667, True, 0.6)
    assert report["confusion"]["multi-system"] == {"simple": 0, "medium": 1, "complex": 0, "multi-system": 0}
    assert report["misclassified"] == [{"id": "c", "text": "Plan the Snowflake move", "expected": "multi-system",
                                        "detected": "medium", "confidence": 0.0, "signals": ["snowflake"]}]
    # c is costed for its own agent (data-architect: 150,000 at multi-system, 75,000 at medium), a and b for
    # the reference agent (the policy's first: snowflake-expert, 10,000 simple and 30,000 complex).
    assert report["cost"] == {"over_tokens": 0, "over_tasks": 0, "under_tokens": 75000, "under_tasks": 1,
                              "labelled_tokens": 190000, "reference_agent": "specialists/snowflake-expert"}
    # confidence 0.6 on the two right answers, 0 on the wrong one: |0.6 - 1| × 2/3 + |0 - 0| × 1/3
    assert (report["calibration_error"], report["mean_confidence"]) == (0.2667, 0.4)


@pytest.mark.parametrize(("content", "message"), [
    ('{"id": 1, "text": "x", "tier": "huge"}\n', "labels.jsonl:1:1: error: unknown tier 'huge'"),
    ('just text\n', "labels.jsonl:1:1: error: a labelled task is a JSON object"),
    ('{"text": \n', "labels.jsonl:1:9: error: not valid JSON"),
    ('\n', "no labelled tasks"),
])
def test_accuracy_bad_labels_exit_2(run_cli, tmp_path: Path, content: str, message: str) -> None:
    labels = tmp_path / "labels.jsonl"
    labels.write_text(content, encoding="utf-8")
    code, _, err = run_cli("accuracy", str(labels), "--policy", POLICY)
    assert code == 2 and message in err.replace(str(tmp_path) + "/", "")


def test_accuracy_of_the_default_policy_on_the_dev_set(run_cli) -> None:
    """The CI gate as a command: `ctxbudget accuracy ../shared/data/complexity-dev.jsonl --min 0.8`."""
    from conftest import SHARED

    dev = SHARED / "data" / "complexity-dev.jsonl"
    if not dev.is_file():
        pytest.skip(f"the labelled dev set is not beside the repository ({dev})")
    code, out, _ = run_cli("accuracy", str(dev), "--min", "0.8", "--json")
    assert code == 0 and json.loads(out)["accuracy"] >= 0.8


def test_bench(run_cli, tmp_path: Path) -> None:
    code, out, _ = run_cli("bench", "--policy", POLICY, "--seconds", "0.05", "--json")
    result = json.loads(out)
    assert code == 0 and result["tasks"] == 62 and result["signals"] == 7
    assert result["calls"] >= 60 and 0 < result["p50_us"] <= result["p99_us"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Show dbt models\nTroubleshoot it\n", encoding="utf-8")
    code, out, _ = run_cli("bench", "--corpus", str(corpus), "--policy", POLICY, "--seconds", "0.05")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[0].startswith(f"{POLICY}: 7 signals, compiled in ")
    assert lines[1] == f"{corpus}: 2 tasks, 15 characters on average"
    assert " tasks/s over " in lines[2] and " µs per task" in lines[2]
    code, _, err = run_cli("bench", "--seconds", "0", "--policy", POLICY)
    assert code == 2 and "--seconds" in err


def test_detect_batch_shows_progress_only_on_a_terminal(run_cli, tmp_path, monkeypatch) -> None:
    """A large --batch file gets a progress bar on a terminal (stderr); piped output gets nothing extra."""
    from engine.cli import output, progress

    tasks = tmp_path / "tasks.txt"
    tasks.write_text("List all dbt models\n" * 4500)
    calls: list = []

    class Recorder:
        def __init__(self, enabled: bool, description: str):
            self.enabled = enabled
            calls.append(("bar", enabled, description))

        def __enter__(self):
            return (lambda done, total: calls.append((done, total))) if self.enabled else None

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(progress, "progress_bar", Recorder)
    code, out, _ = run_cli("detect", "--batch", str(tasks), "--policy", "default")
    assert code == 0 and len(out.splitlines()) == 4500
    assert calls == [("bar", False, f"detecting {tasks}")]
    calls.clear()
    monkeypatch.setattr(output, "fancy", lambda: True)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True, raising=False)
    code, out, _ = run_cli("detect", "--batch", str(tasks), "--policy", "default")
    size = tasks.stat().st_size
    assert code == 0 and len(out.splitlines()) == 4500
    assert calls[0] == ("bar", True, f"detecting {tasks}")
    assert calls[1:] == [(2000 * 20, size), (4000 * 20, size), (size, size)]
