"""`ctxbudget pack` and `ctxbudget index`: whole outputs on the sample store, errors, the usage record."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.resources import sample_memory_dir

SAMPLE = sample_memory_dir()
TASK = "Why is fct_orders slow in the incremental run?"


@pytest.fixture
def lexical_policy(tmp_path: Path) -> str:
    """The default policy ranking by lexical relevance alone (scores that do not change with the clock)."""
    path = tmp_path / "lexical.yaml"
    path.write_text('version: 1\nextends: default\nmemory:\n  relevance: "lexical + (agent_specific ? 0.1 : 0.0)"\n',
                    encoding="utf-8")
    return str(path)


def test_pack_paths_whole_output(run_cli, lexical_policy: str) -> None:
    code, out, err = run_cli("pack", "--agent", "dbt-expert", "--tier", "simple", "--task", TASK, "--root", SAMPLE,
                             "--budget", "1500", "--format", "paths", "--no-log", "--policy", lexical_policy)
    assert (code, err) == (0, "")
    assert out == """\
recent/2026-11-incident-orders-late.md
patterns/cost-guardrails.md
recent/2026-10-dbt-upgrade.md
specialists/dbt-expert/recent/2026-11-orders-slow.md
specialists/dbt-expert/recent/2026-10-semantic-layer.md
specialists/dbt-expert/recent/2026-11-test-failures.md
specialists/dbt-expert/intermediate/open-questions.md
specialists/dbt-expert/intermediate/refactor-plan.md
specialists/dbt-expert/patterns/performance-tuning.md
specialists/dbt-expert/patterns/incremental-models.md
specialists/dbt-expert/patterns/dbt-style-guide.md
specialists/dbt-expert/patterns/snapshots.md
"""


def test_pack_json_manifest(run_cli, lexical_policy: str) -> None:
    code, out, err = run_cli("pack", "--agent", "dbt-expert", "--task", "How do we declare exposures for dashboards?",
                             "--tier", "simple", "--root", SAMPLE, "--budget", "1000", "--json", "--no-log",
                             "--policy", lexical_policy)
    assert (code, err) == (0, "")
    manifest = json.loads(out)
    for item in manifest["loaded"]:
        assert set(item) == {"path", "section", "scope", "tokens", "file_tokens", "score", "why"}
        del item["why"]  # it quotes each file's age
    assert manifest["budget"] == 1000 and manifest["tokens"] == 986 and manifest["root"] == SAMPLE
    assert manifest["scopes"] == {"global": {"allowance": 200, "used": 179, "spilled": 0},
                                  "agent_recent": {"allowance": 300, "used": 270, "spilled": 0},
                                  "agent_patterns": {"allowance": 500, "used": 537, "spilled": 126}}
    assert manifest["provenance"] == {"tier_source": "given", "confidence": None, "signals": [],
                                      "task_hash": "sha256:353ac1cad9e921fb", "run_id": None, "session_id": None}
    assert [(i["path"].rsplit("/", 1)[1], i["section"], i["tokens"]) for i in manifest["loaded"]] == [
        ("data-quality-checks.md", None, 116),
        ("2026-10-dbt-upgrade.md", None, 63),
        ("open-questions.md", None, 67),
        ("refactor-plan.md", None, 60),
        ("2026-10-semantic-layer.md", None, 62),
        ("2026-11-orders-slow.md", None, 81),
        ("dbt-style-guide.md", "Exposures", 328),  # the relevant section of a file split at its headings
        ("macros-and-jinja.md", None, 83),
        ("performance-tuning.md", None, 126),  # spilled: unused allowance of the other scopes
    ]
    # lexical is BM25 scaled to the best match of the pack (the Exposures section), + 0.1 for the agent's own files
    assert [i["score"] for i in manifest["loaded"]] == pytest.approx([0.16, 0, 0.1, 0.1, 0.1, 0.1, 1.1, 0.1, 0.1],
                                                                     abs=0.03)
    assert manifest["loaded"][6] == {"path": "specialists/dbt-expert/patterns/dbt-style-guide.md",
                                     "section": "Exposures", "scope": "agent_patterns", "tokens": 328,
                                     "file_tokens": 3615, "score": 1.1}
    assert {"path": "specialists/dbt-expert/patterns/dbt-style-guide.md", "section": "Sources",
            "reason": "does not fit (350 tokens; 89 left of agent_patterns's 500)"} in manifest["skipped"]
    assert len(manifest["skipped"]) == 22
    assert manifest["warnings"] == []


def test_pack_markdown_and_the_sample_fallback(run_cli, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./.claude/memory here
    monkeypatch.setenv("CTXBUDGET_LOG", str(tmp_path / "usage.jsonl"))
    code, out, err = run_cli("pack", "--agent", "snowflake-expert", "--task", "Reduce warehouse credit cost")
    assert code == 0
    assert err == (f"ctxbudget: ./.claude/memory does not exist; packing the sample memory store ({SAMPLE}). "
                   "Use --root DIR for yours.\n")
    assert out.startswith("# Memory for specialists/snowflake-expert (")
    assert "\n## specialists/snowflake-expert/patterns/warehouse-sizing.md\n<!-- scope agent_patterns, " in out
    assert "dbt-expert/" not in out and "data-architect" not in out
    [record] = [json.loads(line) for line in (tmp_path / "usage.jsonl").read_text().splitlines()]
    assert record["agent"] == "specialists/snowflake-expert" and record["tier_source"] == "detected"
    assert record["items"] == out.count("\n<!-- scope ")


def test_pack_explain(run_cli, lexical_policy: str) -> None:
    code, out, err = run_cli("pack", "--agent", "dbt-expert", "--tier", "simple", "--task", TASK, "--root", SAMPLE,
                             "--budget", "1500", "--explain", "--no-log", "--policy", lexical_policy)
    assert code == 0
    lines = out.splitlines()
    assert lines[:6] == [
        "specialists/dbt-expert: 1,476 of 1,500 tokens loaded — tier simple (given), 12 items, 19 skipped",
        "scope           allowance  used  spilled",
        "--------------  ---------  ----  -------",
        "global                300   291        0",
        "agent_recent          450   363        0",
        "agent_patterns        750   822       98",
    ]
    assert lines[9].split()[:4] == ["global", "124", "0.350", "recent/2026-11-incident-orders-late.md"]
    assert lines[-1].endswith("; spilled")


def test_pack_explain_with_json_prints_the_manifest(run_cli, lexical_policy: str) -> None:
    """--format json is for machines: --explain does not turn it into the text table (the manifest's loaded items
    carry the score and why the table shows)."""
    argv = ("pack", "--agent", "dbt-expert", "--tier", "simple", "--task", TASK, "--root", SAMPLE, "--budget", "1500",
            "--no-log", "--policy", lexical_policy, "--format", "json")
    code, out, err = run_cli(*argv, "--explain")
    assert (code, err) == (0, "")
    assert (code, out, err) == run_cli(*argv)
    manifest = json.loads(out)
    assert manifest["tokens"] == 1476 and all({"score", "why"} <= set(item) for item in manifest["loaded"])


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--agent", "dbt-expert", "--task", "x", "--root", "/nonexistent/memory"], 2,
     "ctxbudget: error: --root /nonexistent/memory: no such folder\n"),
    (["--agent", "dbt-expert"], 2, "ctxbudget: error: pack needs --task TEXT or --tier TIER (or both)\n"),
    (["--agent", "dbt-exprt", "--tier", "simple"], 1, "ctxbudget: error: unknown agent 'dbt-exprt'"),
    (["--agent", "dbt-expert", "--tier", "simple", "--budget", "-5"], 2, "a budget cannot be negative"),
    (["--agent", "dbt-expert", "--tier", "simple", "--budget", str(2**53)], 2, "a budget is at most 9,007,199,"),
    (["--agent", "dbt-expert", "--tier", "simple", "--index-seconds", "soon"], 2, "not a number of seconds: 'soon'"),
    (["--agent", "dbt-expert", "--tier", "simple", "--index-seconds", "nan"], 2, "seconds must be from 0 to 86400"),
    (["--agent", "dbt-expert", "--tier", "simple", "--index-seconds", "-1"], 2, "seconds must be from 0 to 86400"),
])
def test_pack_errors(run_cli, args: list[str], code: int, message: str) -> None:
    got, out, err = run_cli("pack", *args, "--no-log")
    assert got == code and out == ""
    assert message in err
    assert "Traceback" not in err


def test_pack_errors_in_json(run_cli) -> None:
    code, out, err = run_cli("pack", "--agent", "dbt-expert", "--tier", "simple", "--root", "/nonexistent/memory",
                             "--json", "--no-log")
    assert code == 2
    assert json.loads(out)["error"]["message"] == "--root /nonexistent/memory: no such folder"


def test_a_failed_usage_record_does_not_lose_the_pack(run_cli, tmp_path: Path) -> None:
    (tmp_path / "log.jsonl").mkdir()  # a folder where the log should be
    code, out, err = run_cli("pack", "--agent", "dbt-expert", "--tier", "simple", "--root", SAMPLE, "--format", "paths",
                             "--log", str(tmp_path / "log.jsonl"))
    assert code == 0 and out.count("\n") > 3
    assert err.startswith(f"ctxbudget: warning: cannot write the usage record to {tmp_path / 'log.jsonl'}: ")


def test_index_whole_output(run_cli, tmp_path: Path) -> None:
    root = tmp_path / "memory"
    (root / "patterns").mkdir(parents=True)
    (root / "patterns" / "a.md").write_text("# A\n\norders are late\n", encoding="utf-8")
    (root / "patterns" / "b.md").write_bytes(b"\0\0binary")
    code, out, err = run_cli("index", "--root", str(root), "--json")
    assert (code, err) == (0, "")
    result = json.loads(out)
    assert result.pop("index").endswith(".sqlite")
    assert result == {"root": str(root), "files": 2, "indexed": 2, "sections": 1, "tokens": 5, "changed": 2,
                      "removed": 0, "bytes_read": 29, "rebuilt": False, "skipped": [], "corrupt_sidecars": []}
    code, out, err = run_cli("index", "--root", str(root))
    assert code == 0
    assert out.splitlines()[1] == "0 read, 0 removed (0 bytes) in " + out.splitlines()[1].split(" in ")[1]


def test_index_of_the_sample(run_cli) -> None:
    code, out, _ = run_cli("index", "--root", SAMPLE, "--json")
    result = json.loads(out)
    assert code == 0 and result["files"] == result["indexed"] == 38 and result["sections"] > 38


def test_pack_touch(run_cli, tmp_path: Path) -> None:
    root = tmp_path / "memory"
    (root / "patterns").mkdir(parents=True)
    (root / "patterns" / "a.md").write_text("orders\n", encoding="utf-8")
    (root / "patterns" / "a.metadata.json").write_text('{"use_count": 2}', encoding="utf-8")
    code, _, _ = run_cli("pack", "--agent", "dbt-expert", "--tier", "simple", "--root", str(root), "--touch",
                         "--no-log")
    assert code == 0
    assert json.loads((root / "patterns" / "a.metadata.json").read_text())["use_count"] == 3


PROBE = """
import sys, io, contextlib
from engine.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(code, sorted(m for m in sys.modules if m in ("sqlite3", "_sqlite3", "engine.pack", "engine.pack.packer",
                                                   "engine.pack.index", "lark", "ruamel", "jsonschema", "rich")))
"""


@pytest.mark.parametrize(("args", "expected"), [
    (["budget", "dbt-expert", "complex"], "0 []"),
    (["pack", "--agent", "dbt-expert", "--tier", "simple", "--root", SAMPLE, "--no-log"],
     # SQLite's C module only: sqlite3's package would import datetime for its adapters (engine/pack/index.py)
     "0 ['_sqlite3', 'engine.pack', 'engine.pack.index', 'engine.pack.packer']"),
])
def test_what_a_warm_command_imports(args: list[str], expected: str, tmp_path: Path) -> None:
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path), "NO_COLOR": "1"}
    env.pop("CTXBUDGET_POLICY", None)
    for _ in range(2):  # the first run fills the policy cache
        done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True,
                              timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_a_cut_off_sidecar_is_corrupt_in_a_fresh_process(tmp_path: Path) -> None:
    """A process that has not imported json reads a sidecar cut off mid-string: corrupt, ignored, said (CPython
    3.11's JSON scanner raised a SystemError there, and `pack` ended in a traceback; in-process tests have json)."""
    import shutil

    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path / "cache"), "NO_COLOR": "1"}
    env.pop("CTXBUDGET_POLICY", None)
    for store in ("warm-up", "memory"):  # the first fills the policy cache: the second start is warm, without json
        root = tmp_path / store
        shutil.copytree(SAMPLE, root)
        (root / "patterns" / "sql-style.metadata.json").write_text('{"use_count": 3, "last_used": "2026-11',
                                                                   encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "engine", "pack", "--agent", "dbt-expert", "--tier", "simple",
                               "--root", str(root), "--no-log", "--format", "paths"], env=env, capture_output=True,
                              text=True, timeout=60)
        assert (done.returncode, done.stderr) == (0, "ctxbudget: warning: patterns/sql-style.md: corrupt sidecar "
                                                     "ignored\n")
    assert "patterns/sql-style.md" in done.stdout.splitlines()


def test_the_sample_store_ships_in_the_wheel() -> None:
    import tomllib

    from conftest import ROOT

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"]["engine.examples"] == "examples" and "engine.examples" in config["packages"]
    assert config["package-data"]["engine.examples"] == ["memory/**/*.md", "memory/**/*.json"]
    files = list(Path(SAMPLE).rglob("*"))
    assert {p.suffix for p in files if p.is_file()} == {".md", ".json"}
    markdown = [p for p in files if p.suffix == ".md"]
    assert 30 <= len(markdown) <= 60
    parts = [p.relative_to(SAMPLE).parts for p in markdown]
    agents = {part[1] for part in parts if part[0] in ("specialists", "roles")}
    assert agents == {"dbt-expert", "snowflake-expert", "data-architect-role"}


HOSTILE_MEMORY = "# \x1b]0;pwned\x07Title\x1b]52;c;ZWNobyBwd25lZA==\x07\n\nbody\tabout dbt \x1b[31mred\x1b[0m\r\nand \u202ereversed\n"


@pytest.mark.parametrize("terminal", [True, False])
def test_pack_markdown_on_a_terminal_shows_escape_sequences_instead_of_obeying_them(
        run_cli, tmp_path: Path, monkeypatch, terminal: bool) -> None:
    # A memory file from a shared root could set the window title, clear the screen, or write the clipboard
    # (OSC 52) of whoever ran `ctxbudget pack` on a terminal. Piped (to an agent), the text is unchanged.
    root = tmp_path / "memory"
    (root / "patterns").mkdir(parents=True)
    (root / "patterns" / "a.md").write_bytes(HOSTILE_MEMORY.encode("utf-8"))
    monkeypatch.setattr(sys.stdout, "isatty", lambda: terminal)
    code, out, _ = run_cli("pack", "--agent", "dbt-expert", "--tier", "simple", "--root", str(root), "--no-log")
    assert code == 0
    if terminal:
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
        assert "\\x1b]52;c;ZWNobyBwd25lZA==\\x07" in out and "\\u202ereversed" in out
        assert "body\tabout dbt" in out  # tabs and line ends stay as they are
    else:
        assert "\x1b]52;c;ZWNobyBwd25lZA==\x07" in out and "\u202ereversed" in out


def test_pack_within_an_index_time_limit_says_it_is_partial_and_the_next_goes_on(run_cli, tmp_path: Path,
                                                                                  lexical_policy: str) -> None:
    import shutil

    root = tmp_path / "memory"
    shutil.copytree(SAMPLE, root)  # a root never indexed
    args = ["pack", "--agent", "dbt-expert", "--tier", "simple", "--task", TASK, "--root", str(root), "--budget",
            "1500", "--json", "--no-log", "--policy", lexical_policy]
    code, out, err = run_cli(*args, "--index-seconds", "0")
    warning = ("memory index not checked in full (its refresh stopped at the time limit before walking every "
               "folder); packed from what is indexed, the next pack goes on")
    assert (code, err) == (0, f"ctxbudget: warning: {warning}\n")
    manifest = json.loads(out)
    assert manifest["warnings"] == [warning] and manifest["loaded"] == [] and manifest["tokens"] == 0
    code, out, err = run_cli(*args)  # no limit: indexes to the end
    assert (code, err) == (0, "")
    manifest = json.loads(out)
    assert manifest["warnings"] == [] and manifest["tokens"] == 1476
    code, again, err = run_cli(*args, "--index-seconds", "60")  # nothing left to read: the same pack, complete
    assert (code, err, again) == (0, "", out)
