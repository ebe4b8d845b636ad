"""Where a usage record may go (issue 8, section 2): a policy's ``usage_log`` expands only ~, $HOME, $XDG_* and
$CTXBUDGET_*, and a record is appended only to a regular ``.jsonl`` file — never through a symlink, never into a
FIFO or a device, never to a file with other names."""

from __future__ import annotations

import os
import re
import stat
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest

import engine
import engine.usage.log as usage_log
from engine.diagnostics import UsageError
from engine.policy import check_policy
from engine.policy.locate import expand_policy_path, log_path_problem
from engine.usage import UsageRecord, append_record, read_log, resolve_log_path
from engine.usage.log import LogRefused
from engine.monitor import monitor

RECORD = UsageRecord(datetime(2025, 10, 14, 20, tzinfo=timezone.utc), "specialists/dbt-expert", "specialist-narrow",
                     "medium", 20000, 15432, 0.7716, False, {"global": 3200, "agent_recent": 4100,
                                                              "agent_patterns": 8132}, ("info",), 0, 1.5, True,
                     None, "sha256:0123456789abcdef")
SECRET = "CTXB-ENV-SECRET-do-not-print"


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("CTXBUDGET_TEAM", "data")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("CTXBUDGET_LOG", raising=False)
    return tmp_path


# -- what a policy's usage_log expands to ----------------------------------------------------------------------

@pytest.mark.parametrize("written, expected", [
    ("~/logs/u.jsonl", "home/logs/u.jsonl"),
    ("$HOME/u.jsonl", "home/u.jsonl"),
    ("${XDG_STATE_HOME}/ctxbudget/$CTXBUDGET_TEAM.jsonl", "state/ctxbudget/data.jsonl"),
    ("$XDG_DATA_HOME/u.jsonl", "home/.local/share/u.jsonl"),  # unset: its XDG default
    ("/var/log/agents-$CTXBUDGET_TEAM.jsonl", "/var/log/agents-data.jsonl"),
    ("cost$.jsonl", "<policy>/cost$.jsonl"),  # a $ that starts no name is a character
    ("logs/u.jsonl", "<policy>/logs/u.jsonl"),
])
def test_a_policy_log_path_expands_only_home_xdg_and_ctxbudget_variables(env, written, expected):
    policy_file = env / "team" / "ctxbudget.yaml"
    policy_file.parent.mkdir()
    policy_file.write_text(f"version: 1\nextends: default\nusage_log: '{written}'\n")
    problems, policy = check_policy(policy_file)
    assert problems == [] and policy is not None
    want = expected.replace("<policy>", str(policy_file.parent))
    assert resolve_log_path(None, policy) == (Path(want) if want.startswith("/") else env / want)


REFUSED = [
    ("logs/${AWS_SECRET_ACCESS_KEY}.jsonl", "not ${AWS_SECRET_ACCESS_KEY}"),
    ("$AWS_SECRET_ACCESS_KEY/u.jsonl", "not $AWS_SECRET_ACCESS_KEY"),
    ("${HOME:-/tmp}/u.jsonl", "not ${HOME:-/tmp}"),
    ("$PATH.jsonl", "not $PATH"),
    ("~root/u.jsonl", "not ~root"),
    ("~/.bashrc", "must end in .jsonl, not '.bashrc'"),
    ("logs/usage.log", "must end in .jsonl, not 'usage.log'"),
    ("logs/.jsonl", "must end in .jsonl"),
]


@pytest.mark.parametrize("written, why", REFUSED)
def test_validate_refuses_any_other_variable_or_name_at_the_key(env, written, why):
    policy_file = env / "ctxbudget.yaml"
    policy_file.write_text(f"version: 1\nextends: default\nname: x\nusage_log: '{written}'\n")
    problems, policy = check_policy(policy_file)
    assert policy is None
    assert [(p.rule, p.line, p.col) for p in problems] == [("usage-log-path", 4, 1)]
    assert why in problems[0].message
    assert SECRET not in problems[0].format()


@pytest.mark.parametrize("written, why", REFUSED)
def test_the_run_time_refuses_them_too(env, written, why):
    """A policy that skipped validation (built from data) is refused when its log is resolved, not expanded."""
    policy = SimpleNamespace(usage_log=written, files=((str(env / "p.yaml"), "0"),), source="p.yaml")
    with pytest.raises(UsageError, match="usage_log") as caught:
        resolve_log_path(None, policy)
    assert why in str(caught.value) and SECRET not in str(caught.value)
    if log_path_problem(written) and ".jsonl" not in log_path_problem(written):
        with pytest.raises(ValueError, match=re.escape(why)):
            expand_policy_path(written)


def test_an_allowed_variable_that_is_not_set_is_an_error(env, monkeypatch):
    monkeypatch.delenv("CTXBUDGET_TEAM")
    policy = SimpleNamespace(usage_log="$CTXBUDGET_TEAM/u.jsonl", files=(), source="p.yaml")
    with pytest.raises(UsageError, match=r"\$CTXBUDGET_TEAM is not set"):
        resolve_log_path(None, policy)


def test_the_cli_reports_a_refused_policy_log_as_a_usage_error(env, run_cli):
    policy_file = env / "ctxbudget.yaml"
    policy_file.write_text("version: 1\nextends: default\nusage_log: '~/.bashrc'\n")
    code, out, err = run_cli("validate", str(policy_file))
    assert code == 1 and f"{policy_file}:3:1: error: usage_log: a usage log is a JSONL file" in out
    assert "[usage-log-path]" in out


# -- what a record is appended to --------------------------------------------------------------------------------

def test_a_new_log_is_created_mode_0644_at_most(tmp_path):
    old = os.umask(0)
    try:
        append_record(tmp_path / "new" / "u.jsonl", RECORD)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new" / "u.jsonl").st_mode) == 0o644
    assert [r.agent for r in read_log(tmp_path / "new" / "u.jsonl")] == ["specialists/dbt-expert"]


@pytest.mark.parametrize("name", ["u.log", "u.json", "bashrc", ".jsonl", "u.jsonl.bak"])
def test_only_a_jsonl_name_is_written(tmp_path, name):
    with pytest.raises(LogRefused, match="must end in .jsonl"):
        append_record(tmp_path / name, RECORD)
    assert not (tmp_path / name).exists()


def test_never_through_a_symlink(tmp_path):
    target = tmp_path / "bashrc"
    target.write_text("export PATH=/usr/bin\n")
    (tmp_path / "u.jsonl").symlink_to(target)
    with pytest.raises(LogRefused, match="is a symbolic link"):
        append_record(tmp_path / "u.jsonl", RECORD)
    assert target.read_text() == "export PATH=/usr/bin\n"
    (tmp_path / "dangling.jsonl").symlink_to(tmp_path / "made.jsonl")
    with pytest.raises(LogRefused, match="is a symbolic link"):
        append_record(tmp_path / "dangling.jsonl", RECORD)
    assert not (tmp_path / "made.jsonl").exists()


def test_the_open_itself_refuses_a_symlink(tmp_path, monkeypatch):
    """A symlink planted after the path was checked: O_NOFOLLOW refuses it at the open."""
    monkeypatch.setattr(usage_log, "_refuse_special", lambda target: None)
    target = tmp_path / "victim.jsonl"
    target.write_text("")
    (tmp_path / "u.jsonl").symlink_to(target)
    with pytest.raises(LogRefused, match="is a symbolic link"):
        append_record(tmp_path / "u.jsonl", RECORD)
    assert target.read_text() == ""


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
@pytest.mark.parametrize("checked_first", [True, False])
def test_never_into_a_fifo(tmp_path, monkeypatch, checked_first):
    """Today's bug: a FIFO log 'succeeded' and the record was lost. Now it is refused, before a byte is written —
    also when the FIFO appears after the path was checked (the descriptor's fstat)."""
    if not checked_first:
        monkeypatch.setattr(usage_log, "_refuse_special", lambda target: None)
    fifo = tmp_path / "u.jsonl"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(LogRefused, match="is a FIFO"):
            append_record(fifo, RECORD)
        try:
            leaked = os.read(reader, 4096)
        except BlockingIOError:
            leaked = b""
        assert leaked == b""
    finally:
        os.close(reader)


def test_never_into_a_device(tmp_path):
    device = tmp_path / "null.jsonl"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError, OSError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    with pytest.raises(LogRefused, match="is a character device"):
        append_record(device, RECORD)


def test_never_into_a_folder_or_a_hard_link(tmp_path):
    (tmp_path / "dir.jsonl").mkdir()
    with pytest.raises(LogRefused, match="is a directory"):
        append_record(tmp_path / "dir.jsonl", RECORD)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep\n")
    os.link(victim, tmp_path / "u.jsonl")
    with pytest.raises(LogRefused, match="other hard link"):
        append_record(tmp_path / "u.jsonl", RECORD)
    assert victim.read_text() == "keep\n"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_the_cli_refuses_a_fifo_log_with_exit_2(tmp_path, run_cli):
    fifo = tmp_path / "u.jsonl"
    os.mkfifo(fifo)
    code, out, err = run_cli("log", "--policy", "default", "--log", str(fifo), "--agent", "dbt-expert",
                             "--tier", "simple", "--tokens", "global=10")
    assert (code, out) == (2, "")
    assert err.strip() == (f"ctxbudget: error: cannot write the usage log {fifo}: is a FIFO; a usage log is "
                           f"written only to a regular file")


def test_a_refusal_is_an_oserror_the_monitor_can_report(tmp_path):
    assert issubclass(LogRefused, OSError)
    with pytest.raises(OSError) as caught:
        append_record(tmp_path / "u.txt", RECORD)
    assert caught.value.filename == str(tmp_path / "u.txt") and caught.value.strerror


def test_a_usage_log_policy_reaches_the_monitor(env):
    policy_file = env / "ctxbudget.yaml"
    policy_file.write_text("version: 1\nextends: default\nusage_log: $XDG_STATE_HOME/team/u.jsonl\n")
    policy = engine.load_policy(policy_file)
    with monitor(policy, "dbt-expert", tier="simple") as run:
        run.load("global", 100)
    assert [r.tokens_loaded for r in read_log(env / "state" / "team" / "u.jsonl")] == [100]
