"""The usage commands end to end: log, analyze, recommend, apply, report — whole outputs, and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.resources import bundled_policy
from usage_synth import write_known_log

TINY = Path(__file__).parent / "data" / "usage-tiny.jsonl"  # 4 runs (one in the seed's format), 1 bad line


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch):
    """A folder with a commented copy of the default policy as ./ctxbudget.yaml, and the tiny log."""
    for name in ("CTXBUDGET_POLICY", "CTXBUDGET_LOG", "NO_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    shutil.copy(bundled_policy("default"), tmp_path / "ctxbudget.yaml")
    shutil.copy(TINY, tmp_path / "tiny.jsonl")
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


SKIPPED = "tiny.jsonl:4: warning: skipped: not JSON (Expecting value: line 1 column 1 (char 0))\n"


def test_log(capsys, workdir):
    code, out, err = run(capsys, "log", "--agent", "dbt-expert", "--tier", "medium", "--tokens", "global=3200",
                         "--tokens", "agent_patterns=13000", "--log", "new.jsonl", "--duration", "2.5")
    assert (code, err) == (0, "")
    assert out == "specialists/dbt-expert @ medium: 16,200 of 20,000 tokens (81.0%) [info] → new.jsonl\n"
    [record] = [json.loads(line) for line in (workdir / "new.jsonl").read_text().splitlines()]
    del record["timestamp"], record["policy_hash"]
    assert record == {"agent": "specialists/dbt-expert", "profile": "specialist-narrow", "tier": "medium",
                      "budget": 20000, "tokens_loaded": 16200, "usage": 0.81, "exceeded": False,
                      "scopes": {"global": 3200, "agent_patterns": 13000}, "alerts": ["info"], "refused_tokens": 0,
                      "duration_s": 2.5, "success": True, "error": None,
                      # the optional provenance fields, unset by `log` (shared-record.md)
                      "tier_source": None, "confidence": None, "signals": [], "task_hash": None, "task": None,
                      "items": None, "run_id": None, "session_id": None}


def test_log_a_failed_run_as_json(capsys, workdir, monkeypatch):
    monkeypatch.setenv("CTXBUDGET_LOG", str(workdir / "env.jsonl"))
    code, out, _ = run(capsys, "log", "--agent", "aws-expert", "--task", "Analyze slow queries", "--tokens",
                       "global=60000", "--failed", "timed out", "--json")
    record = json.loads(out)
    assert code == 0 and (workdir / "env.jsonl").read_text().strip() == json.dumps(record, separators=(",", ":"))
    assert (record["tier"], record["budget"]) == ("complex", 52500)  # the tier detected from the task
    assert (record["success"], record["error"], record["exceeded"]) == (False, "timed out", True)


def test_analyze(capsys):
    code, out, err = run(capsys, "analyze", "--log", "tiny.jsonl")
    assert (code, err) == (0, SKIPPED)
    assert out == """\
tiny.jsonl: 4 runs of 2 agents; 1 line skipped
usage: mean 71.8 %, median 75.0 %, p90 105.0 %, max 105.0 %; over budget in 1 run (25.0 %); 1 failed

agents
agent                   profile            runs    mean  median      p90      max  over budget
----------------------  -----------------  ----  ------  ------  -------  -------  -----------
specialists/aws-expert  specialist-broad      1  77.2 %  77.2 %   77.2 %   77.2 %        0.0 %
specialists/dbt-expert  specialist-narrow     3  70.0 %  75.0 %  105.0 %  105.0 %       33.3 %

usage per tier
agent                   tier     runs    mean  over budget
----------------------  -------  ----  ------  -----------
specialists/aws-expert  medium      1  77.2 %        0.0 %
specialists/dbt-expert  medium      2  90.0 %       50.0 %
specialists/dbt-expert  complex     1  30.0 %        0.0 %

scopes: share of loaded tokens against the profile's weight (drift in points)
agent                   scope           tokens   share  weight  drift
----------------------  --------------  ------  ------  ------  -----
specialists/aws-expert  global           6,752  25.0 %  25.0 %   +0.0
specialists/aws-expert  agent_recent     6,751  25.0 %  25.0 %   +0.0
specialists/aws-expert  agent_patterns  13,503  50.0 %  50.0 %   +0.0
specialists/dbt-expert  global           9,000  20.0 %  20.0 %   +0.0
specialists/dbt-expert  agent_recent    13,500  30.0 %  30.0 %   +0.0
specialists/dbt-expert  agent_patterns  22,500  50.0 %  50.0 %   +0.0
"""


def test_analyze_json(capsys):
    code, out, _ = run(capsys, "analyze", "--log", "tiny.jsonl", "--agent", "dbt-expert", "--since", "2025-10-13",
                       "--json")
    data = json.loads(out)
    assert code == 0 and list(data) == ["log", "since", "until", "runs", "skipped_lines", "skipped", "overall",
                                        "agents", "tiers"]
    assert data["tiers"] is None  # per tier across agents: not with --agent
    assert (data["runs"], data["skipped_lines"], list(data["agents"])) == (3, 1, ["specialists/dbt-expert"])
    assert data["since"] == "2025-10-13T00:00:00+00:00"
    assert data["agents"]["specialists/dbt-expert"] == {
        "profile": "specialist-narrow", "known": True, "runs": 3, "mean_usage": 0.7, "median_usage": 0.75,
        "p90_usage": 1.05, "max_usage": 1.05, "exceeded": 1, "exceedance_rate": 0.3333, "failed": 1,
        "tokens_loaded": 45000,
        "tiers": {"medium": {"runs": 2, "mean_usage": 0.9, "exceeded": 1, "exceedance_rate": 0.5},
                  "complex": {"runs": 1, "mean_usage": 0.3, "exceeded": 0, "exceedance_rate": 0.0}},
        "scopes": {"global": {"tokens": 9000, "share": 0.2, "weight": 0.2, "drift": 0.0},
                   "agent_recent": {"tokens": 13500, "share": 0.3, "weight": 0.3, "drift": 0.0},
                   "agent_patterns": {"tokens": 22500, "share": 0.5, "weight": 0.5, "drift": 0.0}}}


def test_recommend(capsys, workdir):
    write_known_log(workdir / "known.jsonl")
    code, out, err = run(capsys, "recommend", "--log", "known.jsonl")
    assert (code, err) == (0, "")
    assert out == """\
agent                          profile            action             confidence  reason
-----------------------------  -----------------  -----------------  ----------  -------------------------------------------------------------------------------------------------------
roles/analytics-engineer-role  role-coordinator   maintain                 1.00  within thresholds: mean usage 79.9 %, over budget in 0 of 100 runs
specialists/aws-expert         specialist-broad   downgrade                1.00  mean usage 29.9 % over 50 runs (below 50.0 %); move to specialist-narrow
specialists/dbt-expert         specialist-narrow  upgrade                  0.99  over budget in 30 of 100 runs (30.0 %, above 20.0 %); move to specialist-broad
specialists/snowflake-expert   specialist-narrow  adjust-weights           1.00  agent_patterns takes 70.0 % of loaded tokens against a weight of 50.0 % (20.0 points off, more than 10)
specialists/tableau-expert     specialist-narrow  insufficient-data        0.00  5 runs; at least 10 needed

3 changes at confidence ≥ 0.7; this shows the policy edit:
  ctxbudget apply --policy ctxbudget.yaml --log known.jsonl --dry-run
"""


def test_recommend_json(capsys):
    code, out, _ = run(capsys, "recommend", "--log", "tiny.jsonl", "--json")
    data = json.loads(out)
    assert code == 0 and [(r["agent"], r["action"], r["confidence"], r["reason"]) for r in data] == [
        ("specialists/aws-expert", "insufficient-data", 0.0, "1 run; at least 10 needed"),
        ("specialists/dbt-expert", "insufficient-data", 0.0, "3 runs; at least 10 needed")]
    assert all(list(r) == ["agent", "profile", "action", "confidence", "reason", "evidence"] for r in data)


DIFF = """\
--- a/ctxbudget.yaml
+++ b/ctxbudget.yaml
@@ -23,7 +23,7 @@
     description: Single-tool specialists (for example snowflake-expert, dbt-expert)
     base: 20000
     max: 50000
-    weights: {global: 0.20, agent_recent: 0.30, agent_patterns: 0.50}
+    weights: {global: 0.10, agent_recent: 0.20, agent_patterns: 0.70}
   specialist-broad:
     description: Cross-tool specialists (for example data-quality-specialist, aws-expert)
     base: 35000
@@ -45,7 +45,7 @@
 agents:
   # specialist-narrow: 13 single-tool specialists
   specialists/snowflake-expert: specialist-narrow
-  specialists/dbt-expert: specialist-narrow
+  specialists/dbt-expert: specialist-broad
   specialists/tableau-expert: specialist-narrow
   specialists/prefect-expert: specialist-narrow
   specialists/orchestra-expert: specialist-narrow
@@ -58,7 +58,7 @@
   specialists/ui-ux-expert: specialist-narrow
   specialists/project-delivery-expert: specialist-narrow
   # specialist-broad: 3 cross-tool specialists
-  specialists/aws-expert: specialist-broad
+  specialists/aws-expert: specialist-narrow
   specialists/data-quality-specialist: specialist-broad
   specialists/cost-optimization-specialist: specialist-broad
   # role-coordinator: 7 roles that coordinate specialists
"""

CHANGES = """\
downgrade: specialists/aws-expert: specialist-broad → specialist-narrow (confidence 1.00)
upgrade: specialists/dbt-expert: specialist-narrow → specialist-broad (confidence 0.99)
adjust-weights: specialist-narrow weights: global 0.2→0.1, agent_recent 0.3→0.2, agent_patterns 0.5→0.7 \
(from specialists/snowflake-expert) (confidence 1.00)
"""


def test_apply(capsys, workdir):
    write_known_log(workdir / "known.jsonl")
    before = (workdir / "ctxbudget.yaml").read_text()
    code, out, err = run(capsys, "apply", "--log", "known.jsonl", "--dry-run")
    assert (code, out) == (0, DIFF + CHANGES + "dry run: nothing written\n")
    assert err.count("warning: golden example now fails") == 9
    assert (workdir / "ctxbudget.yaml").read_text() == before

    code, out, err = run(capsys, "apply", "--log", "known.jsonl")  # not a terminal: needs --yes
    assert code == 2 and out == DIFF and "not writing without --yes" in err
    assert (workdir / "ctxbudget.yaml").read_text() == before

    code, out, _ = run(capsys, "apply", "--log", "known.jsonl", "--yes")
    assert (code, out) == (0, DIFF + CHANGES + "wrote ctxbudget.yaml\n")
    assert run(capsys, "validate")[0] == 0

    code, out, _ = run(capsys, "apply", "--log", "known.jsonl", "--yes")  # the new profiles have no runs yet
    assert (code, out) == (0, "nothing to apply: no recommendation at confidence ≥ 0.7 changes ctxbudget.yaml\n")


def test_apply_json(capsys, workdir):
    write_known_log(workdir / "known.jsonl")
    code, out, _ = run(capsys, "apply", "--log", "known.jsonl", "--yes", "--json")
    data = json.loads(out)
    assert code == 0 and (data["written"], data["valid"], data["diff"]) == (True, True, DIFF)
    assert [c["action"] for c in data["changes"]] == ["downgrade", "upgrade", "adjust-weights"]


REPORT_WEEK = """\
# ctxbudget: Weekly usage report

7 days, 2025-10-08 00:00 to 2025-10-15 00:00 UTC · policy `ctxbudget.yaml` · log `tiny.jsonl`

**4 runs** of 2 agents · mean usage 71.8 % · median 75.0 % · p90 105.0 % · over budget in 1 run (25.0 %) \
· 1 failed · 1 log line skipped

## Agents

| Agent | Profile | Runs | Mean | Median | P90 | Max | Over budget |
|---|---|---:|---:|---:|---:|---:|---:|
| specialists/aws-expert | specialist-broad | 1 | 77.2 % | 77.2 % | 77.2 % | 77.2 % | 0.0 % |
| specialists/dbt-expert | specialist-narrow | 3 | 70.0 % | 75.0 % | 105.0 % | 105.0 % | 33.3 % |

## Usage per tier

| Tier | Runs | Mean | Over budget |
|---|---:|---:|---:|
| medium | 3 | 85.7 % | 33.3 % |
| complex | 1 | 30.0 % | 0.0 % |

## Watch list

No agent with 10 runs or more past the policy's thresholds.
"""


def test_report_week(capsys):
    code, out, err = run(capsys, "report", "--period", "week", "--log", "tiny.jsonl", "--until", "2025-10-15")
    assert (code, out, err) == (0, REPORT_WEEK, SKIPPED)


def test_report_month(capsys, workdir):
    write_known_log(workdir / "known.jsonl")
    code, out, _ = run(capsys, "report", "--period", "month", "--log", "known.jsonl", "--until", "2025-10-15")
    assert code == 0
    assert out.split("## Watch list\n\n")[1] == """\
- **specialists/aws-expert**: mean usage 29.9 % over 50 runs
- **specialists/dbt-expert**: over budget in 30 of 100 runs (30.0 %)

## Recommendations

| Agent | Profile | Action | Confidence | Reason |
|---|---|---|---:|---|
| roles/analytics-engineer-role | role-coordinator | maintain | 1.00 | within thresholds: mean usage 79.9 %, over budget in 0 of 100 runs |
| specialists/aws-expert | specialist-broad | downgrade | 1.00 | mean usage 29.9 % over 50 runs (below 50.0 %); move to specialist-narrow |
| specialists/dbt-expert | specialist-narrow | upgrade | 0.99 | over budget in 30 of 100 runs (30.0 %, above 20.0 %); move to specialist-broad |
| specialists/snowflake-expert | specialist-narrow | adjust-weights | 1.00 | agent_patterns takes 70.0 % of loaded tokens against a weight of 50.0 % (20.0 points off, more than 10) |
| specialists/tableau-expert | specialist-narrow | insufficient-data | 0.00 | 5 runs; at least 10 needed |

To see the changes at confidence ≥ 0.7 as an edit of the policy: `ctxbudget apply --policy ctxbudget.yaml --log \
known.jsonl --since 2025-09-15T00:00:00Z --until 2025-10-15T00:00:00Z --dry-run`; to write them, run it with `--yes` \
for `--dry-run`.
"""


def test_report_json(capsys):
    code, out, _ = run(capsys, "report", "--period", "month", "--log", "tiny.jsonl", "--until", "2025-10-15",
                       "--format", "json")
    data = json.loads(out)
    assert code == 0 and list(data) == ["period", "since", "until", "policy", "log", "analysis", "watch",
                                        "recommendations"]
    assert (data["since"], data["analysis"]["runs"], data["analysis"]["skipped_lines"], len(data["recommendations"])) \
        == ("2025-09-15T00:00:00+00:00", 4, 1, 2)


@pytest.mark.parametrize("argv, code, message", [
    (["analyze", "--log", "missing.jsonl"], 2, "the usage log missing.jsonl does not exist"),
    (["analyze", "--log", "/dev"], 2, "cannot read the usage log /dev: no *.jsonl or *.parquet files in the folder"),
    (["analyze", "--log", "tiny.jsonl", "--since", "last tuesday"], 2, "not a date"),
    (["analyze", "--log", "tiny.jsonl", "--days", "0"], 2, "must be at least 1"),
    (["analyze", "--log", "tiny.jsonl", "--agent", "dbt-exprt"], 1, "unknown agent 'dbt-exprt'"),
    (["recommend", "--log", "tiny.jsonl", "--policy", "nope.yaml"], 2, "nope.yaml"),
    (["apply", "--log", "tiny.jsonl", "--policy", "default", "--yes"], 2, "is a bundled policy"),
    (["report", "--period", "year", "--log", "tiny.jsonl"], 2, "invalid choice"),
    (["log", "--agent", "dbt-expert", "--tier", "medium", "--tokens", "global"], 2, "expected SCOPE=N"),
    (["log", "--agent", "dbt-expert", "--tokens", "global=1"], 2, "one of the arguments --tier --task"),
    (["log", "--agent", "dbt-expert", "--tier", "huge", "--tokens", "global=1"], 1, "unknown tier 'huge'"),
])
def test_bad_input_is_a_clear_error(capsys, argv, code, message):
    try:
        got = main(argv)
    except SystemExit as exc:  # argparse
        got = exc.code
    err = capsys.readouterr().err
    assert got == code and message in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [
    ["analyze", "--days", "1000000"], ["analyze", "--days", "99999999999"], ["analyze", "--days", str(10 ** 40)],
    ["recommend", "--days", "99999999999"], ["export", "--to", "out", "--days", "99999999999"],
])
def test_more_days_than_the_calendar_holds_means_every_run(capsys, argv):
    # --days past year 1 was an OverflowError traceback (timedelta / datetime out of range): it is every run.
    code, out, err = run(capsys, *argv, "--log", "tiny.jsonl", "--json")
    assert code == 0 and "Traceback" not in err
    if argv[0] == "analyze":
        assert (json.loads(out)["runs"], json.loads(out)["since"]) == (4, None)


@pytest.mark.parametrize("period", ["week", "month"])
def test_a_report_ending_in_the_first_days_of_the_calendar_starts_at_its_first_day(capsys, period):
    code, out, err = run(capsys, "report", "--period", period, "--until", "0001-01-02", "--log", "tiny.jsonl",
                         "--json")
    assert code == 0 and "Traceback" not in err  # was an OverflowError traceback (until - 7 days)
    data = json.loads(out)
    assert (data["since"], data["until"], data["analysis"]["runs"]) == (
        "0001-01-01T00:00:00+00:00", "0001-01-02T00:00:00+00:00", 0)


def test_a_broken_rule_is_a_policy_error(capsys, workdir):
    (workdir / "ctxbudget.yaml").write_text(
        "extends: default\nrecommendations:\n  rules:\n    - {action: upgrade, when: \"stats.drift.nope > 1\"}\n")
    code, out, err = run(capsys, "recommend", "--log", "tiny.jsonl")
    assert code == 1 and out == ""
    assert "ctxbudget.yaml:4:31: error: recommendation rule 1, when: no such key: 'nope'" in err
    assert err.endswith("[recommendation-rule]\n")


@pytest.mark.parametrize("stdout_tty, stderr_tty, json_flag, shown", [
    (True, True, False, True),
    (False, True, False, False),  # piped
    (True, False, False, False),
    (True, True, True, False),  # --json
])
def test_a_progress_bar_only_on_a_terminal(monkeypatch, stdout_tty, stderr_tty, json_flag, shown):
    import argparse
    import sys

    from engine.cli.log_options import show_progress

    monkeypatch.setattr(sys.stdout, "isatty", lambda: stdout_tty)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: stderr_tty)
    monkeypatch.delenv("TERM", raising=False)
    # issue 9: one --format option (--json is its alias), so the flag is args.format, not args.json
    assert show_progress(argparse.Namespace(format="json" if json_flag else "text")) is shown


class _Stream:
    """A text stream that says whether it is a terminal, and keeps what is written to it."""

    def __init__(self, tty: bool):
        self.tty, self.parts = tty, []

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        self.parts.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    @property
    def text(self) -> str:
        return "".join(self.parts)


@pytest.mark.parametrize("tty", [True, False])
def test_what_the_progress_bar_writes(monkeypatch, tty: bool):
    """On a terminal: nothing until the first advance, then a bar on stderr with the description and the bytes
    read, erased when done (transient). Not on a terminal: nothing at all, on either stream."""
    import argparse
    import re
    import sys

    from engine.cli.log_options import show_progress
    from engine.cli.progress import progress_bar

    out, err = _Stream(tty), _Stream(tty)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    enabled = show_progress(argparse.Namespace(json=False))
    assert enabled is tty
    with progress_bar(enabled, "reading usage.jsonl") as advance:
        assert (advance is not None) is tty
        assert err.text == ""  # the bar starts at the first advance
        if advance is not None:
            advance(10, 100)
            advance(100, 100)
    assert out.text == ""
    if not tty:
        assert err.text == ""
        return
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", err.text)
    assert err.text.startswith("\x1b[?25l")  # cursor hidden while the bar is drawn ...
    after = err.text.rsplit("100/100 bytes", 1)[1]
    assert "\x1b[?25h" in after and after.endswith("\x1b[2K")  # ... shown again, and the bar's line erased
    assert "reading usage.jsonl ━" in plain and "100/100 bytes" in plain


def test_apply_writes_nothing_when_the_edit_would_not_validate(capsys, workdir, monkeypatch):
    from engine import apply
    from engine.diagnostics import Problem

    write_known_log(workdir / "known.jsonl")
    before = (workdir / "ctxbudget.yaml").read_text()
    broken = Problem("ctxbudget.yaml", 48, 27, "unknown-profile", "agent 'x' is assigned to unknown profile 'y'")
    monkeypatch.setattr(apply, "validate_text", lambda path, text, label: ([broken], None))
    code, out, err = run(capsys, "apply", "--log", "known.jsonl", "--yes")
    assert (code, out) == (1, "")
    assert err == (f"{broken.format()}\n"
                   "ctxbudget: error: the edited policy would not validate; ctxbudget.yaml is unchanged\n")
    assert (workdir / "ctxbudget.yaml").read_text() == before


def test_analyze_says_one_run_of_one_agent(run_cli, tmp_path) -> None:
    log = tmp_path / "one.jsonl"
    code, _, _ = run_cli("log", "--agent", "dbt-expert", "--tier", "complex", "--tokens", "global=5000",
                         "--log", str(log))
    assert code == 0
    code, out, _ = run_cli("analyze", "--log", str(log))
    assert code == 0 and out.splitlines()[0] == f"{log}: 1 run of 1 agent"


# -- issue 8: hostile logs, the zone of --since, names only the log knows, commands that work -----------------

HOSTILE = Path(__file__).parent / "data" / "usage-hostile.jsonl"


@pytest.mark.parametrize("argv", [["analyze"], ["analyze", "--json"], ["recommend"], ["report", "--period", "week",
                                  "--until", "2025-10-20"], ["report", "--period", "month", "--until", "2025-10-20"]])
def test_hostile_records_are_skipped_not_fatal(capsys, argv):
    code, out, err = run(capsys, *argv, "--log", str(HOSTILE))
    assert code == 0 and "Traceback" not in err
    assert err.count("warning: skipped:") == 6 and "usage-hostile.jsonl:6: warning: skipped: not a JSON object" in err


def test_the_report_says_one_run_of_one_agent(capsys, workdir):
    (workdir / "one.jsonl").write_text(TINY.read_text().splitlines()[0] + "\n")
    code, out, _ = run(capsys, "report", "--period", "week", "--log", "one.jsonl", "--until", "2025-10-15")
    assert code == 0 and "**1 run** of 1 agent · mean usage 75.0 %" in out


@pytest.mark.parametrize("argv, shown", [
    (["analyze", "--since", "2025-10-14T12:00:00+02:00"], "since 2025-10-14 10:00 UTC"),
    (["analyze", "--since", "2025-10-13T05:00-05:00", "--until", "2025-10-14T13:00+02:00"],
     "since 2025-10-13 10:00 UTC until 2025-10-14 11:00 UTC"),
    (["report", "--period", "week", "--until", "2025-10-15T02:00:00+02:00"], "2025-10-08 00:00 to 2025-10-15 00:00 UTC"),
])
def test_times_with_a_zone_are_shown_in_utc(capsys, argv, shown):
    code, out, _ = run(capsys, *argv, "--log", "tiny.jsonl")
    assert code == 0 and shown in out.splitlines()[0] + out.splitlines()[min(2, len(out.splitlines()) - 1)]


def test_until_bounds_the_runs(capsys):
    code, out, _ = run(capsys, "analyze", "--log", "tiny.jsonl", "--since", "2025-10-13T05:00-05:00", "--until",
                       "2025-10-14T13:00+02:00", "--json")
    data = json.loads(out)
    assert code == 0 and data["runs"] == 1 and data["until"] == "2025-10-14T13:00:00+02:00"


def test_an_agent_only_in_the_log_by_short_name(capsys, workdir):
    line = TINY.read_text().splitlines()[0].replace("specialists/dbt-expert", "specialists/looker-expert")
    (workdir / "looker.jsonl").write_text(line + "\n")
    code, out, _ = run(capsys, "analyze", "--log", "looker.jsonl", "--agent", "looker-expert", "--json")
    assert code == 0 and list(json.loads(out)["agents"]) == ["specialists/looker-expert"]


def _suggested(out: str) -> str:
    return out.split("policy: `")[1].split("`;")[0]


def _shell(command: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run ``command`` as a user would, with this interpreter's ctxbudget first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CTXBUDGET_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_monthly_reports_apply_command_works(capsys, workdir):
    write_known_log(workdir / "known.jsonl")
    code, out, _ = run(capsys, "report", "--period", "month", "--log", "known.jsonl", "--until", "2025-10-15")
    command = _suggested(out)
    assert "--log known.jsonl" in command and "--policy ctxbudget.yaml" in command
    done = _shell(command, workdir)
    assert done.returncode == 0, done.stderr
    assert done.stdout == DIFF + CHANGES + "dry run: nothing written\n"


def test_the_monthly_reports_apply_command_works_with_the_bundled_policy(capsys, workdir):
    (workdir / "ctxbudget.yaml").unlink()
    write_known_log(workdir / "known.jsonl")
    code, out, _ = run(capsys, "report", "--period", "month", "--log", "known.jsonl", "--until", "2025-10-15",
                       "--policy", "default")
    command = _suggested(out)
    done = _shell(command, workdir)
    assert done.returncode == 0, done.stderr
    assert "specialists/dbt-expert: specialist-narrow → specialist-broad" in done.stdout
    assert (workdir / "ctxbudget.yaml").read_text() == "extends: default\n"


def test_recommend_counts_the_changes_apply_makes(capsys, workdir):
    """The largest profile has nowhere to go: recommend says upgrade but counts no change, as apply does."""
    from usage_synth import native_record, START

    budget = 75000
    records = [native_record(START, "roles/research-role", "role-architect", budget, int(budget * 1.2),
                             {"global": int(budget * 1.2)}) for _ in range(30)]
    (workdir / "big.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    code, out, _ = run(capsys, "recommend", "--log", "big.jsonl")
    assert code == 0 and "upgrade" in out and "change" not in out.split("\n\n")[-1]
    code, out, _ = run(capsys, "apply", "--log", "big.jsonl", "--dry-run")
    assert code == 0 and out.endswith("nothing to apply: no recommendation at confidence ≥ 0.7 changes "
                                      "ctxbudget.yaml\n")


@pytest.mark.parametrize("argv", [["analyze"], ["analyze", "--json"], ["recommend", "--json"],
                                  ["report", "--period", "week", "--until", "2025-10-15"]])
def test_both_readers_print_the_same(capsys, monkeypatch, argv):
    """DuckDB's JSON reader (the default for local files) and its line-by-line reader (remote logs, and
    logs the JSON reader cannot vouch for) print the same."""
    from engine.analytics import duck

    fast = run(capsys, *argv, "--log", "tiny.jsonl")
    monkeypatch.setattr(duck, "FAST", False)
    lines = run(capsys, *argv, "--log", "tiny.jsonl")
    assert fast == lines


def test_the_scanner_engine_is_gone(run_cli, workdir):
    code, _, err = run_cli("analyze", "--log", "tiny.jsonl", "--engine", "scan")
    assert code == 2 and "invalid choice: 'scan'" in err
