"""How tasks get in: `evaluate -` / `detect -` read stdin (bounded), `detect -i` edits lines with readline on a
terminal and never scores an escape sequence."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli.task_arg import MAX_TASK_BYTES


def _shown(task: str) -> str:
    """The line `ctxbudget detect` prints for ``task`` under the default policy (its confidence follows the
    learned vocabulary, refitted now and then)."""
    import engine

    found = engine.load_policy().detect(task)
    return f"{found.tier} (confidence {found.confidence:.3f})"


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


# -- TASK - ----------------------------------------------------------------------------------------------


def test_evaluate_reads_the_task_from_stdin(run_cli, monkeypatch) -> None:
    _stdin(monkeypatch, b"  Why did last night's dbt run fail?\n\n")
    code, out, err = run_cli("evaluate", "-", "--agent", "dbt-expert", "--json")
    assert (code, err) == (0, "")
    from_stdin = json.loads(out)
    code, out, _ = run_cli("evaluate", "Why did last night's dbt run fail?", "--agent", "dbt-expert", "--json")
    assert from_stdin == json.loads(out) and from_stdin["tier"] == "complex"


def test_detect_reads_a_task_larger_than_an_argument_may_be(run_cli, monkeypatch) -> None:
    """200 kB is past Linux's 128 KiB limit on one argument (MAX_ARG_STRLEN)."""
    task = "Trace revenue from Salesforce through Fivetran, Snowflake and dbt into Tableau. " * 2600
    assert len(task.encode()) > 200_000
    _stdin(monkeypatch, task.encode())
    code, out, err = run_cli("detect", "-", "--json")
    assert (code, err) == (0, "")
    detection = json.loads(out)
    assert detection["tier"] == "multi-system"
    assert max(s["span"][1] for s in detection["signals"] if s["span"]) <= len(task.strip())


def test_a_task_of_exactly_the_bound_is_read(run_cli, monkeypatch) -> None:
    _stdin(monkeypatch, b"a " * (MAX_TASK_BYTES // 2))
    code, out, _ = run_cli("detect", "-", "--json")
    assert code == 0 and json.loads(out)["tier"]


@pytest.mark.parametrize(("data", "message"), [
    (b"a" * (MAX_TASK_BYTES + 1),
     "the task on stdin is larger than 1,048,576 bytes (1 MiB); give a task description, not a document"),
    (b"List all \xff dbt models", "stdin is not UTF-8 text (byte 10: invalid start byte)"),
    (b"", "stdin holds no task (it is empty)"),
    (b" \n\t\n", "stdin holds no task (it is empty)"),
])
@pytest.mark.parametrize("command", [["detect", "-"], ["evaluate", "-", "--agent", "dbt-expert"]])
def test_a_bad_task_on_stdin_is_a_usage_error(run_cli, monkeypatch, data: bytes, message: str, command) -> None:
    _stdin(monkeypatch, data)
    code, out, err = run_cli(*command)
    assert (code, out) == (2, "")
    assert err == f"ctxbudget: error: TASK '-': {message}\n"


def test_the_stdin_read_is_bounded(monkeypatch) -> None:
    """A huge stdin is refused after reading one byte past the bound, not read whole."""
    from engine.cli.task_arg import task_text
    from engine.diagnostics import UsageError

    class Endless(io.RawIOBase):
        asked = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            Endless.asked += len(buffer)
            buffer[:] = b"x" * len(buffer)
            return len(buffer)

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(Endless())))
    with pytest.raises(UsageError, match="larger than"):
        task_text("-")
    assert Endless.asked <= 2 * MAX_TASK_BYTES


# -- detect -i ---------------------------------------------------------------------------------------------


def test_interactive_never_scores_an_escape_sequence(run_cli, monkeypatch) -> None:
    """Without line editing (stdin not a terminal), an Up arrow and Enter arrive as ESC [ A: not a task."""
    _stdin(monkeypatch, b"\x1b[A\nList all dbt models\n\x1bOB\nAnalyze\x1b[D\x1b[Dslow\n\xc2\x9bA\n\n")
    code, out, err = run_cli("detect", "-i", "--json")
    assert code == 0
    results = [json.loads(chunk) for chunk in re.split(r"(?<=\})\n(?=\{)", out.strip())]
    assert [r["tier"] for r in results] == ["simple"]
    assert err == "ignored: the line holds terminal control codes (an arrow key?), not a task\n" * 4


def test_interactive_skips_a_line_that_is_not_utf8_or_too_long(run_cli, monkeypatch) -> None:
    _stdin(monkeypatch, b"List all \xff dbt models\n" + b"a" * (MAX_TASK_BYTES + 10) + b"\nList all dbt models\n")
    code, out, err = run_cli("detect", "-i")
    assert code == 0
    assert [line for line in out.splitlines() if "(confidence" in line] == [_shown("List all dbt models")]
    assert err == ("ignored: the line is not UTF-8 text (byte 10: invalid start byte)\n"
                   "ignored: the line is larger than 1,048,576 bytes\n")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_lines_come_from_input_with_readline(monkeypatch, capsys) -> None:
    from engine.cli import main

    typed = iter(["List all dbt models", "\x1b[A", ""])
    prompts: list[str] = []

    def fake_input(prompt: str = "") -> str:
        assert "readline" in sys.modules, "line editing needs readline imported before input()"
        prompts.append(prompt)
        return next(typed)

    monkeypatch.delitem(sys.modules, "readline", raising=False)
    stdin = _Terminal()
    stdin.readline = None  # the terminal path must not read sys.stdin directly
    monkeypatch.setattr(sys, "stdin", stdin)
    out = _Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr("builtins.input", fake_input)
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["detect", "-i", "--policy", "default"]) == 0
    assert prompts == ["task> "] * 3  # the empty line quits
    assert _shown("List all dbt models").startswith("simple ")
    assert out.getvalue().startswith(_shown("List all dbt models") + "\n") and out.getvalue().count("(confidence") == 1
    assert "ignored" in capsys.readouterr().err  # an escape that reached input() is still not scored


def test_interactive_is_quiet_when_not_on_a_terminal(run_cli, monkeypatch) -> None:
    _stdin(monkeypatch, b"List all dbt models\n\nAnalyze slow queries\n")  # a blank line does not quit
    code, out, err = run_cli("detect", "-i")
    assert (code, err) == (0, "")
    assert [line.split()[0] for line in out.splitlines() if "(confidence" in line] == ["simple", "complex"]


def _pty_session(tmp_path: Path, keys: list[bytes]) -> str:
    """Run `ctxbudget detect -i` on a pseudo-terminal, typing ``keys`` one prompt at a time."""
    import pty
    import select

    master, slave = pty.openpty()
    env = {**os.environ, "NO_COLOR": "1", "TERM": "xterm", "CTXBUDGET_CACHE_DIR": str(tmp_path / "cache"),
           "INPUTRC": os.devnull, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    env.pop("CTXBUDGET_POLICY", None)
    proc = subprocess.Popen([sys.executable, "-m", "engine.cli", "detect", "-i", "--policy", "default"],
                            stdin=slave, stdout=slave, stderr=slave, env=env, cwd=tmp_path, start_new_session=True)
    os.close(slave)
    seen = bytearray()

    def read_until(done) -> None:
        while not done():
            ready, _, _ = select.select([master], [], [], 60)
            if not ready:
                raise AssertionError(f"no output from detect -i; so far: {bytes(seen)!r}")
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the process closed the terminal
                return
            if not chunk:
                return
            seen.extend(chunk)

    try:
        for n, key in enumerate(keys, 1):
            read_until(lambda: seen.count(b"task> ") >= n)
            os.write(master, key)
        read_until(lambda: False)
        assert proc.wait(timeout=60) == 0, bytes(seen)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    text = bytes(seen).decode("utf-8", "replace").replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]", "", text)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pseudo-terminal behaviour checked on Linux")
def test_up_arrow_recalls_the_last_task_on_a_real_terminal(tmp_path: Path) -> None:
    pytest.importorskip("readline", reason="this Python has no readline")
    text = _pty_session(tmp_path, [b"Analyze slow queries\r", b"\x1b[A\r", b"List all dbt modelz\x7fs\r", b"\x04"])
    results = re.findall(r"^(\S+) \(confidence [0-9.]+\)$", text, re.M)
    # Up + Enter ran the previous task again (readline's history); Backspace edited the line
    assert results == ["complex", "complex", "simple"], text
    assert "ignored" not in text and "medium (confidence 0)" not in text
