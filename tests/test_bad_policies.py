"""Every bad input in tests/data/bad/ is rejected with its expected rule at its expected line.

A file says what it expects on its first line (``# expect: RULE line N``); files that cannot carry a comment
are listed in EXPECTED.txt. A file without an expectation fails the suite, so no input goes unchecked.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from conftest import DATA
from engine.policy import check_policy

BAD = DATA / "bad"


def _expectations() -> dict[str, tuple[str, int]]:
    found: dict[str, tuple[str, int]] = {}
    for line in (BAD / "EXPECTED.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, rule, lineno = line.split()
            found[name] = (rule, int(lineno))
    for path in sorted(BAD.iterdir()):
        if path.name == "EXPECTED.txt" or path.name in found:
            continue
        first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8", "replace")
        match = re.fullmatch(r"# expect: ([a-z0-9-]+) line (\d+)", first.strip())
        assert match, f"{path.name}: no '# expect: RULE line N' first line and not in EXPECTED.txt"
        found[path.name] = (match.group(1), int(match.group(2)))
    return found


EXPECTED = _expectations()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_policy_is_rejected_at_its_line(name: str) -> None:
    rule, line = EXPECTED[name]
    path = BAD / name
    tracemalloc.start()
    try:
        problems, policy = check_policy(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert policy is None
    # A cycle is reported where it closes, which may be another file of the chain.
    here = [p for p in problems if Path(p.path).name == name or p.rule == "extends-cycle"]
    assert (rule, line) in [(p.rule, p.line) for p in here], [p.format() for p in problems]
    assert peak < 64 * 2**20, f"{name}: peak memory {peak / 2**20:.0f} MiB"


def test_every_rule_has_a_bad_input() -> None:
    from engine.policy import rule_registry

    RULES = rule_registry()

    covered = {rule for rule, _ in EXPECTED.values()}
    generated = {"file-too-large"}  # 10 MB: made on the fly below, not kept in git
    generated |= {"pattern-set-too-large"}  # tests/test_signal_rules.py, under a small memory budget
    task_files = {"task-json", "task-shape", "task-label", "task-encoding", "task-too-long"}  # not policies: tests/test_taskfile.py
    assert set(RULES) - covered - generated - task_files - {"schema-*"} == set()


def test_ten_megabyte_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# a large file\n" + b"k: v\n" * (10 * 2**20 // 5))
    problems, _ = check_policy(big)
    assert [(p.rule, p.line) for p in problems] == [("file-too-large", 1)]


def test_cli_reports_every_bad_input_without_a_traceback(tmp_path: Path) -> None:
    """One subprocess over all the files: exit 1, one line per problem, nothing on stderr that looks like Python."""
    files = [str(BAD / name) for name in sorted(EXPECTED)]
    big = tmp_path / "big.yaml"
    big.write_bytes(b"k: v\n" * (10 * 2**20 // 5))
    done = subprocess.run([sys.executable, "-m", "engine", "validate", *files, str(big)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stdout.splitlines()
    for name in EXPECTED:
        assert any(name in line and ": error: " in line for line in lines), name
    pattern = re.compile(r"^\S.*:\d+:\d+: (error|warning): .+ \[[a-z0-9*-]+\]$|^.*: \d+ more schema errors? \(--all")
    assert all(pattern.match(line) for line in lines), lines


def test_a_schema_error_does_not_hide_semantic_errors(tmp_path: Path) -> None:
    """issue 8 §7: every problem in one run, also when some section is malformed."""
    path = tmp_path / "mixed.yaml"
    path.write_text("extends: default\n"
                    "profiles:\n"
                    "  specialist-narrow:\n"
                    "    base: many\n"
                    "    max: 50000\n"
                    "    weights: {global: 0.2, agent_recent: 0.3, agent_patterns: 0.6}\n"
                    "  specialist-broad:\n"
                    "    bsae: 1\n"
                    "recommendations:\n"
                    "  rules:\n"
                    "    - {action: upgrade, when: \"stats.exceedance > 0.2\"}\n"
                    "detection:\n"
                    "  signals: 7\n")
    problems, policy = check_policy(path)
    assert policy is None
    found = {(p.rule, p.line) for p in problems}
    assert {("schema-type", 4), ("schema-additional-properties", 8), ("schema-type", 13), ("weights-sum", 6),
            ("expression-type", 11)} <= found, [p.format() for p in problems]


@pytest.mark.parametrize("text, rules", [
    ("extends: default\nprofiles: 3\n", ["schema-type"]),  # not 25 'unknown-profile's for the agents
    ("extends: default\ntiers: {a: 1}\n", ["schema-type"]),
    ("version: 1\nprofiles: []\ntiers: 1\nagents: {a: p}\n", ["schema-type"]),
    ("version: 1\n", ["schema-required"]),
])
def test_a_malformed_section_gives_its_schema_error_only(tmp_path: Path, text: str, rules: list) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    problems, policy = check_policy(path)
    assert policy is None and {p.rule for p in problems} == set(rules), [p.format() for p in problems]
