"""`ctxbudget hook`: Claude Code events in, memory out, usage records written — and never a broken session.

Every event is a fixture in tests/data/claude-code/events/ (fields as the Claude Agent SDK types them; the
fixtures and every output here are type-checked against the SDK's `sdk.d.ts` in test_sdk_types), fed to the
command in a subprocess as Claude Code runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.claude_code.settings import CONTEXT_CAP

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "data" / "claude-code" / "events"
HOSTILE = ROOT / "tests" / "data" / "claude-code" / "hostile"
SESSION = ["session-start", "instructions-loaded", "user-prompt-submit", "pre-tool-use-task", "subagent-start",
           "subagent-stop", "stop", "session-end"]
OUTPUTS: list[dict] = []  # every hook output of this module, for the SDK type check


def event(name: str, project: Path, **changes) -> dict:
    data = json.loads((EVENTS / f"{name}.json").read_text().replace("__CWD__", str(project)))
    data.update(changes)
    return data


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project with the sample memory store in .claude/memory and a CLAUDE.md."""
    from engine.resources import sample_memory_dir

    root = tmp_path / "shop"
    shutil.copytree(sample_memory_dir(), root / ".claude" / "memory")
    (root / "CLAUDE.md").write_text("# Shop\n\nUse dbt build, never dbt run, before pushing. " * 20)
    return root


@pytest.fixture
def env(tmp_path: Path) -> dict:
    values = {**os.environ, "CTXBUDGET_LOG": str(tmp_path / "usage.jsonl"),
              "CTXBUDGET_HOOK_LOG": str(tmp_path / "hook.log"), "NO_COLOR": "1"}
    values.pop("CTXBUDGET_POLICY", None)
    return values


def hook(payload: dict | bytes, project: Path, env: dict) -> subprocess.CompletedProcess:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    done = subprocess.run([sys.executable, "-m", "engine", "hook"], input=data, cwd=project, env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()
    if done.stdout.strip():
        OUTPUTS.append(json.loads(done.stdout))
    return done


def context_of(done: subprocess.CompletedProcess, name: str) -> str:
    output = json.loads(done.stdout)
    assert set(output) == {"hookSpecificOutput"}
    assert output["hookSpecificOutput"]["hookEventName"] == name
    text = output["hookSpecificOutput"]["additionalContext"]
    assert 0 < len(text) <= CONTEXT_CAP
    return text


def records(env: dict) -> list[dict]:
    path = Path(env["CTXBUDGET_LOG"])
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def hook_log(env: dict) -> list[str]:
    path = Path(env["CTXBUDGET_HOOK_LOG"])
    return path.read_text().splitlines() if path.exists() else []


def test_a_scripted_session_injects_and_records(project: Path, env: dict, run_cli, monkeypatch) -> None:
    outputs = {name: hook(event(name, project), project, env) for name in SESSION}
    for name in ("pre-tool-use-task", "instructions-loaded", "subagent-stop", "stop", "session-end"):
        assert outputs[name].stdout == b"", name

    start = context_of(outputs["session-start"], "SessionStart")
    assert "roles/data-architect-role" in start
    assert "patterns/" in start and "specialists/" not in start  # the global scope only

    prompt = context_of(outputs["user-prompt-submit"], "UserPromptSubmit")
    for line in start.splitlines():  # what the session start gave is not given again
        if line.startswith("### "):
            assert line not in prompt

    subagent = context_of(outputs["subagent-start"], "SubagentStart")
    assert "specialists/dbt-expert" in subagent
    assert "specialists/dbt-expert/patterns/incremental-models.md" in subagent  # the task is about incrementals

    found = {r["run_id"]: r for r in records(env)}
    session_id = event("session-start", project)["session_id"]
    task = event("pre-tool-use-task", project)["tool_input"]["prompt"]
    prompt_id = event("user-prompt-submit", project)["prompt_id"]
    assert set(found) == {f"{session_id}:session", f"{session_id}:prompt:{prompt_id}", "a7c1e9f3"}
    sub = found["a7c1e9f3"]
    assert sub["agent"] == "specialists/dbt-expert" and sub["session_id"] == session_id
    assert sub["tier_source"] == "detected" and 0 < sub["confidence"] <= 1
    assert sub["task_hash"] == "sha256:" + hashlib.sha256(task.encode()).hexdigest()[:16]
    assert "task" not in sub or sub["task"] is None  # only with log_task: true
    assert sub["tokens_loaded"] == sum(sub["scopes"].values()) and 0 < sub["tokens_loaded"] <= sub["budget"]
    assert sub["items"] > 0 and sub["success"] is True and sub["duration_s"] >= 0
    session = found[f"{session_id}:session"]
    assert session["tier_source"] in ("default", "given") and session["scopes"]["instructions"] > 0
    assert set(session["scopes"]) == {"global", "instructions"}
    turn = found[f"{session_id}:prompt:{prompt_id}"]
    assert turn["tier_source"] == "detected" and "instructions" not in turn["scopes"]
    assert hook_log(env) == []

    monkeypatch.setenv("CTXBUDGET_LOG", env["CTXBUDGET_LOG"])
    code, out, err = run_cli("analyze", "--json")
    assert code == 0, err
    assert json.loads(out)["runs"] == 3


def test_subagents_started_together_take_different_prompts(project: Path, env: dict) -> None:
    prompts = {"toolu_1": "List the dbt models tagged finance.",
               "toolu_2": "Refactor the orders incremental model to merge on order_id and add a snapshot."}
    for tool_use_id, prompt in prompts.items():
        hook(event("pre-tool-use-task", project, tool_use_id=tool_use_id,
                   tool_input={"description": "x", "prompt": prompt, "subagent_type": "dbt-expert"}), project, env)
    starts = [subprocess.Popen([sys.executable, "-m", "engine", "hook"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=project, env=env)
              for _ in range(2)]
    for n, process in enumerate(starts):
        payload = event("subagent-start", project, agent_id=f"agent-{n}")
        process.communicate(json.dumps(payload).encode(), timeout=120)
        assert process.returncode == 0
    for n in range(2):
        hook(event("subagent-stop", project, agent_id=f"agent-{n}"), project, env)
    hashes = {r["task_hash"] for r in records(env)}
    assert hashes == {"sha256:" + hashlib.sha256(p.encode()).hexdigest()[:16] for p in prompts.values()}


@pytest.mark.parametrize("tier", ["simple", "medium", "complex", "multi-system"])
def test_injections_stay_under_the_cap_at_every_tier(project: Path, env: dict, tmp_path: Path, tier: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"version: 1\nextends: default\ndefault_tier: {tier}\n"
                      "claude_code:\n  main_agent: data-architect\n")
    env = {**env, "CTXBUDGET_POLICY": str(policy)}
    text = context_of(hook(event("session-start", project), project, env), "SessionStart")
    sub = context_of(hook(event("subagent-start", project, agent_type="data-architect", agent_id="arch"),
                          project, env), "SubagentStart")
    for injected in (text, sub):
        if "is longer than a hook may inject" in injected:
            spilled = Path(injected.split("`")[1])
            assert spilled.is_file() and spilled.stat().st_size > CONTEXT_CAP
            assert spilled.is_relative_to(project / ".claude" / "ctxbudget" / "packs")


def test_a_large_pack_goes_to_a_file_with_an_index(project: Path, env: dict, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nextends: default\nclaude_code:\n  context_cap: 1500\n")
    env = {**env, "CTXBUDGET_POLICY": str(policy)}
    text = context_of(hook(event("subagent-start", project), project, env), "SubagentStart")
    assert len(text) <= 1500 and "is longer than a hook may inject" in text
    spilled = Path(text.split("`")[1])
    whole = spilled.read_text()
    listed = [line[2:].split(" (")[0] for line in text.splitlines() if line.startswith("- ") and "more in" not in line]
    assert listed and all(f"### {where} (" in whole for where in listed)
    assert (project / ".claude" / "ctxbudget" / ".gitignore").read_text().strip().endswith("*")


HOSTILE_ERRORS = json.loads((HOSTILE / "errors.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("payload", sorted(p.name for p in HOSTILE.iterdir() if p.suffix in (".json", ".bin")
                                           and p.name != "errors.json"))
def test_garbage_on_stdin_fails_open(project: Path, env: dict, payload: str) -> None:
    done = hook((HOSTILE / payload).read_bytes(), project, env)
    assert done.stdout == b"" and b"Traceback" not in done.stderr
    assert len(hook_log(env)) == 1
    assert HOSTILE_ERRORS[payload] in hook_log(env)[0]


@pytest.mark.parametrize(("cwd", "reason"), [
    ("relative/project", "is not an absolute path"), ("/tmp/x\x00y", "is not an absolute path"),
    (7, "has no 'cwd'"), ("", "has no 'cwd'")])
def test_a_cwd_that_is_not_an_absolute_path_is_a_bad_payload(cwd, reason: str) -> None:
    from engine.claude_code.payload import BadPayload, parse_event

    with pytest.raises(BadPayload, match=reason):
        parse_event(json.dumps({"hook_event_name": "Stop", "session_id": "s", "cwd": cwd}).encode())


def test_a_cwd_that_is_not_a_folder_is_a_bad_payload_and_nothing_is_made(project: Path, env: dict,
                                                                        tmp_path: Path) -> None:
    """The hook keeps its session state under the payload's cwd: a cwd that does not exist (or is a file) fails
    open, with no folder made for it (before, `.claude/ctxbudget/sessions` was made under any path)."""
    from engine.claude_code.payload import BadPayload, parse_event

    missing, a_file = tmp_path / "gone" / "project", tmp_path / "file"
    a_file.write_text("x")
    for cwd in (missing, a_file):
        with pytest.raises(BadPayload, match="is not a folder"):
            parse_event(json.dumps({"hook_event_name": "Stop", "session_id": "s", "cwd": str(cwd)}).encode())
    for name in ("session-start", "user-prompt-submit"):
        done = hook(json.dumps(event(name, missing)).encode(), project, env)
        assert done.returncode == 0 and done.stdout == b""
    assert not (tmp_path / "gone").exists()
    assert len(hook_log(env)) == 2


def test_a_file_path_with_a_nul_is_no_file_path(tmp_path: Path) -> None:
    from engine.claude_code.payload import parse_event

    base = {"hook_event_name": "InstructionsLoaded", "session_id": "s", "cwd": str(tmp_path)}
    assert parse_event(json.dumps({**base, "file_path": "/p/CLAUDE.md"}).encode()).file_path == "/p/CLAUDE.md"
    assert parse_event(json.dumps({**base, "file_path": "/p/x\x00.md"}).encode()).file_path is None


def test_a_broken_policy_fails_open(project: Path, env: dict, tmp_path: Path) -> None:
    policy = tmp_path / "broken.yaml"
    policy.write_text("version: 1\nprofiles: [\n")
    done = hook(event("user-prompt-submit", project), project, {**env, "CTXBUDGET_POLICY": str(policy)})
    assert done.stdout == b"" and records(env) == []
    (line,) = hook_log(env)
    assert "UserPromptSubmit" in line and "yaml-syntax" in line


def test_a_missing_memory_root_fails_open(project: Path, env: dict) -> None:
    shutil.rmtree(project / ".claude" / "memory")
    done = hook(event("subagent-start", project), project, env)
    assert done.stdout == b""
    (line,) = hook_log(env)
    assert "memory root" in line


def test_a_corrupt_index_is_rebuilt_not_fatal(project: Path, env: dict) -> None:
    hook(event("subagent-start", project), project, env)
    indexes = list(project.rglob("*.sqlite*")) + list(Path(env.get("CTXBUDGET_CACHE_DIR", "/nonexistent")).rglob("*.sqlite*"))
    for path in indexes:
        path.write_bytes(b"not a database" * 100)
    done = hook(event("subagent-start", project, agent_id="again"), project, env)
    assert "specialists/dbt-expert" in context_of(done, "SubagentStart")


def test_unknown_and_skipped_agents_get_nothing(project: Path, env: dict, tmp_path: Path) -> None:
    done = hook(event("subagent-start", project, agent_type="general-purpose"), project, env)
    assert done.stdout == b"" and hook_log(env) == []  # not an error: the policy has no such agent
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nextends: default\nclaude_code:\n  skip_agents: [dbt-expert]\n"
                      "  unknown_agents: main\n")
    env = {**env, "CTXBUDGET_POLICY": str(policy)}
    assert hook(event("subagent-start", project), project, env).stdout == b""
    text = context_of(hook(event("subagent-start", project, agent_type="Explore", agent_id="e1"), project, env),
                      "SubagentStart")
    assert "roles/data-architect-role" in text


def test_a_session_started_with_an_agent_uses_it(project: Path, env: dict) -> None:
    done = hook(event("session-start", project, agent_type="snowflake-expert"), project, env)
    assert "specialists/snowflake-expert" in context_of(done, "SessionStart")


def test_the_hook_times_out_open(project: Path, env: dict, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nextends: default\nclaude_code:\n  timeout_ms: 100\n")
    slow = tmp_path / "sitecustomize.py"  # makes packing hang, as a stuck file system would
    slow.write_text("import time, engine.claude_code.packing as p\n"
                    "p.pack_items = lambda *a, **k: time.sleep(30)\n")
    env = {**env, "CTXBUDGET_POLICY": str(policy), "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    done = hook(event("user-prompt-submit", project), project, env)
    assert done.stdout == b""
    (line,) = hook_log(env)
    assert "gave up after 100 ms" in line


def test_an_instructions_file_that_is_a_fifo_is_refused_not_waited_on(project: Path, env: dict) -> None:
    # InstructionsLoaded's file_path named a FIFO: open() blocked until the hook's timeout (5 s of a session).
    fifo = project / "CLAUDE.local.md"
    os.mkfifo(fifo)
    done = hook(event("instructions-loaded", project, file_path=str(fifo)), project, env)
    assert done.stdout == b""
    (line,) = hook_log(env)
    assert "is a FIFO, not a regular file" in line and "gave up" not in line


def test_the_ignore_file_goes_only_into_a_folder_the_hook_made(project: Path, env: dict, tmp_path: Path) -> None:
    # A policy's state_dir naming a folder of the project's own (src) made the hook write src/.gitignore of
    # "*": every new file under src hidden from git. Only a state folder the hook creates gets one.
    (project / "src").mkdir()
    (project / "src" / "model.sql").write_text("select 1\n")
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nextends: default\nclaude_code:\n  state_dir: src\n")
    hook(event("session-start", project), project, {**env, "CTXBUDGET_POLICY": str(policy)})
    assert list((project / "src" / "sessions").glob("*.jsonl"))  # the hook did use the folder
    assert not (project / "src" / ".gitignore").exists()
    hook(event("session-start", project), project, env)
    assert (project / ".claude" / "ctxbudget" / ".gitignore").read_text().strip().endswith("*")


def test_a_hook_log_that_is_a_fifo_nobody_reads_does_not_hang_the_hook(project: Path, env: dict,
                                                                        tmp_path: Path) -> None:
    # CTXBUDGET_HOOK_LOG on a FIFO (to watch the log live) with no reader at the moment: opening it for the
    # failure's line blocked the hook forever — past its own timeout, which is disarmed by then (Claude Code
    # killed it after 10 s, on every event). The line is dropped instead.
    fifo = tmp_path / "hook.fifo"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, "-m", "engine", "hook"], input=b"not json", cwd=project,
                          env={**env, "CTXBUDGET_HOOK_LOG": str(fifo)}, capture_output=True, timeout=30)
    assert done.returncode == 0 and done.stdout == b"" and done.stderr == b""


def test_spilled_packs_of_sessions_idle_for_a_day_are_removed(project: Path, env: dict) -> None:
    # Every spilled pack (one per session and subagent, up to hundreds of kB each) stayed in
    # .claude/ctxbudget/packs/ for good: the folder grew without bound. SessionStart now removes the packs of
    # sessions idle for a day, as it records their runs; a live session's stay.
    packs = project / ".claude" / "ctxbudget" / "packs"
    old, live = packs / "0123456789abcdef", packs / "fedcba9876543210"
    for folder in (old, live):
        folder.mkdir(parents=True)
        (folder / "prompt.md").write_text("# a large pack\n" * 1000)
    (old / "stray-dir").mkdir()  # not ours: kept, and so is the folder holding it
    elsewhere = project / "keep.md"
    elsewhere.write_text("not a pack\n")
    (old / "link.md").symlink_to(elsewhere)
    then = old.stat().st_mtime - 3 * 24 * 3600
    os.utime(old, (then, then))
    hook(event("session-start", project, session_id="fresh"), project, env)
    assert not (old / "prompt.md").exists() and not (old / "link.md").exists()
    assert (old / "stray-dir").is_dir() and elsewhere.read_text() == "not a pack\n"
    assert (live / "prompt.md").exists()
    assert hook_log(env) == []


def test_the_same_prompt_twice_without_a_prompt_id_is_two_runs(project: Path, env: dict) -> None:
    # prompt_id is optional in the SDK's types; without it the run id was the prompt's digest, so a prompt typed
    # twice in a session ("continue") was one run: the second turn's Stop found it ended, and no record was written.
    for _ in range(2):
        prompt = {k: v for k, v in event("user-prompt-submit", project, prompt="continue").items() if k != "prompt_id"}
        hook(prompt, project, env)
        hook(event("stop", project), project, env)
    ids = [r["run_id"] for r in records(env)]
    assert len(ids) == 2 and len(set(ids)) == 2 and hook_log(env) == []


@pytest.mark.parametrize("source", ["clear", "compact"])
def test_after_clear_or_compact_the_session_memory_is_injected_again_and_each_start_is_recorded(
        project: Path, env: dict, source: str) -> None:
    # /clear and compaction empty the context: SessionStart(clear|compact) exists to put context back, but the
    # memory the thread had been given counted as seen, so nothing was injected; and its run reused the id
    # <session>:session, which the first start's end had closed: SessionEnd never recorded it.
    first = context_of(hook(event("session-start", project), project, env), "SessionStart")
    again = context_of(hook(event("session-start", project, source=source), project, env), "SessionStart")
    assert [line for line in again.splitlines() if line.startswith("### ")] == \
        [line for line in first.splitlines() if line.startswith("### ")]
    prompt = hook(event("user-prompt-submit", project), project, env)  # what the restart gave is not given again
    for line in again.splitlines():
        if line.startswith("### ") and prompt.stdout:
            assert line not in context_of(prompt, "UserPromptSubmit")
    hook(event("stop", project), project, env)
    hook(event("session-end", project), project, env)
    ids = [r["run_id"] for r in records(env)]
    assert len(ids) == 3 and len(set(ids)) == 3 and hook_log(env) == []


def test_a_resumed_session_is_recorded_and_not_given_its_memory_twice(project: Path, env: dict) -> None:
    hook(event("session-start", project), project, env)
    hook(event("session-end", project), project, env)
    resumed = hook(event("session-start", project, source="resume"), project, env)
    assert resumed.stdout == b""  # the transcript it resumes holds that memory already
    hook(event("session-end", project), project, env)
    assert len({r["run_id"] for r in records(env)}) == 2


def test_a_huge_subagent_prompt_does_not_push_the_session_out_of_its_file(project: Path, env: dict) -> None:
    # A 6 MB Task prompt (under the 8 MiB event cap) was stored whole: the session file passed the 4 MiB it is read
    # from (newest first), so the session's own run fell out of view and was never recorded, and the subagent's
    # claimed prompt was cut (packed at the default tier). A stored prompt keeps its first 64 KiB.
    hook(event("session-start", project), project, env)
    huge = "Fix the dbt incremental model for orders. " + "log line " * 700_000
    hook(event("pre-tool-use-task", project, tool_input={"prompt": huge, "subagent_type": "dbt-expert"}), project, env)
    hook(event("subagent-start", project), project, env)
    hook(event("subagent-stop", project), project, env)
    hook(event("session-end", project), project, env)
    found = {r["run_id"]: r for r in records(env)}
    assert len(found) == 2 and hook_log(env) == []
    assert [r["tier_source"] for r in found.values() if r["agent"] == "specialists/dbt-expert"] == ["detected"]


def plant_session(project: Path, session_id: str, *entries: dict, age_s: float = 0) -> Path:
    """A session file of ``entries`` in the project, last touched ``age_s`` ago."""
    from engine.claude_code.session import session_file

    path = Path(session_file(str(project / ".claude" / "ctxbudget"), session_id))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(e) + "\n" for e in entries), encoding="utf-8")
    if age_s:
        then = path.stat().st_mtime - age_s
        os.utime(path, (then, then))
    return path


def a_run(run: str, agent: str = "roles/data-architect-role", **changes) -> dict:
    return {"kind": "run", "t": 1.0, "run": run, "session": "old", "thread": "main", "turn": True, "agent": agent,
            "tier": "complex", "tier_source": "detected", "confidence": 0.9, "signals": ["dbt"],
            "task_hash": "sha256:0123456789abcdef", "task": None, "scopes": {"global": 100}, "items": 1,
            "keys": ["patterns/a.md#"], **changes}


def test_a_stale_session_that_cannot_be_recorded_does_not_block_later_sessions(project: Path, env: dict) -> None:
    # A session that crashed a day ago, one of whose runs was of an agent the policy has since dropped: its
    # record could not be written, the file stayed, and every later SessionStart in the project failed (open),
    # injecting nothing, for good. Now the runs that can be recorded are, the one that cannot is reported once
    # in the hook log, and the file is set aside (retried later, see below).
    stale = plant_session(project, "old", a_run("old:gone", agent="specialists/retired-expert"), a_run("old:ok"),
                          age_s=3 * 24 * 3600)
    for n in range(2):
        done = hook(event("session-start", project, session_id=f"new-{n}"), project, env)
        assert "roles/data-architect-role" in context_of(done, "SessionStart")
    (line,) = hook_log(env)
    assert "old:gone" in line and "retired-expert" in line and "SessionStart session=new-0" in line
    assert [(r["run_id"], r["success"]) for r in records(env)] == [("old:ok", False)]
    assert not stale.exists()
    kept = stale.with_name(stale.name + ".unrecorded")
    assert "old:gone" in kept.read_text(encoding="utf-8")


def test_a_run_that_cannot_be_recorded_does_not_stop_the_others(project: Path, env: dict) -> None:
    plant_session(project, "s1", a_run("s1:gone", agent="specialists/retired-expert"), a_run("s1:ok"))
    assert hook(event("session-end", project, session_id="s1"), project, env).stdout == b""
    assert [r["run_id"] for r in records(env)] == ["s1:ok"]  # the first run's failure stopped this one
    (line,) = hook_log(env)
    assert "s1:gone" in line


ILL_SHAPED = [  # session entries of the right kind with fields of the wrong type (a hand edit, another version)
    a_run("r", keys=5), a_run("r", keys=[["nested"]]), a_run("r", t="noon"), a_run("r", scopes=[1]),
    a_run("r", signals=5), a_run([1]), {k: v for k, v in a_run("r").items() if k != "agent"},
    {"kind": "instructions", "thread": "main", "run": [1], "tokens": 5},
    {"kind": "end", "run": [1]}, {"kind": "claim", "tool_use_id": [1], "agent_id": "a"},
    {"kind": "task", "tool_use_id": {"x": 1}, "agent_type": "dbt-expert", "prompt": "Fix the orders model"},
    {"kind": "compacted", "t": 1.0, "seen": {"main": "patterns/a.md#"}}, {"kind": "compacted", "seen": [1]},
    {"kind": "compacted", "seen": {"main": [1, ["x"], None]}, "starts": 2}, {"kind": "compacted", "seen": {},
                                                                           "starts": "2"},
    {"kind": "compacted", "seen": {}, "live_bytes": 10 ** 30}, {"kind": "attempt", "t": "noon", "failed": 1},
    {"kind": "instructions", "thread": "main", "run": "r", "tokens": 5, "t": "noon"},
]


def test_an_instructions_entry_with_a_time_that_is_not_a_number_does_not_fail_the_next_load(project: Path,
                                                                                           env: dict) -> None:
    """The duplicate check of InstructionsLoaded reads each earlier load's time: a hand-edited one that is not a
    number is skipped (it raised ValueError, and the load was not counted)."""
    from engine.claude_code.session import session_file

    hook(event("user-prompt-submit", project, session_id="s4"), project, env)
    hook(event("instructions-loaded", project, session_id="s4"), project, env)
    path = Path(session_file(str(project / ".claude" / "ctxbudget"), "s4"))
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    loads = [e for e in lines if e["kind"] == "instructions"]
    assert len(loads) == 1
    loads[0]["t"] = "noon"
    path.write_text("".join(json.dumps(e) + "\n" for e in lines), encoding="utf-8")
    hook(event("instructions-loaded", project, session_id="s4"), project, env)
    assert hook_log(env) == []
    kept = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert sum(e["kind"] == "instructions" for e in kept) == 2


@pytest.mark.parametrize("entry", ILL_SHAPED, ids=[json.dumps(e)[:60] for e in ILL_SHAPED])
def test_an_ill_shaped_session_entry_is_skipped_not_fatal_for_the_session(project: Path, env: dict,
                                                                          entry: dict) -> None:
    # One such line made every later event of the session fail (open): no memory for any prompt or subagent,
    # no usage record for any of its runs. It is skipped like an unreadable line.
    plant_session(project, "s2", entry)
    for name in ("user-prompt-submit", "subagent-start"):
        done = hook(event(name, project, session_id="s2"), project, env)
        assert done.stdout, name
    hook(event("stop", project, session_id="s2"), project, env)
    hook(event("subagent-stop", project, session_id="s2"), project, env)
    assert hook_log(env) == []
    assert len(records(env)) == 2


def test_sdk_types(project: Path, env: dict, tmp_path: Path) -> None:
    """Every fixture is a valid input of its event and every output a valid SyncHookJSONOutput, by the
    TypeScript compiler against the SDK's published types; deliberately wrong values are rejected."""
    from sdk_types import install_hint, node_modules, typecheck

    if node_modules() is None:
        pytest.skip("the Claude Agent SDK's types are not installed (.ci/run installs them): " + install_hint)
    if not OUTPUTS:  # run alone: make some
        for name in SESSION:
            hook(event(name, project), project, env)
    values: list[tuple[str, object, bool]] = []
    for path in sorted(EVENTS.glob("*.json")):
        payload = event(path.stem, project)
        values.append((payload["hook_event_name"] + "HookInput", payload, False))
    values += [("SyncHookJSONOutput", output, False) for output in OUTPUTS]
    start = event("session-start", project)
    values += [
        ("SessionStartHookInput", {**start, "source": "reboot"}, True),
        ("SubagentStartHookInput", {k: v for k, v in event("subagent-start", project).items() if k != "agent_id"},
         True),
        ("PostToolUseFailureHookInput",
         {k: v for k, v in event("post-tool-use-failure-task", project).items() if k != "error"}, True),
        ("PermissionDeniedHookInput",
         {k: v for k, v in event("permission-denied-task", project).items() if k != "tool_use_id"}, True),
        ("SyncHookJSONOutput", {"hookSpecificOutput": {"hookEventName": "SubagentStart", "additionalContext": "x",
                                                       "context": "y"}}, True),
        ("SyncHookJSONOutput", {"hookSpecificOutput": {"hookEventName": "SubagentStart", "additionalContext": 3}}, True),
    ]
    assert typecheck(values, tmp_path) == ""


def test_a_session_past_4_mib_still_ends_every_run_it_opened(project: Path, env: dict) -> None:
    # Session.entries() read only the file's last 4 MiB: in a long session (many turns, many subagents) the
    # oldest entries fell out of view — the session's own run, subagents still running, a Task call's prompt not
    # yet claimed, the memory already injected — and were never recorded, claimed or skipped again. The file is
    # compacted now (the live state kept, the rest dropped), so every run it opened is recorded.
    from engine.claude_code.session import COMPACT_AT_BYTES, session_file

    start = context_of(hook(event("session-start", project, session_id="long"), project, env), "SessionStart")
    task = "Refactor the orders incremental model to merge on order_id."
    hook(event("pre-tool-use-task", project, session_id="long", tool_use_id="toolu_early",
               tool_input={"prompt": task, "subagent_type": "dbt-expert"}), project, env)
    path = Path(session_file(str(project / ".claude" / "ctxbudget"), "long"))
    history = [a_run(f"sub-{n}", agent="specialists/dbt-expert", thread=f"sub-{n}", turn=False, session="long")
               for n in range(3)]  # subagents still running, started before the history below
    for n in range(6000):  # ended turns: 4.5 MiB of history nobody needs any more
        history.append(a_run(f"long:prompt:{n}", session="long", keys=[f"gone/{(n + k) % 200}.md#" for k in range(24)]))
        history.append({"kind": "end", "t": 1.0, "run": f"long:prompt:{n}"})
    with path.open("a", encoding="utf-8") as out:
        out.write("".join(json.dumps(e) + "\n" for e in history))
    assert path.stat().st_size > 4 << 20

    sub = context_of(hook(event("subagent-start", project, session_id="long", agent_id="late"), project, env),
                     "SubagentStart")
    assert "specialists/dbt-expert" in sub
    assert path.stat().st_size < COMPACT_AT_BYTES  # compacted by that event
    prompt = hook(event("user-prompt-submit", project, session_id="long"), project, env)
    given = [line for line in start.splitlines() if line.startswith("### ")]
    assert given and not any(line in prompt.stdout.decode() for line in given)  # still known as injected
    for agent_id in ("sub-0", "sub-1", "sub-2", "late"):
        hook(event("subagent-stop", project, session_id="long", agent_id=agent_id), project, env)
    hook(event("stop", project, session_id="long"), project, env)
    hook(event("session-end", project, session_id="long"), project, env)
    found = {r["run_id"]: r for r in records(env)}
    prompt_id = event("user-prompt-submit", project)["prompt_id"]
    assert set(found) == {"long:session", "sub-0", "sub-1", "sub-2", "late", f"long:prompt:{prompt_id}"}
    assert found["late"]["task_hash"] == "sha256:" + hashlib.sha256(task.encode()).hexdigest()[:16]
    assert hook_log(env) == []


APPENDER = """
import sys
import engine.claude_code.session as session
session.COMPACT_AT_BYTES = int(sys.argv[4])
path, who, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = session.Session(path)
for n in range(count):
    with s.locked() as locked:
        locked.entries()  # compacts when the file has grown past its bound
        locked.append("task", tool_use_id=f"{who}-{n}", agent_type="dbt-expert", prompt="x" * 300)
        locked.append("run", run=f"{who}-run-{n}", thread="main", agent="a", tier="simple", keys=[])
        locked.append("end", run=f"{who}-run-{n}")
"""


def test_appenders_racing_a_compaction_lose_nothing(tmp_path: Path) -> None:
    # A process that opened the session file before a compaction renamed a new one over it, and waited for the
    # lock on the old one, appended to the replaced file: its entry was gone. It opens the path again now.
    from engine.claude_code.session import Session

    path = tmp_path / "state" / "sessions" / "s.jsonl"
    path.parent.mkdir(parents=True)
    script = tmp_path / "appender.py"
    script.write_text(APPENDER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, str(script), str(path), f"w{n}", "250", "16384"], env=env,
                                stderr=subprocess.PIPE) for n in range(3)]
    for worker in workers:
        assert worker.wait(timeout=300) == 0, worker.stderr.read().decode()
    with Session(str(path)).locked() as s:
        entries = s.entries()
    tasks = {e["tool_use_id"] for e in entries if e["kind"] == "task"}
    assert tasks == {f"w{w}-{n}" for w in range(3) for n in range(250)}  # every one, none twice lost
    assert entries[0]["kind"] == "compacted"  # compacted along the way (750 tasks stay: none was claimed)
    assert len([e for e in entries if e["kind"] == "run"]) < 750  # ended runs went (those since stay till next)
    assert not list(path.parent.glob("*.tmp"))


def test_the_live_state_keeps_what_later_events_need() -> None:
    from engine.claude_code.session import live_state, seen_keys, session_starts

    now = 1_000_000.0
    entries = [
        a_run("s:session", thread="main", turn=False, keys=["a#"], event="SessionStart"),
        {"kind": "instructions", "t": 1.0, "thread": "main", "run": "s:session", "tokens": 40},
        a_run("p1", keys=["b#"]), {"kind": "end", "t": 1.0, "run": "p1"},
        a_run("s:session:2", thread="main", turn=False, keys=["a#"], event="SessionStart", reset=True),
        {"kind": "end", "t": 1.0, "run": "s:session"},
        a_run("p2", keys=["c#"]), {"kind": "end", "t": 1.0, "run": "p2"},
        {"kind": "instructions", "t": 1.0, "thread": "main", "run": "p2", "tokens": 7},
        {"kind": "task", "t": now - 10, "tool_use_id": "t1", "agent_type": "x", "prompt": "claimed, running"},
        {"kind": "task", "t": now - 10, "tool_use_id": "t2", "agent_type": "x", "prompt": "claimed, done"},
        {"kind": "task", "t": now - 10, "tool_use_id": "t3", "agent_type": "x", "prompt": "not claimed yet"},
        {"kind": "task", "t": now - 7200, "tool_use_id": "t4", "agent_type": "x", "prompt": "never will be"},
        {"kind": "claim", "t": 1.0, "tool_use_id": "t1", "agent_id": "sub1"},
        {"kind": "claim", "t": 1.0, "tool_use_id": "t2", "agent_id": "sub2"},
        a_run("sub1", thread="sub1", keys=["d#"]), a_run("sub2", thread="sub2", keys=["e#"]),
        {"kind": "end", "t": 1.0, "run": "sub2"},
        {"kind": "a-kind-of-a-later-version", "t": 1.0},
    ]
    kept = live_state(entries, now=now)
    assert kept[0]["kind"] == "compacted"
    assert [e.get("run") or e.get("tool_use_id") for e in kept[1:]] == ["s:session:2", "t1", "t3", "t1", "sub1"]
    assert "reset" not in kept[1]
    for thread in ("main", "sub1"):  # the memory each thread was given is the same before and after
        assert seen_keys(kept, thread) == seen_keys(entries, thread)
    assert seen_keys(kept, "main") == {"a#", "c#"}
    assert session_starts(kept) == session_starts(entries) == 2
    assert live_state(kept, now=now)[1:] == kept[1:]  # compacting again changes nothing


def test_a_live_state_past_its_bound_is_kept_whole_and_reported(tmp_path: Path, monkeypatch) -> None:
    # What cannot be kept small (here 200 subagents still running) is kept all the same, and said once a
    # compaction: the next compaction waits until the file has doubled, so events do not rewrite it each time.
    import engine.claude_code.session as session

    monkeypatch.setattr(session, "COMPACT_AT_BYTES", 10_000)
    monkeypatch.setattr(session, "MAX_STATE_BYTES", 20_000)
    path = tmp_path / "sessions" / "s.jsonl"
    path.parent.mkdir()
    path.write_text("".join(json.dumps(a_run(f"sub-{n}", thread=f"sub-{n}")) + "\n" for n in range(200)))
    s = session.Session(str(path))
    with s.locked() as locked:
        assert len(locked.entries()) == 201  # the compacted entry and every open run
        locked.append("end", run="sub-0")
    (problem,) = s.problems
    assert "200 open runs" in str(problem) and "kept whole" in str(problem)
    with s.locked() as locked:
        assert len([e for e in locked.entries() if e["kind"] == "run"]) == 200
    assert len(s.problems) == 1


def test_a_session_file_too_large_to_read_fails_open(project: Path, env: dict) -> None:
    path = plant_session(project, "huge", a_run("huge:session"))
    os.truncate(path, 40 << 20)  # past the 32 MiB a hook reads (sparse: nothing is written)
    assert hook(event("session-end", project, session_id="huge"), project, env).stdout == b""
    (line,) = hook_log(env)
    assert "SessionTooLarge" in line and "left as it is" in line
    assert path.stat().st_size == 40 << 20


def age(path: Path, seconds: float) -> None:
    then = path.stat().st_mtime - seconds
    os.utime(path, (then, then))


def test_a_set_aside_session_is_retried_and_recorded_when_the_cause_has_gone(project: Path, env: dict,
                                                                               tmp_path: Path) -> None:
    # A session whose runs could not be recorded (the usage log unwritable for a while) was kept aside as
    # .unrecorded and never read again: its records were lost for good and the folder grew without bound. A
    # later SessionStart retries it (an hour apart at least) and records what it can.
    stale = plant_session(project, "old", a_run("old:a"), a_run("old:b"), age_s=3 * 24 * 3600)
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    unwritable = {**env, "CTXBUDGET_LOG": str(blocked / "sub" / "usage.jsonl")}
    (blocked / "sub").write_text("a file where the log's folder should be\n")
    hook(event("session-start", project, session_id="new-0"), project, unwritable)
    assert len(hook_log(env)) == 2 and records(env) == []  # one line per run not recorded
    kept = stale.with_name(stale.name + ".unrecorded")
    assert kept.exists() and not stale.exists()
    hook(event("session-start", project, session_id="new-1"), project, env)
    assert kept.exists() and records(env) == []  # tried an hour ago at most: not yet
    age(kept, 2 * 3600)
    hook(event("session-start", project, session_id="new-2"), project, env)
    assert not kept.exists()
    assert sorted((r["run_id"], r["success"]) for r in records(env)) == [("old:a", False), ("old:b", False)]
    assert len(hook_log(env)) == 2  # nothing more to say


def test_a_set_aside_session_that_keeps_failing_is_given_up_and_the_loss_reported(project: Path,
                                                                                  env: dict) -> None:
    from engine.claude_code.hook import MAX_ATTEMPTS

    stale = plant_session(project, "old", a_run("old:gone", agent="specialists/retired-expert"), a_run("old:ok"),
                          age_s=3 * 24 * 3600)
    kept = stale.with_name(stale.name + ".unrecorded")
    for n in range(MAX_ATTEMPTS):
        assert stale.exists() or kept.exists()
        hook(event("session-start", project, session_id=f"new-{n}"), project, env)
        if kept.exists():
            age(kept, 2 * 3600)
    assert not kept.exists() and not stale.exists()
    assert [r["run_id"] for r in records(env)] == ["old:ok"]  # recorded once, at the first attempt
    first, *rest = hook_log(env)
    assert "old:gone" in first and "RunNotRecorded" in first  # the first failure, run by run
    (last,) = rest  # the retries are counted in the file, not logged again; then one line says what is lost
    assert "RunsLost" in last and "gave up recording 1 run(s) of session 'old'" in last
    assert "specialists/retired-expert" in last and f"after {MAX_ATTEMPTS} attempts" in last


def test_a_set_aside_session_is_kept_no_longer_than_a_week(project: Path, env: dict) -> None:
    stale = plant_session(project, "old", a_run("old:gone", agent="specialists/retired-expert"),
                          age_s=3 * 24 * 3600)
    hook(event("session-start", project, session_id="new-0"), project, env)
    kept = stale.with_name(stale.name + ".unrecorded")
    lines = kept.read_text().splitlines()
    attempt = json.loads(lines[-1])
    assert attempt["kind"] == "attempt" and attempt["failed"] == 1
    attempt["t"] -= 8 * 24 * 3600  # first set aside eight days ago
    kept.write_text("\n".join([*lines[:-1], json.dumps(attempt)]) + "\n")
    age(kept, 2 * 3600)
    hook(event("session-start", project, session_id="new-1"), project, env)
    assert not kept.exists()
    assert "RunsLost" in hook_log(env)[-1] and "after 2 attempts over 8.0 days" in hook_log(env)[-1]


def test_a_session_start_retries_at_most_a_few_set_aside_sessions(project: Path, env: dict) -> None:
    from engine.claude_code.hook import RETRIES_PER_EVENT

    kept = []
    for n in range(RETRIES_PER_EVENT + 3):
        path = plant_session(project, f"old-{n}", a_run(f"old-{n}:a", session=f"old-{n}"))
        aside = path.with_name(path.name + ".unrecorded")
        path.rename(aside)
        age(aside, 2 * 3600 + n)
        kept.append(aside)
    hook(event("session-start", project, session_id="new"), project, env)
    assert sum(not p.exists() for p in kept) == RETRIES_PER_EVENT
    assert all(not p.exists() for p in kept[-RETRIES_PER_EVENT:])  # the least recently tried first
    assert len(records(env)) == RETRIES_PER_EVENT and hook_log(env) == []


def deliver_twice_at_once(payload: dict, project: Path, env: dict) -> list[bytes]:
    """``payload`` on the stdin of two hooks started together, as Claude Code runs one hook registered twice."""
    data = json.dumps(payload).encode()
    started = [subprocess.Popen([sys.executable, "-m", "engine", "hook"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=project, env=env)
               for _ in range(2)]
    outputs = [process.communicate(data, timeout=120)[0] for process in started]
    assert all(process.returncode == 0 for process in started)
    return outputs


def session_runs(project: Path, session_id: str) -> list[dict]:
    from engine.claude_code.session import session_file

    path = Path(session_file(str(project / ".claude" / "ctxbudget"), session_id))
    return [e for e in map(json.loads, path.read_text().splitlines()) if e["kind"] == "run"]


@pytest.mark.parametrize("with_prompt_id", [True, False], ids=["prompt_id", "no-prompt_id"])
def test_a_prompt_delivered_twice_at_once_is_one_turn(project: Path, env: dict, with_prompt_id: bool) -> None:
    # Claude Code runs a hook registered from two sources it does not deduplicate (a plugin and the settings, or
    # two command strings) twice at once with byte-identical stdin. Without a prompt_id each delivery was a run
    # of its own (the run id holds the time): the second injected the next-best memory the first had left out,
    # and the turn was recorded twice. The second delivery now injects nothing and records nothing.
    payload = event("user-prompt-submit", project)
    if not with_prompt_id:
        del payload["prompt_id"]
    outputs = deliver_twice_at_once(payload, project, env)
    assert sorted(bool(out.strip()) for out in outputs) == [False, True]
    assert len(session_runs(project, payload["session_id"])) == 1
    hook(event("stop", project), project, env)
    assert len(records(env)) == 1 and hook_log(env) == []


def test_a_prompt_typed_again_after_an_interrupted_turn_is_a_new_turn(project: Path, env: dict) -> None:
    # Esc interrupts a turn without a Stop event; the same prompt typed again later (no prompt_id) is a new turn.
    from engine.claude_code.hook import DUPLICATE_WINDOW_S
    from engine.claude_code.session import session_file

    payload = {k: v for k, v in event("user-prompt-submit", project).items() if k != "prompt_id"}
    hook(payload, project, env)
    path = Path(session_file(str(project / ".claude" / "ctxbudget"), payload["session_id"]))
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    entries[-1]["t"] -= DUPLICATE_WINDOW_S + 1  # the turn began a little longer ago than a duplicate can lag
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    hook(payload, project, env)
    hook(event("stop", project), project, env)
    assert len({r["run_id"] for r in records(env)}) == 2 and hook_log(env) == []


def test_a_subagent_start_delivered_twice_at_once_is_one_run(project: Path, env: dict) -> None:
    hook(event("pre-tool-use-task", project), project, env)
    payload = event("subagent-start", project)
    outputs = deliver_twice_at_once(payload, project, env)
    assert sorted(bool(out.strip()) for out in outputs) == [False, True]
    assert len(session_runs(project, payload["session_id"])) == 1
    hook(event("subagent-stop", project), project, env)
    (record,) = records(env)
    assert record["tier_source"] == "detected" and hook_log(env) == []


def test_an_instructions_load_delivered_twice_at_once_is_counted_once(project: Path, env: dict) -> None:
    hook(event("session-start", project), project, env)
    deliver_twice_at_once(event("instructions-loaded", project), project, env)
    hook(event("session-end", project), project, env)
    (record,) = records(env)
    once = _count_instructions(project)
    assert record["scopes"]["instructions"] == once > 0


def _count_instructions(project: Path) -> int:
    from engine.claude_code.hook import _count_file
    from engine.policy import load_policy

    return _count_file(load_policy("default"), event("instructions-loaded", project)["file_path"])


def test_a_session_that_cannot_be_compacted_is_read_whole(tmp_path: Path, monkeypatch) -> None:
    import engine.claude_code.session as session

    monkeypatch.setattr(session, "COMPACT_AT_BYTES", 1000)
    path = tmp_path / "sessions" / "s.jsonl"
    path.parent.mkdir()
    history = [a_run(f"r{n}") for n in range(20)] + [{"kind": "end", "t": 1.0, "run": f"r{n}"} for n in range(19)]
    path.write_text("".join(json.dumps(e) + "\n" for e in history))

    def no_room(*args, **kwargs):
        raise OSError(28, "No space left on device")

    s = session.Session(str(path))
    with s.locked() as locked:
        monkeypatch.setattr(session.os, "fsync", no_room)
        entries = locked.entries()
    assert len(entries) == len(history) and path.read_text().count("\n") == len(history)
    (problem,) = s.problems
    assert "not compacted (No space left on device)" in str(problem)
    assert not list(path.parent.glob("*.tmp"))


def test_a_session_start_delivered_twice_at_once_is_one_run(project: Path, env: dict) -> None:
    # The second delivery ended the run the first had just opened (a new start ends the session's open runs)
    # and opened one of its own: two records for one start, the first of them with no duration.
    payload = event("session-start", project)
    outputs = deliver_twice_at_once(payload, project, env)
    assert sorted(bool(out.strip()) for out in outputs) == [False, True]
    assert len(session_runs(project, payload["session_id"])) == 1
    hook(event("session-end", project), project, env)
    assert len(records(env)) == 1 and hook_log(env) == []


def test_a_hand_edited_live_size_does_not_turn_compaction_off(tmp_path: Path, monkeypatch) -> None:
    import engine.claude_code.session as session

    monkeypatch.setattr(session, "MAX_FILE_BYTES", 4 << 20)

    path = tmp_path / "sessions" / "s.jsonl"
    path.parent.mkdir()
    head = {"kind": "compacted", "t": 1.0, "seen": {}, "starts": 0, "live_bytes": 10 ** 12}
    ended = "".join(json.dumps(a_run(f"r{n}")) + "\n" + json.dumps({"kind": "end", "t": 1.0, "run": f"r{n}"}) + "\n"
                    for n in range(500))
    with path.open("w") as out:
        out.write(json.dumps(head) + "\n")
        while out.tell() <= 2 * (session.MAX_FILE_BYTES // 4):
            out.write(ended)
    with session.Session(str(path)).locked() as s:
        s.entries()
    assert path.stat().st_size < 1000


def test_a_pack_from_an_index_still_being_built_is_said_in_the_hook_log(project: Path, env: dict,
                                                                       monkeypatch) -> None:
    """A hook's index refresh stops at its deadline (engine.claude_code.packing.INDEX_SECONDS; a cold root of
    100,000 files takes seconds): the run is packed from what is indexed, and the hook log says so (else a user
    sees less memory and no reason). Here the deadline is 0: nothing is indexed, nothing injected, one line;
    with the usual deadline the next event indexes the sample memory, injects, and says nothing."""
    from engine.claude_code.hook import Hook, IndexIncomplete
    from engine.claude_code.payload import parse_event
    from engine.policy import load_policy

    for name in ("CTXBUDGET_LOG", "CTXBUDGET_HOOK_LOG"):
        monkeypatch.setenv(name, env[name])
    policy = load_policy("default")
    monkeypatch.setattr("engine.claude_code.packing.INDEX_SECONDS", 0.0)
    first = Hook(policy, parse_event(json.dumps(event("user-prompt-submit", project, session_id="p1")).encode()))
    assert first.handle() is None
    assert [type(p) for p in first.problems] == [IndexIncomplete]
    assert "packed from what is indexed" in str(first.problems[0])
    monkeypatch.undo()
    second = Hook(policy, parse_event(json.dumps(event("user-prompt-submit", project, session_id="p2")).encode()))
    assert "additionalContext" in json.dumps(second.handle())
    assert second.problems == []


@pytest.mark.parametrize("label", [
    "prompt", "session-startup", "subagent-specialists/dbt-expert", "..a", "-x-", ".-a", "!.a", "a!.b", "a!!b",
    "日本語", "a  b\tc", "", "!!!", "x" * 200, "a/" * 100, "Ab9._-", "é-e",
])
def test_a_spill_file_is_named_from_its_label_s_safe_characters(label: str) -> None:
    """Runs of characters other than ASCII letters, digits, ".", "_" and "-" become one "-", the ends lose "-"
    and ".", 80 characters at most, "main" when nothing is left (re is imported only for such a label)."""
    import re

    from engine.claude_code.inject import spill_file

    expected = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.")[:80] or "main"
    assert os.path.basename(spill_file("/f", "s", label)) == expected + ".md"
