"""Hostile input to the commands (issue 8, sections 4 and 5): deep brackets, huge ints, bad bytes and
non-finite numbers in arguments and in --batch / accuracy files. Each is a skipped-and-counted line (every
other line still answered) or exit 2 with a message — never a traceback; and no --json output holds NaN or
Infinity. The inputs are kept under tests/data/input/."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest

from conftest import DATA, ROOT

INPUT = DATA / "input"
POLICY = str(DATA / "small-detection.yaml")


def _strict(text: str):
    """Parse as a strict JSON parser does: NaN and Infinity are errors."""
    def refuse(name):
        raise AssertionError(f"{name} in --json output: {text[:200]}")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize("name, problem", [
    ("batch-bad-byte.jsonl", [
        "batch-bad-byte.jsonl:2:31: error: not UTF-8 text (invalid continuation byte) [task-encoding]",
        "batch-bad-byte.jsonl:3:28: error: not UTF-8 text (invalid start byte) [task-encoding]"]),
    ("batch-deep.jsonl", ["batch-deep.jsonl:2:108: error: not valid JSON: nested more than 64 levels deep "
                          "[task-json]"]),
    ("batch-huge-int.jsonl", ["batch-huge-int.jsonl:2:1: error: not valid JSON: an integer has more than 4,300 "
                              "digits [task-json]"]),
    ("batch-non-finite.jsonl", [
        "batch-non-finite.jsonl:2:1: error: not valid JSON: NaN is not a JSON number [task-json]",
        "batch-non-finite.jsonl:3:1: error: not valid JSON: the number 1e400 is too large [task-json]",
        "batch-non-finite.jsonl:4:1: error: not valid JSON: -Infinity is not a JSON number [task-json]"]),
    ("batch-lone-surrogate.jsonl", [  # no UTF-8 output could hold the id: it was a UnicodeEncodeError traceback
        f"batch-lone-surrogate.jsonl:{line}:{col}: error: not valid JSON: a string holds a lone UTF-16 surrogate, "
        "which is not text [task-json]" for line, col in ((2, 10), (3, 41), (4, 49))]),
])
def test_a_bad_batch_line_costs_only_that_line(run_cli, monkeypatch, name: str, problem: list[str]) -> None:
    monkeypatch.chdir(INPUT)
    code, out, err = run_cli("detect", "--batch", name, "--policy", POLICY)
    assert code == 2
    results = [_strict(line) for line in out.splitlines()]
    assert [(r["id"], r["tier"]) for r in results] == [("before", "simple"), ("after", "complex")]
    bad = len(problem)
    assert err.splitlines() == problem + [f"{name}: {bad} bad line{'s' if bad > 1 else ''} skipped, 2 tasks answered"]


def test_a_bad_byte_on_stdin_costs_only_that_line(run_cli, monkeypatch) -> None:
    data = (INPUT / "batch-bad-byte.jsonl").read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))
    code, out, err = run_cli("detect", "--batch", "-", "--policy", POLICY)
    assert code == 2 and [_strict(line)["id"] for line in out.splitlines()] == ["before", "after"]
    assert err.startswith("<stdin>:2:31: error: not UTF-8 text")


def test_a_line_over_4_mib_is_skipped_without_being_read_whole(run_cli, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.txt"
    with open(tasks, "wb") as out:
        out.write(b"Show dbt models\n" + b"x" * (5 << 20) + b"\nTroubleshoot the dbt run\n")
    code, out, err = run_cli("detect", "--batch", str(tasks), "--policy", POLICY)
    assert code == 2 and [_strict(line)["id"] for line in out.splitlines()] == [1, 3]
    assert err.splitlines()[0] == f"{tasks}:2:1: error: longer than 4,194,304 bytes (5,242,881); skipped [task-too-long]"


def test_a_byte_order_mark_on_the_first_line_is_ignored(run_cli, tmp_path: Path) -> None:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_bytes(b'\xef\xbb\xbf{"id": "a", "text": "Show dbt models"}\n')
    code, out, err = run_cli("detect", "--batch", str(tasks), "--policy", POLICY)
    assert (code, err) == (0, "") and _strict(out)["id"] == "a"


def test_accuracy_measures_every_good_line_and_reports_the_bad_one(run_cli, monkeypatch) -> None:
    monkeypatch.chdir(INPUT)
    code, out, err = run_cli("accuracy", "labels-bad-byte.jsonl", "--policy", POLICY, "--json")
    assert code == 2
    report = _strict(out)
    assert (report["total"], report["correct"], report["bad_lines"]) == (2, 2, 1)
    assert err.splitlines() == [
        "labels-bad-byte.jsonl:2:25: error: not UTF-8 text (invalid continuation byte) [task-encoding]",
        "labels-bad-byte.jsonl: 1 bad line left out, 2 labelled tasks measured"]
    code, out, _ = run_cli("accuracy", "labels-bad-byte.jsonl", "--policy", POLICY)
    assert code == 2 and out.startswith("labels-bad-byte.jsonl: 2 of 2 tasks detected as labelled")


@pytest.mark.parametrize("file, message", [
    ("deep.json", "nested more than 64 levels deep"),
    ("huge-int.json", "an integer has more than 4,300 digits"),
])
@pytest.mark.parametrize("command", [
    ["detect", "a task", "--policy", POLICY, "--context"],
    ["evaluate", "a task", "--agent", "dbt-expert", "--policy", POLICY, "--context"],
    ["expr", "1", "--vars"],
])
def test_hostile_json_arguments_are_usage_errors(run_cli, command: list[str], file: str, message: str) -> None:
    code, out, err = run_cli(*command, (INPUT / file).read_text())
    assert (code, out) == (2, "")
    option = command[-1]
    assert re.fullmatch(rf"ctxbudget: error: {option}:? (is )?not valid JSON:? \(?{message}.*\n", err), err


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_json_arguments_are_refused(run_cli, value: str) -> None:
    code, _, err = run_cli("expr", "x", "--vars", f'{{"x": {value}}}')
    assert code == 2 and "not valid JSON" in err and "Traceback" not in err
    code, _, err = run_cli("detect", "x", "--policy", POLICY, "--context", f'{{"x": {value}}}')
    assert code == 2 and "--context: not valid JSON" in err


@pytest.mark.parametrize("expression, value", [
    ("1.0/0.0", "+Inf"), ("0.0 - 1.0/0.0", "-Inf"), ("0.0/0.0", "NaN"), ("[1.5, 1.0/0.0]", [1.5, "+Inf"]),
    ("{'a': 0.0/0.0}", {"a": "NaN"}), ("2.5", 2.5),
])
def test_expr_output_is_strict_json(run_cli, expression: str, value) -> None:
    """`expr` writes a non-finite double as the text CEL gives it (harden-expr's choice for this command);
    every other command writes it as null (engine.jsonio.dumps)."""
    code, out, _ = run_cli("expr", expression, "--json")
    assert code == 0 and _strict(out) == {"expression": expression, "value": value}
    code, out, _ = run_cli("expr", expression)
    assert code == 0 and _strict(out) == value


def test_analyze_json_is_strict_with_a_1e400_record(run_cli, tmp_path: Path) -> None:
    log = tmp_path / "u.jsonl"
    good = {"timestamp": "2026-11-20T10:00:00Z", "agent": "specialists/dbt-expert", "profile": "specialist-narrow",
            "tier": "medium", "budget": 20000, "tokens_loaded": 12000, "scopes": {"global": 12000}}
    lines = [json.dumps(good),
             json.dumps(good).replace('"tokens_loaded": 12000', '"tokens_loaded": 1e400'),
             json.dumps(good).replace('{"global": 12000}', '{"global": 1e400}'),
             json.dumps(good).replace('"budget": 20000', '"budget": 1e400')]
    log.write_text("\n".join(lines) + "\n")
    code, out, err = run_cli("analyze", "--log", str(log), "--json", "--policy", "default")
    assert code in (0, 1) and "Traceback" not in err
    analysis = _strict(out)
    assert "Infinity" not in out and "NaN" not in out
    assert analysis  # one good run analysed, three lines skipped
    assert err.count("warning: skipped") == 3


@pytest.mark.parametrize("tokens, message", [
    ("global=-5", "tokens cannot be negative"),
    ("global=1.5", "a whole number of tokens"),
    ("global=inf", "a whole number of tokens"),
    ("global=nan", "a whole number of tokens"),
    ("global=1e400", "a whole number of tokens"),
    ("global=" + "9" * 5000, "at most 9,007,199,254,740,991 tokens"),
    ("global=9007199254740992", "at most 9,007,199,254,740,991 tokens"),
    ("=3", "expected SCOPE=N"),
])
def test_log_refuses_bad_token_counts_before_recording(run_cli, tmp_path: Path, tokens: str, message: str) -> None:
    log = tmp_path / "u.jsonl"
    code, out, err = run_cli("log", "--agent", "dbt-expert", "--tier", "medium", "--tokens", tokens,
                             "--log", str(log), "--policy", "default")
    assert code == 2 and message in err and "Traceback" not in err
    assert not log.exists()


def test_log_to_a_full_disk_is_exit_2(run_cli) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    code, out, err = run_cli("log", "--agent", "dbt-expert", "--tier", "medium", "--tokens", "global=5",
                             "--log", "/dev/full", "--policy", "default")
    assert (code, out) == (2, "")
    assert err.startswith("ctxbudget: error: ") and "Traceback" not in err


def test_every_command_prints_json_through_the_strict_path() -> None:
    """No command writes JSON with json.dumps (which writes NaN and Infinity): all of it goes through
    engine.cli.output (print_json, json_line), that is engine.jsonio.dumps."""
    allowed = {"expr.py": 1}  # `ctxbudget expr` without --json: its value, non-finite doubles as CEL text
    found = {}
    for module in sorted((ROOT / "engine" / "cli").rglob("*.py")):
        count = len(re.findall(r"\bjson\.dumps?\(", module.read_text()))
        if count:
            found[module.name] = count
    assert found == allowed


def test_a_policy_file_whose_name_is_not_utf8(tmp_path: Path) -> None:
    """A name from bytes that are not UTF-8: text output prints those bytes (as `ls` does) even where stdout is
    strict UTF-8, --json output stays UTF-8 JSON (the bytes as the text \\xNN), and the policy loads and caches."""
    import os
    import subprocess
    import sys

    name = os.path.join(os.fsencode(tmp_path), b"odd\xff.yaml")
    with open(name, "w", encoding="utf-8") as handle:
        handle.write("extends: default\n")
    env = dict(os.environ, PYTHONIOENCODING="utf-8:strict")  # a UTF-8 locale's stdout
    run = [sys.executable, "-m", "engine"]
    text = subprocess.run(run + ["validate", os.fsdecode(name)], capture_output=True, env=env)
    assert text.returncode == 0 and text.stdout.startswith(name + b": valid") and b"Traceback" not in text.stderr
    out = subprocess.run(run + ["validate", "--json", os.fsdecode(name)], capture_output=True, env=env)
    assert out.returncode == 0
    assert json.loads(out.stdout.decode("utf-8"))["policies"][0]["path"] == os.fsdecode(name).replace("\udcff", "\\xff")
    for _ in range(2):  # cold, then from the cache
        found = subprocess.run(run + ["evaluate", "Why is the dbt run slow?", "--agent", "dbt-expert", "--json",
                                      "--policy", os.fsdecode(name)], capture_output=True, env=env)
        assert found.returncode == 0 and json.loads(found.stdout)["tier"] == "complex"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("argv, code", [
    (["evaluate", "Why is the dbt run slow?", "--agent", "dbt-expert", "--json"], 2),
    (["signals"], 2),  # text output, buffered: the error shows at the final flush
    (["budget", "dbt-expert", "complex", "--json"], 2),
    (["evaluate", "x", "--agent", "nobody", "--json"], 1),  # the error's JSON cannot be written either
    (["detect", "--batch", str(INPUT / "batch-bad-byte.jsonl")], 2),
    (["--version"], 2),  # answered before anything else is imported: its own write
    (["--help"], 2),  # argparse drops a failed write: the help must not vanish with exit 0
    (["budget", "--help"], 2),
])
def test_a_full_disk_on_stdout_is_an_error_not_a_traceback(argv, code) -> None:
    import subprocess
    import sys

    with open("/dev/full", "w") as full:
        found = subprocess.run([sys.executable, "-m", "engine", *argv], stdout=full, stderr=subprocess.PIPE)
    assert found.returncode == code
    err = found.stderr.decode()
    assert "Traceback" not in err and "Exception ignored" not in err
    assert code == 1 or "ctxbudget: error: cannot write the output: No space left on device" in err


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["budget", "dbt-expert", "complex", "--json"]])
def test_a_closed_pipe_on_stdout_is_quiet(argv) -> None:
    """`ctxbudget --version | true`: the reader left before anything was written — exit 0, nothing on stderr."""
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write: every write fails with EPIPE
    try:
        found = subprocess.run([sys.executable, "-m", "engine", *argv], stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    assert found.returncode == 0 and found.stderr == b""


@pytest.mark.parametrize("argv", [
    ["--version"], ["--help"], ["budget", "dbt-expert", "complex"], ["agents"], ["evaluate", "x", "-a", "dbt-expert"],
    ["log", "--agent", "dbt-expert", "--tier", "simple", "--tokens", "global=5", "--log", "LOG"],
])
def test_a_closed_stdout_is_an_error_before_anything_is_done(argv, tmp_path: Path) -> None:
    """`ctxbudget … >&-`: Python's sys.stdout is None; every command was an AttributeError traceback (exit 1),
    after doing its work (a usage record was written). Now: exit 2, said on stderr, nothing done."""
    import subprocess
    import sys

    log = tmp_path / "usage.jsonl"
    argv = [str(log) if a == "LOG" else a for a in argv]
    found = subprocess.run([sys.executable, "-m", "engine", *argv], stderr=subprocess.PIPE,
                           preexec_fn=lambda: os.close(1), timeout=120)
    err = found.stderr.decode()
    assert found.returncode == 2 and "Traceback" not in err
    assert err == "ctxbudget: error: cannot write the output: stdout is closed\n"
    assert not log.exists()


def test_a_hook_with_a_closed_stdout_still_fails_open(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "CTXBUDGET_HOOK_LOG": str(tmp_path / "hook.log")}
    found = subprocess.run([sys.executable, "-m", "engine", "hook"], input=b"{}", stderr=subprocess.PIPE, env=env,
                           preexec_fn=lambda: os.close(1), timeout=120)
    assert found.returncode == 0 and found.stderr == b""
    assert "BadPayload" in (tmp_path / "hook.log").read_text()


@pytest.mark.parametrize("argv, message", [
    (["detect", "--batch", "-"], "<stdin>: there is no stdin to read the tasks from"),
    (["detect", "-i"], "there is no stdin to read the tasks from"),
    (["detect", "-"], "TASK '-': there is no stdin to read the task from"),
    (["apply", "--log", "LOG", "--policy", "POLICY"], "not writing without --yes when not on a terminal"),
    (["tune", "LABELS", "--policy", "POLICY"], "not writing without --yes when not on a terminal"),
])
def test_a_closed_stdin_is_a_usage_error_not_a_traceback(argv, message: str, tmp_path: Path) -> None:
    """`ctxbudget detect --batch - <&-`: Python's sys.stdin is None; reading it (or asking whether it is a
    terminal before a write) was a TypeError / AttributeError traceback."""
    import subprocess
    import sys

    from usage_synth import write_known_log

    from engine.resources import bundled_policy

    policy = tmp_path / "ctxbudget.yaml"
    policy.write_bytes(Path(bundled_policy("default")).read_bytes())  # signals of its own, for tune
    before = policy.read_bytes()
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"text": f"{w} the dbt model", "tier": t}) + "\n" for w, t in [
        ("Rename", "simple"), ("Fix", "medium"), ("Migrate", "complex"), ("Rename", "simple"), ("Refactor", "medium"),
        ("Document", "simple"), ("Redesign", "multi-system"), ("Audit", "complex"), ("Add", "simple"),
        ("Test", "medium")] * 3), encoding="utf-8")
    swap = {"LOG": str(write_known_log(tmp_path / "known.jsonl")), "POLICY": str(policy), "LABELS": str(labels)}
    found = subprocess.run([sys.executable, "-m", "engine", *[swap.get(a, a) for a in argv]], capture_output=True,
                           preexec_fn=lambda: os.close(0), timeout=300)
    err = found.stderr.decode()
    assert found.returncode == 2 and "Traceback" not in err
    assert f"ctxbudget: error: {message}" in err
    assert policy.read_bytes() == before


REMOTE_UNREACHABLE = [line.split("\t") for line in (DATA / "usage-remote-unreachable.txt").read_text(encoding="utf-8")
                      .splitlines() if line and not line.startswith("#")]


@pytest.mark.parametrize("location, error", REMOTE_UNREACHABLE, ids=[loc for loc, _ in REMOTE_UNREACHABLE])
def test_a_remote_log_that_cannot_be_reached_is_an_error_not_a_traceback(run_cli, location: str, error: str) -> None:
    code, _, err = run_cli("analyze", "--log", location)
    assert code == 2 and "Traceback" not in err and err.startswith(error), err


def test_tune_calibrates_a_small_separable_label_set_within_the_schema(run_cli, tmp_path: Path) -> None:
    """tests/data/tune-separable-labels.jsonl: 20 tasks whose margins separate right from wrong; full Newton steps
    diverged on them (exit 1: "calibration.slope: must be ≥ -1000; got -19026000000.0")."""
    from engine.resources import bundled_policy

    policy = tmp_path / "ctxbudget.yaml"
    policy.write_bytes(Path(bundled_policy("default")).read_bytes())
    labels = DATA / "tune-separable-labels.jsonl"
    code, out, err = run_cli("tune", str(labels), "--policy", str(policy), "--calibrate-only", "--dry-run")
    assert code == 0, err
    assert re.search(r"calibration: slope -?[0-9.]+, intercept -?[0-9.]+;", out), out


def test_a_reader_that_stops_early_ends_the_batch_quietly(tmp_path: Path) -> None:
    """`ctxbudget detect --batch F | head -1`: the closed pipe ends the run, exit 0 — not a read error of F."""
    import subprocess
    import sys

    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text('{"text": "Why is the dbt run slow?"}\n' * 5000)
    writer = subprocess.Popen([sys.executable, "-m", "engine", "detect", "--batch", str(tasks)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert json.loads(writer.stdout.readline())["tier"] == "complex"
    writer.stdout.close()
    assert writer.wait(timeout=60) == 0
    err = writer.stderr.read().decode()
    assert "cannot read" not in err and "Traceback" not in err and "Exception ignored" not in err
