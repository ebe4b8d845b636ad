"""Which Task call's prompt a starting subagent is handed (SubagentStart carries no task text).

PreToolUse(Task/Agent) remembers each call's prompt; SubagentStart takes the oldest open one of its type. A call
that never starts a subagent — denied, blocked, failed, its turn interrupted — used to stay open, and every later
subagent of that type was handed the previous call's prompt for the rest of the session. PostToolUse,
PostToolUseFailure and PermissionDenied of the call, and the end of its turn (Stop, a new UserPromptSubmit), now
settle it. Each test feeds the events to ``ctxbudget hook`` in a subprocess, as Claude Code does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from test_claude_code_hook import (deliver_twice_at_once, env, event, hook, hook_log, project,  # noqa: F401
                                   records)

DENIED = "Drop the orders table and rebuild it from the raw events, then backfill a year of history."
ALLOWED = "Refactor the orders incremental model to merge on order_id and add a snapshot of customers."
OTHER = "List the dbt models tagged finance and say which of them have no tests."


def digest(prompt: str) -> str:
    return "sha256:" + hashlib.sha256(prompt.encode()).hexdigest()[:16]


def call(project: Path, env: dict, tool_use_id: str, prompt: str, kind: str = "dbt-expert", **changes) -> None:
    """PreToolUse of a Task call (the fixture's turn, prompt_id, unless ``changes`` say otherwise)."""
    hook(event("pre-tool-use-task", project, tool_use_id=tool_use_id, **changes,
               tool_input={"description": "x", "prompt": prompt, "subagent_type": kind}), project, env)


def over(project: Path, env: dict, name: str, tool_use_id: str, prompt: str, **changes) -> None:
    """The call's end: ``name`` is post-tool-use-task, post-tool-use-failure-task or permission-denied-task."""
    payload = event(name, project, tool_use_id=tool_use_id, **changes)
    payload["tool_input"] = {**payload["tool_input"], "prompt": prompt}
    assert hook(payload, project, env).stdout == b""


def task_of(project: Path, env: dict, agent_id: str, **changes) -> str | None:
    """Start and stop a dbt-expert subagent; the task_hash its usage record says it was packed for."""
    assert hook(event("subagent-start", project, agent_id=agent_id, **changes), project, env).stdout
    hook(event("subagent-stop", project, agent_id=agent_id), project, env)
    (record,) = [r for r in records(env) if r["run_id"] == agent_id]
    return record["task_hash"]


@pytest.mark.parametrize("ending", ["permission-denied-task", "post-tool-use-failure-task"],
                         ids=["denied", "failed"])
def test_a_denied_or_failed_call_does_not_hand_its_prompt_to_the_next_subagent(project: Path, env: dict,
                                                                               ending: str) -> None:
    # The defect: the denied call stayed unclaimed, so the allowed one's subagent got the denied prompt (and the
    # next subagent the allowed one's, and so on: an off-by-one for the rest of the session).
    call(project, env, "toolu_denied", DENIED)
    over(project, env, ending, "toolu_denied", DENIED)
    call(project, env, "toolu_allowed", ALLOWED)
    assert task_of(project, env, "agent-1") == digest(ALLOWED)
    call(project, env, "toolu_next", OTHER)
    assert task_of(project, env, "agent-2") == digest(OTHER)
    assert hook_log(env) == []


@pytest.mark.parametrize("with_prompt_id", [True, False], ids=["prompt_id", "no-prompt_id"])
def test_a_call_of_an_interrupted_turn_is_not_handed_to_the_next_turns_subagent(project: Path, env: dict,
                                                                                with_prompt_id: bool) -> None:
    # Esc during the permission prompt: no PostToolUse, no Stop. The next prompt begins a new turn, and a
    # subagent starts within the turn of its call. (Without prompt_id, older payloads, the new turn's
    # UserPromptSubmit alone settles the call; with it, the SubagentStart also prefers its own turn's call.)
    def drop(payload: dict) -> dict:
        return payload if with_prompt_id else {k: v for k, v in payload.items() if k != "prompt_id"}

    first, second = "0b9e6c1d-2f4a-4b8e-9d3c-7a6b5c4d3e2f", "5d1f0e2a-8c3b-4a7e-b6d5-9e8f7a6b5c4d"
    hook(drop(event("user-prompt-submit", project, prompt_id=first)), project, env)
    hook(drop(event("pre-tool-use-task", project, tool_use_id="toolu_1", prompt_id=first,
                    tool_input={"prompt": DENIED, "subagent_type": "dbt-expert"})), project, env)
    hook(drop(event("user-prompt-submit", project, prompt_id=second, prompt="Just fix the merge key instead.")),
         project, env)
    hook(drop(event("pre-tool-use-task", project, tool_use_id="toolu_2", prompt_id=second,
                    tool_input={"prompt": ALLOWED, "subagent_type": "dbt-expert"})), project, env)
    start = drop(event("subagent-start", project, agent_id="agent-1", prompt_id=second))
    assert hook(start, project, env).stdout
    hook(event("subagent-stop", project, agent_id="agent-1"), project, env)
    assert [r["task_hash"] for r in records(env) if r["run_id"] == "agent-1"] == [digest(ALLOWED)]


def test_a_prompt_submit_that_injects_nothing_still_ends_the_turns_calls(project: Path, env: dict,
                                                                         tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nextends: default\nclaude_code:\n  inject: [SessionStart, SubagentStart]\n")
    env = {**env, "CTXBUDGET_POLICY": str(policy)}
    call(project, env, "toolu_1", DENIED)
    assert hook(event("user-prompt-submit", project), project, env).stdout == b""
    call(project, env, "toolu_2", ALLOWED)
    assert task_of(project, env, "agent-1") == digest(ALLOWED)


def test_the_stop_of_a_turn_ends_the_calls_that_started_no_subagent(project: Path, env: dict) -> None:
    # Another PreToolUse hook blocked the call (or an event of its end was lost): the turn's Stop settles it.
    call(project, env, "toolu_blocked", DENIED)
    hook(event("stop", project), project, env)
    call(project, env, "toolu_2", ALLOWED)
    assert task_of(project, env, "agent-1") == digest(ALLOWED)


def test_parallel_calls_start_their_subagents_in_order(project: Path, env: dict) -> None:
    # Several Task calls in one message: every PreToolUse first, then the SubagentStarts in the calls' order, then
    # each call's PostToolUse when its subagent is done. FIFO hands each its own prompt; the PostToolUses of
    # calls a subagent took settle nothing, and the next call is handed to the next subagent.
    for tool_use_id, prompt in (("toolu_a", DENIED), ("toolu_b", ALLOWED)):
        call(project, env, tool_use_id, prompt)
    for agent_id in ("agent-a", "agent-b"):
        assert hook(event("subagent-start", project, agent_id=agent_id), project, env).stdout
    for tool_use_id, prompt in (("toolu_b", ALLOWED), ("toolu_a", DENIED)):
        over(project, env, "post-tool-use-task", tool_use_id, prompt)
    for agent_id in ("agent-a", "agent-b"):
        hook(event("subagent-stop", project, agent_id=agent_id), project, env)
    found = {r["run_id"]: r["task_hash"] for r in records(env)}
    assert found == {"agent-a": digest(DENIED), "agent-b": digest(ALLOWED)}
    call(project, env, "toolu_c", OTHER)
    assert task_of(project, env, "agent-c") == digest(OTHER)


def test_one_of_parallel_calls_denied_hands_the_other_its_own_prompt(project: Path, env: dict) -> None:
    call(project, env, "toolu_a", DENIED)
    call(project, env, "toolu_b", ALLOWED)
    over(project, env, "permission-denied-task", "toolu_a", DENIED)
    assert task_of(project, env, "agent-b") == digest(ALLOWED)


def test_events_delivered_twice_settle_and_claim_once(project: Path, env: dict) -> None:
    # A hook registered from two sources runs twice at once with byte-identical stdin: the call is remembered
    # twice (one tool_use_id: claimed and settled together) and settled once.
    from engine.claude_code.session import session_file

    denied = event("pre-tool-use-task", project, tool_use_id="toolu_denied",
                   tool_input={"prompt": DENIED, "subagent_type": "dbt-expert"})
    deliver_twice_at_once(denied, project, env)
    ending = event("post-tool-use-failure-task", project, tool_use_id="toolu_denied")
    assert deliver_twice_at_once(ending, project, env) == [b"", b""]
    allowed = event("pre-tool-use-task", project, tool_use_id="toolu_allowed",
                    tool_input={"prompt": ALLOWED, "subagent_type": "dbt-expert"})
    deliver_twice_at_once(allowed, project, env)
    assert task_of(project, env, "agent-1") == digest(ALLOWED)
    call(project, env, "toolu_next", OTHER)
    assert task_of(project, env, "agent-2") == digest(OTHER)
    path = Path(session_file(str(project / ".claude" / "ctxbudget"), denied["session_id"]))
    kinds = [json.loads(line)["kind"] for line in path.read_text().splitlines()]
    assert kinds.count("settled") == 1 and kinds.count("task") == 5 and kinds.count("claim") == 2


def test_a_subagents_own_calls_end_with_it(project: Path, env: dict) -> None:
    # A call made inside a subagent (agent_id set) belongs to that subagent's thread: its SubagentStop settles it,
    # the main thread's Stop does not (the subagent may still be running, in the background).
    call(project, env, "toolu_main", DENIED, kind="snowflake-expert")
    call(project, env, "toolu_inner", ALLOWED, agent_id="agent-outer", agent_type="dbt-expert")
    hook(event("subagent-stop", project, agent_id="agent-outer"), project, env)
    call(project, env, "toolu_later", OTHER)
    assert task_of(project, env, "agent-1") == digest(OTHER)
    assert task_of(project, env, "agent-2", agent_type="snowflake-expert") == digest(DENIED)


def test_the_live_state_drops_settled_calls_and_keeps_open_ones() -> None:
    from engine.claude_code.session import live_state, open_tasks

    now = 1_000_000.0

    def task(tool_use_id: str, thread: str = "main") -> dict:
        return {"kind": "task", "t": now - 10, "tool_use_id": tool_use_id, "agent_type": "x", "prompt": tool_use_id,
                "thread": thread}

    entries = [task("denied"), task("before-stop"), task("inner", thread="sub"),
               {"kind": "settled", "t": now, "tool_use_id": "denied", "why": "denied"},
               {"kind": "settled", "t": now, "thread": "main", "why": "stop"},
               task("after-stop"), {"kind": "task", "t": now - 10, "tool_use_id": "old", "agent_type": "x",
                                    "prompt": "written before tasks had a thread"}]
    assert [e["tool_use_id"] for e in open_tasks(entries)] == ["inner", "after-stop", "old"]
    kept = live_state(entries, now=now)
    assert [e.get("tool_use_id") for e in kept[1:]] == ["inner", "after-stop", "old"]
    assert open_tasks(kept) == open_tasks(entries)
    older = [{"kind": "task", "t": now - 20, "tool_use_id": "legacy", "agent_type": "x", "prompt": "p"},
             {"kind": "settled", "t": now, "thread": "main", "why": "turn"}]
    assert open_tasks(older) == []  # an entry of an earlier version (no thread) is the main thread's


def test_a_subagent_takes_a_call_of_its_own_turn_first(project: Path, env: dict) -> None:
    # prompt_id is on every event of a turn: a call of an earlier turn nothing settled (its session's
    # UserPromptSubmit and Stop hooks not run, say) is passed over for one of the subagent's own turn.
    call(project, env, "toolu_old", DENIED, prompt_id="turn-1")
    call(project, env, "toolu_new", ALLOWED, prompt_id="turn-2")
    assert task_of(project, env, "agent-1", prompt_id="turn-2") == digest(ALLOWED)
    assert task_of(project, env, "agent-2") == digest(DENIED)  # no prompt_id: the oldest open call


def test_the_end_of_a_call_never_remembered_writes_nothing(project: Path, env: dict) -> None:
    # PostToolUse of a call whose PreToolUse the hook did not see (installed mid-session), or of another tool
    # (a matcher edited by hand): no session file is made for it, nothing is logged.
    for name in ("post-tool-use-task", "post-tool-use-failure-task", "permission-denied-task"):
        assert hook(event(name, project), project, env).stdout == b""
    hook(event("post-tool-use-task", project, tool_name="Bash", tool_input={"command": "ls"}), project, env)
    assert not (project / ".claude" / "ctxbudget").exists() and hook_log(env) == []
