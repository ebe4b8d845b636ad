"""`ctxbudget init claude-code`: merges ctxbudget's hooks into a Claude Code settings file, keeping the rest."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from engine.claude_code.install import EVENTS, is_ours, merge_settings

DATA = Path(__file__).parent / "data" / "claude-code" / "settings"


def _ours(settings: dict) -> dict[str, list[dict]]:
    return {event: [h for g in groups for h in g["hooks"] if is_ours(h.get("command"))]
            for event, groups in settings["hooks"].items()}


def test_merge_keeps_every_existing_setting_and_hook(tmp_path: Path, run_cli) -> None:
    path = tmp_path / ".claude" / "settings.json"
    path.parent.mkdir()
    shutil.copy(DATA / "existing.json", path)
    before = json.loads(path.read_text())
    code, out, err = run_cli("init", "claude-code", "--settings", str(path))
    assert code == 0, err
    after = json.loads(path.read_text())
    for key in ("$schema", "model", "permissions", "env", "statusLine"):
        assert after[key] == before[key]
    for event, groups in before["hooks"].items():  # every existing group survives, unchanged, in order
        assert after["hooks"][event][:len(groups)] == groups
    ours = _ours(after)
    assert {event for event, _ in EVENTS} <= set(ours)
    assert all(len(hooks) == 1 and hooks[0]["command"] == "ctxbudget hook" for e, hooks in ours.items()
               if e in dict(EVENTS))
    task_groups = [g for g in after["hooks"]["PreToolUse"] if any(is_ours(h["command"]) for h in g["hooks"])]
    assert task_groups == [{"matcher": "Task|Agent", "hooks": [{"type": "command", "command": "ctxbudget hook",
                                                                  "timeout": 10}]}]
    for event in ("PostToolUse", "PostToolUseFailure", "PermissionDenied"):  # they end a Task call
        assert [g.get("matcher") for g in after["hooks"][event] if any(is_ours(h["command"]) for h in g["hooks"])] \
            == ["Task|Agent"], event
    assert out.startswith("--- a/settings.json\n+++ b/settings.json\n")
    assert '+        "matcher": "Task|Agent",' in out


def test_merge_is_idempotent(tmp_path: Path, run_cli) -> None:
    path = tmp_path / "settings.json"
    shutil.copy(DATA / "existing.json", path)
    assert run_cli("init", "claude-code", "--settings", str(path))[0] == 0
    first = path.read_bytes()
    code, out, _ = run_cli("init", "claude-code", "--settings", str(path))
    assert code == 0 and "already set up; nothing to change" in out
    assert path.read_bytes() == first


def test_a_new_command_replaces_ours_in_place(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"hooks": {"Stop": [{"hooks": [
        {"type": "command", "command": "/old/venv/bin/ctxbudget hook", "timeout": 3},
        {"type": "command", "command": "say done"}]}]}}))
    merged = json.loads(merge_settings(str(path), "/opt/cb/bin/ctxbudget hook").after)
    assert merged["hooks"]["Stop"] == [{"hooks": [
        {"type": "command", "command": "/opt/cb/bin/ctxbudget hook", "timeout": 10},
        {"type": "command", "command": "say done"}]}]


def test_dry_run_writes_nothing(tmp_path: Path, run_cli) -> None:
    path = tmp_path / ".claude" / "settings.json"
    code, out, _ = run_cli("init", "claude-code", "--settings", str(path), "--dry-run")
    assert code == 0 and not path.exists()
    assert out.startswith("--- /dev/null\n+++ b/settings.json\n") and "(dry run:" in out


def test_project_default_and_mode_kept(tmp_path: Path, run_cli, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".claude").mkdir()
    settings = tmp_path / ".claude" / "settings.json"
    settings.write_text('{"model": "opus"}\n')
    os.chmod(settings, 0o600)
    assert run_cli("init", "claude-code")[0] == 0
    assert json.loads(settings.read_text())["model"] == "opus"
    assert settings.stat().st_mode & 0o777 == 0o600
    assert not [p for p in settings.parent.iterdir() if p.name.startswith(".settings-")]


@pytest.mark.parametrize("text, message", [
    ('{"hooks": ', "not valid JSON"),
    ("[1, 2]", "a settings file is a JSON object"),
    ('{"hooks": []}', "'hooks' must be an object"),
    ('{"hooks": {"Stop": {}}}', "'hooks.Stop' must be a list"),
    ('{"hooks": {"Stop": [{"command": "x"}]}}', "must be an object with a 'hooks' list"),
])
def test_bad_settings_are_reported_and_left_alone(tmp_path: Path, run_cli, text: str, message: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(text)
    code, _, err = run_cli("init", "claude-code", "--settings", str(path))
    assert code == 1 and message in err and "Traceback" not in err
    assert path.read_text() == text


@pytest.mark.parametrize("text", ["", "  \n"])
def test_an_empty_settings_file_is_an_empty_object(tmp_path: Path, run_cli, text: str) -> None:
    path = tmp_path / "settings.json"
    path.write_text(text)  # an empty file was a traceback (the change check re-read it as JSON)
    code, out, err = run_cli("init", "claude-code", "--settings", str(path))
    assert code == 0 and "Traceback" not in err
    assert set(json.loads(path.read_text())) == {"hooks"}
    assert run_cli("init", "claude-code", "--settings", str(path))[0] == 0
    assert set(json.loads(path.read_text())) == {"hooks"}


def test_command_must_be_ctxbudget_hook(tmp_path: Path, run_cli) -> None:
    code, _, err = run_cli("init", "claude-code", "--settings", str(tmp_path / "s.json"), "--command", "rm -rf /")
    assert code == 2 and "must run 'ctxbudget hook'" in err


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_settings_path_that_is_not_a_regular_file_is_refused_not_waited_on(tmp_path: Path, kind: str) -> None:
    # `init --settings` on a FIFO blocked forever in open() (a subprocess here, so a regression fails, not hangs).
    import subprocess
    import sys

    path = tmp_path / "settings.json"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    done = subprocess.run([sys.executable, "-m", "engine", "init", "claude-code", "--settings", str(path)],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "not a regular file" in done.stderr and "nothing written" in done.stderr
    assert path.is_fifo() if kind == "fifo" else path.is_symlink()


def test_a_settings_file_that_is_a_symlink_is_written_through_not_replaced(tmp_path: Path, run_cli) -> None:
    # ~/.claude/settings.json is often a symlink into a dotfiles repository (GNU stow): init replaced the link
    # with a plain file, so the repository never saw the change and the link was gone.
    dotfiles = tmp_path / "dotfiles" / "claude"
    dotfiles.mkdir(parents=True)
    target = dotfiles / "settings.json"
    target.write_text('{"model": "opus"}\n')
    target.chmod(0o640)
    link = tmp_path / "home" / ".claude" / "settings.json"
    link.parent.mkdir(parents=True)
    link.symlink_to(target)
    code, _, err = run_cli("init", "claude-code", "--settings", str(link))
    assert code == 0, err
    assert link.is_symlink() and link.resolve() == target.resolve()
    assert json.loads(target.read_text())["model"] == "opus" and "hooks" in json.loads(target.read_text())
    assert target.stat().st_mode & 0o777 == 0o640
    assert run_cli("init", "claude-code", "--settings", str(link))[0] == 0  # nothing to change the second time


STYLES = DATA / "styles"


def _style(raw: bytes) -> tuple:
    """What init must keep: the BOM, the line ending of every line, the indent, the final newline."""
    text = raw.decode("utf-8")
    bom, text = text.startswith("\ufeff"), text.removeprefix("\ufeff")
    endings = {"\r\n" if text.count("\r\n") == text.count("\n") and "\n" in text
               else "\r" if "\n" not in text and "\r" in text else "\n" if "\n" in text else None}
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    indent = next((line[: len(line) - len(line.lstrip(" \t"))] for line in lines if line[:1] in (" ", "\t")), None)
    return bom, endings, indent, text.endswith(("\n", "\r"))


@pytest.mark.parametrize("name", sorted(p.name for p in STYLES.glob("*.json")))
def test_a_settings_file_keeps_its_line_endings_bom_indent_and_final_newline(tmp_path: Path, run_cli,
                                                                               name: str) -> None:
    # init read a CRLF file (a Windows editor's) as text and wrote it back as LF: every line of the file changed
    # in the user's diff, and a BOM made it refuse the file. Both are kept now, and so are the indent and a
    # missing final newline.
    path = tmp_path / "settings.json"
    shutil.copy(STYLES / name, path)
    before = path.read_bytes()
    code, out, err = run_cli("init", "claude-code", "--settings", str(path))
    assert code == 0 and "Traceback" not in err, err
    after = path.read_bytes()
    expected = _style(before)
    if expected[2] is None:  # one line: the merged file is indented, two spaces as Claude Code writes it
        expected = (*expected[:1], {"\n"}, "  ", *expected[3:])
    assert _style(after) == expected
    merged = json.loads(after.decode("utf-8").removeprefix("\ufeff"))
    original = json.loads(before.decode("utf-8").removeprefix("\ufeff"))
    assert merged["permissions"] == original["permissions"] and merged["model"] == original["model"]
    assert {event for event, _ in EVENTS} <= set(_ours(merged))
    assert merged["hooks"]["Stop"][0] == original["hooks"]["Stop"][0]
    assert "\r" not in out  # the diff compares text, not line endings
    code, out, _ = run_cli("init", "claude-code", "--settings", str(path))
    assert code == 0 and "nothing to change" in out and path.read_bytes() == after
