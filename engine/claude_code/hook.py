"""The event handlers of ``ctxbudget hook``: one event in, the hook's JSON out (or nothing).

:func:`handle` is the whole adapter: it reads and appends the session's file (:mod:`.session`), packs memory
with the policy (``policy.pack``), fits it into the cap (:mod:`.inject`) and, when a run ends, writes its
usage record through the monitor. It raises on any failure; the command turns every failure into "inject
nothing" (hooks fail open).
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # not typing's: importing typing costs every start (a hook is a new process)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Iterable

from engine.claude_code.inject import Item, fit, spill_file
from engine.claude_code.payload import HookEvent
from engine.claude_code.session import (UNRECORDED, Session, SessionProblem, open_tasks, remove_stale_packs,
                                        seen_keys, session_file, session_starts, stale_sessions,
                                        unrecorded_sessions)
from engine.claude_code.settings import HookSettings

SUBAGENT_TOOLS = frozenset({"Task", "Agent"})
"""The tools that start a subagent; their ``tool_input.prompt`` is the subagent's task."""

CONTEXT_EMPTIED = frozenset({"clear", "compact"})
"""SessionStart sources after which the thread's context no longer holds what was injected before."""

INSTRUCTIONS = "instructions"
"""The scope under which usage records count the CLAUDE.md and rules files Claude Code loads itself."""

MAX_STORED_PROMPT = 64 << 10
"""A prompt kept in the session file (a Task call's, or a turn's with ``log_task``) keeps this many characters at
most: one pasted log must not make every event of the session read and compact megabytes."""

DUPLICATE_WINDOW_S = 10.0
"""A UserPromptSubmit without a ``prompt_id`` whose prompt is that of a turn still open that began less than this
long ago is the same event delivered twice, not a new turn (so is a SessionStart of the same source, startup or
resume, and an InstructionsLoaded of the same file for the same run). Claude Code does not retry a hook, but it runs the
same hook twice, at once and with byte-identical stdin, when it is registered from two sources it does not
deduplicate (anthropics/claude-code#76297: settings and a plugin's hooks.json; or two command strings, such
as ``ctxbudget hook`` and ``/abs/path/ctxbudget hook`` in the user's and the project's settings). A duplicate
waits on the session's lock at most for the first one's run (the hook's 10 s timeout)."""

MAX_INSTRUCTIONS_BYTES = 4 << 20
"""An instruction file is measured from at most this many bytes."""


RETRIES_PER_EVENT = 2
"""Set-aside sessions (``….jsonl.unrecorded``) a SessionStart retries at most: each hook stays quick."""

MAX_ATTEMPTS = 10
"""A set-aside session whose runs still cannot all be recorded after this many attempts is given up."""

KEEP_UNRECORDED_S = 7 * 24 * 3600
"""… and so is one first set aside this long ago, whatever its attempts."""


class RunNotRecorded(RuntimeError):
    """A run's usage record could not be written; the other runs went on (the hook logs each of these)."""


class IndexIncomplete(RuntimeError):
    """A run was packed from a memory index whose refresh stopped at the hook's deadline (a large root, cold)."""


class RunsLost(RuntimeError):
    """Runs whose usage records will never be written: the hook gave up on them (it says which, and why)."""


class Hook:
    """The adapter for one event: the policy, its ``claude_code`` settings and the project's folder."""

    def __init__(self, policy: Any, event: HookEvent, settings: HookSettings | None = None):
        self.policy = policy
        self.event = event
        self.problems: list[RuntimeError] = []
        """What went wrong without stopping the event (the command writes each to the hook log)."""
        self.settings = settings or HookSettings.of(policy)
        folder = self.settings.state_dir
        self.folder = folder if os.path.isabs(folder) else os.path.join(event.cwd, folder)
        self.session = Session(session_file(self.folder, event.session_id))

    # -- dispatch ---------------------------------------------------------------------------------------

    def handle(self) -> dict | None:
        """The hook's output for the event (None: print nothing)."""
        handler = getattr(self, "_on_" + _snake(self.event.name), None)
        try:
            return None if handler is None else handler()
        finally:
            self.problems.extend(self.session.problems)  # e.g. a live state past its bound, kept whole

    def _on_session_start(self) -> dict | None:
        source, now = self.event.source, time.time()

        def delivered(entries: list[dict]) -> bool:
            """A startup or resume delivered twice (see :data:`DUPLICATE_WINDOW_S`): a start of the same source
            still open that began moments ago (a /clear or a compaction twice must inject twice: never one)."""
            if source in CONTEXT_EMPTIED:
                return False
            ended = {e["run"] for e in entries if e["kind"] == "end"}
            return any(e["kind"] == "run" and e.get("event") == "SessionStart" and e.get("source") == source
                       and e["run"] not in ended and now - float(e.get("t", 0)) < DUPLICATE_WINDOW_S
                       for e in entries)

        with self.session.locked() as s:
            entries = s.entries()
            if delivered(entries):
                return None  # before ending the runs the first delivery opened
            self._end_runs(s, entries, lambda run: True, None)
        self._end_stale_sessions()
        remove_stale_packs(self.folder)  # the spilled packs of sessions idle for a day: the folder stays bounded
        agent = self._main_agent()
        if agent is None or "SessionStart" not in self.settings.inject:
            return None
        # a session starts again after /clear, a compaction or a resume: each start is a run of its own
        starts = session_starts(entries)
        run_id = self._session_run() + (f":{starts + 1}" if starts else "")
        return self._inject(agent, run_id=run_id, thread="main", task=None, scopes={"global"},
                            label=f"session-{_short(self.event.source or 'start')}",
                            reset=self.event.source in CONTEXT_EMPTIED, delivered=delivered)

    def _on_user_prompt_submit(self) -> dict | None:
        agent = self._main_agent()
        prompt = self.event.prompt
        if agent is None or not prompt or not prompt.strip() or "UserPromptSubmit" not in self.settings.inject:
            if os.path.exists(self.session.path):  # not injecting: the earlier turns' calls are settled all the same
                with self.session.locked() as s:
                    _settle_thread(s, s.entries(), "main", "turn")
            return None
        session, prompt_id = self.event.session_id, self.event.prompt_id
        task_hash = "sha256:" + _digest(prompt)
        # without a prompt_id (optional in the SDK's types) the turn's own: the same prompt twice is two runs
        run_id = f"{session}:prompt:{prompt_id or _digest(f'{time.time_ns()}:{prompt}')}"
        now = time.time()

        def delivered(entries: list[dict]) -> bool:
            """Whether this event is one already handled, delivered again (see :data:`DUPLICATE_WINDOW_S`): the
            same prompt_id, or without one the same prompt as a turn still open that began moments ago."""
            ended = {e["run"] for e in entries if e["kind"] == "end"}
            for e in entries:
                if e["kind"] != "run" or e["thread"] != "main" or not e.get("turn"):
                    continue
                if prompt_id is not None:
                    if e["run"] == run_id:
                        return True
                elif (e.get("task_hash") == task_hash and e["run"] not in ended
                      and now - float(e.get("t", 0)) < DUPLICATE_WINDOW_S):
                    return True
            return False

        return self._inject(agent, run_id=run_id, thread="main", task=prompt, scopes=None, label="prompt",
                            delivered=delivered, settle="main")

    def _on_pre_tool_use(self) -> None:
        if self.event.tool_name not in SUBAGENT_TOOLS or not isinstance(self.event.tool_input, dict):
            return None
        prompt = self.event.tool_input.get("prompt")
        kind = self.event.tool_input.get("subagent_type") or "general-purpose"
        if isinstance(prompt, str) and prompt.strip() and isinstance(kind, str):
            # the thread that made the call (its turn's end settles it) and the turn (a SubagentStart of the same
            # prompt_id takes it first); a call delivered twice is two entries of one tool_use_id: claimed or
            # settled together, so this stays a plain append (no read)
            with self.session.locked() as s:
                s.append("task", tool_use_id=self.event.tool_use_id, agent_type=kind, prompt=prompt[:MAX_STORED_PROMPT],
                         thread=self.event.agent_id or "main", prompt_id=self.event.prompt_id)
        return None

    def _on_post_tool_use(self) -> None:
        return self._settle_call("done")

    def _on_post_tool_use_failure(self) -> None:
        return self._settle_call("failed")

    def _on_permission_denied(self) -> None:
        return self._settle_call("denied")

    def _settle_call(self, why: str) -> None:
        """A Task/Agent call that is over (finished, failed, denied): if no subagent took its prompt, none will,
        so no later subagent may be handed it (see :func:`~engine.claude_code.session.open_tasks`). A call a
        subagent took, or one settled already (the event delivered twice), is left as it is."""
        tool_use_id = self.event.tool_use_id
        if self.event.tool_name not in SUBAGENT_TOOLS or not tool_use_id or not os.path.exists(self.session.path):
            return None  # (no session file: no call remembered, and none is made for nothing)
        with self.session.locked() as s:
            if any(e.get("tool_use_id") == tool_use_id for e in open_tasks(s.entries())):
                s.append("settled", tool_use_id=tool_use_id, why=why)
        return None

    def _on_subagent_start(self) -> dict | None:
        kind, agent_id = self.event.agent_type, self.event.agent_id
        if not kind or not agent_id or "SubagentStart" not in self.settings.inject:
            return None
        agent = self._policy_agent(kind)
        if agent is None:
            return None
        task = self._claim_task(kind, agent_id)  # (a subagent that claimed one already gets the same again)
        return self._inject(agent, run_id=agent_id, thread=agent_id, task=task, scopes=None,
                            label=f"{kind}-{agent_id}",
                            delivered=lambda entries: any(e["kind"] == "run" and e["run"] == agent_id for e in entries))

    def _on_instructions_loaded(self) -> None:
        path = self.event.file_path
        if not path:
            return None
        tokens = _count_file(self.policy, path)
        thread = self.event.agent_id or "main"
        with self.session.locked() as s:
            entries = s.entries()
            run = self.event.agent_id or _open_turn(entries) or self._session_run()
            now = time.time()
            if any(e["kind"] == "instructions" and e["run"] == run and e.get("path") == path
                   and e.get("load_reason") == self.event.load_reason
                   and now - float(e.get("t", 0)) < DUPLICATE_WINDOW_S for e in entries):
                return None  # the same load delivered twice (see DUPLICATE_WINDOW_S): counted once
            s.append("instructions", thread=thread, run=run, path=path, tokens=tokens,
                     memory_type=self.event.memory_type, load_reason=self.event.load_reason)
        return None

    def _on_subagent_stop(self) -> None:
        agent_id = self.event.agent_id
        if agent_id:
            with self.session.locked() as s:
                entries = s.entries()
                _settle_thread(s, entries, agent_id, "stop")  # the Task calls the subagent itself made
                self._end_runs(s, entries, lambda run: run["run"] == agent_id, None)
        return None

    def _on_stop(self) -> None:
        with self.session.locked() as s:
            entries = s.entries()
            _settle_thread(s, entries, "main", "stop")  # every subagent of the turn has started by now
            self._end_runs(s, entries, lambda run: run.get("thread") == "main" and run.get("turn"), None)
        return None

    def _on_session_end(self) -> None:
        with self.session.locked() as s:
            self._end_runs(s, s.entries(), lambda run: True, None)
        return None

    # -- packing and injecting --------------------------------------------------------------------------

    def _inject(self, agent: str, run_id: str, thread: str, task: str | None, scopes: set[str] | None,
                label: str, reset: bool = False, delivered=None, settle: str | None = None) -> dict | None:
        """Pack and record one run; what ``thread`` was given since its context was last emptied (``reset``:
        now) is left out. ``delivered(entries)`` true: the event was handled already (a duplicate delivery, see
        :data:`DUPLICATE_WINDOW_S`), nothing is injected or recorded. ``settle``: a thread whose earlier Task
        calls are settled under the same lock (a new turn: see :func:`_settle_thread`)."""
        from engine.claude_code.packing import pack_items

        with self.session.locked() as s:
            entries = s.entries()
            if delivered is not None and delivered(entries):
                return None
            if settle is not None:
                _settle_thread(s, entries, settle, "turn")
            seen = set() if reset else seen_keys(entries, thread)
            packed = pack_items(self.policy, agent, task, self.event.cwd, scopes, exclude=seen)
            items = packed.items
            if packed.partial:  # said once per event in the hook log: the memory left out is not an error of its own
                self.problems.append(IndexIncomplete(
                    f"run {run_id!r}: the memory index is still being built (its refresh stopped at the hook's "
                    "deadline), so this run was packed from what is indexed; the next event goes on from there "
                    "(`ctxbudget index` builds it in one go)"))
            used: dict[str, int] = {}
            for item in items:
                used[item.scope] = used.get(item.scope, 0) + item.tokens
            s.append("run", run=run_id, session=self.event.session_id, thread=thread, turn=thread == "main" and task is not None,
                     agent=packed.allocation.agent, tier=packed.allocation.tier, tier_source=packed.tier_source,
                     confidence=packed.confidence, signals=list(packed.signals), event=self.event.name,
                     task_hash=None if task is None else "sha256:" + _digest(task),
                     task=task[:MAX_STORED_PROMPT] if packed.log_task and task else None, scopes=used, items=len(items),
                     keys=[_key(i) for i in items], **({"reset": True} if reset else {}),
                     **({"source": self.event.source} if self.event.name == "SessionStart" else {}))
        if not items:
            return None
        a = packed.allocation
        header = (f"## Memory from ctxbudget — {a.agent}, tier {a.tier}, {sum(used.values()):,} of "
                  f"{a.budget:,} tokens ({len(items)} items)")
        text, _ = fit(items, header, self.settings.context_cap,
                      spill_file(self.folder, self.event.session_id, label))
        return {"hookSpecificOutput": {"hookEventName": self.event.name, "additionalContext": text}}

    def _claim_task(self, kind: str, agent_id: str) -> str | None:
        """The prompt of the oldest open Task call (:func:`~engine.claude_code.session.open_tasks`: neither
        claimed nor settled) for a subagent of type ``kind``, one of this event's turn (its ``prompt_id``) first;
        claimed for ``agent_id`` under the session's lock, so two subagents never take the same one. Oldest first
        because parallel calls (several in one message) start their subagents in the order of the calls."""
        with self.session.locked() as s:
            entries = s.entries()
            for entry in entries:
                if entry["kind"] == "claim" and entry.get("agent_id") == agent_id:
                    return _prompt_of(entries, entry.get("tool_use_id"))
            found = [e for e in open_tasks(entries) if e.get("agent_type") == kind]
            turn = self.event.prompt_id  # (optional: absent before a process's first prompt; then any turn's)
            chosen = next((e for e in found if turn is not None and e.get("prompt_id") == turn),
                          found[0] if found else None)
            if chosen is not None:
                s.append("claim", tool_use_id=chosen.get("tool_use_id"), agent_id=agent_id)
                return chosen["prompt"]
        return None

    # -- agents -----------------------------------------------------------------------------------------

    def _main_agent(self) -> str | None:
        """The policy agent of the main thread: the session's ``--agent`` if the policy knows it, else the
        policy's ``claude_code.main_agent``."""
        if self.event.agent_type and not self.event.agent_id:
            found = self._resolve(self.event.agent_type)
            if found is not None:
                return None if self._skipped(self.event.agent_type, found) else found
        main = self.settings.main_agent
        return None if main is None else self.policy.resolve_agent(main)

    def _policy_agent(self, kind: str) -> str | None:
        """The policy agent for a subagent type (None: give it nothing)."""
        found = self._resolve(kind)
        if found is None:
            if self.settings.unknown_agents != "main":
                return None
            found = self._main_agent()
        return None if found is None or self._skipped(kind, found) else found

    def _resolve(self, name: str) -> str | None:
        from engine.diagnostics import LookupFailed

        try:
            return self.policy.resolve_agent(name)
        except LookupFailed:
            return None

    def _skipped(self, kind: str, agent: str) -> bool:
        skip = self.settings.skip_agents
        return kind in skip or agent in skip or agent.rsplit("/", 1)[-1] in skip

    # -- runs -------------------------------------------------------------------------------------------

    def _session_run(self) -> str:
        return f"{self.event.session_id}:session"

    def _end_runs(self, s: Session, entries: list[dict], which, error: str | None) -> None:
        """Write the usage record of each open run that ``which`` selects, and mark it ended."""
        ended = {e.get("run") for e in entries if e["kind"] == "end"}
        instructions: dict[str, int] = {}
        for e in entries:
            if e["kind"] == "instructions" and isinstance(e.get("tokens"), int):
                instructions[e.get("run")] = instructions.get(e.get("run"), 0) + e["tokens"]
        for run in [e for e in entries if e["kind"] == "run"]:
            if run.get("run") in ended or not which(run):
                continue
            ended.add(run.get("run"))
            try:
                self._record(run, self.event.session_id, instructions.get(run.get("run"), 0),
                             time.time() - float(run.get("t", time.time())), error)
            finally:
                s.append("end", run=run.get("run"))

    def _end_stale_sessions(self) -> None:
        """Record the open runs of sessions that ended without saying so; a file whose runs could not all be
        recorded is set aside as ``….jsonl.unrecorded`` and retried by later SessionStarts (at most
        :data:`RETRIES_PER_EVENT` files each, an hour apart at least), until every run is recorded or it has
        failed :data:`MAX_ATTEMPTS` times or :data:`KEEP_UNRECORDED_S` have passed: then it is removed and the
        loss is reported (how many runs, of which agents, the last error)."""
        for path in stale_sessions(self.folder):
            self._settle(path, aside=False)
        for path in unrecorded_sessions(self.folder, limit=RETRIES_PER_EVENT):
            self._settle(path, aside=True)

    def _settle(self, path: str, aside: bool) -> None:
        """Record the open runs of the ended session in ``path`` (see :meth:`_end_stale_sessions`)."""
        stale, now = Session(path), time.time()
        reported = len(self.problems)
        try:
            self._settle_locked(stale, path, aside, now, reported)
        finally:
            self.problems.extend(stale.problems)  # e.g. a live state past its bound, kept whole

    def _settle_locked(self, stale: Session, path: str, aside: bool, now: float, reported: int) -> None:
        with stale.locked() as s:
            try:
                entries = s.entries()
            except SessionProblem as exc:  # too large to read: it never will be
                self.problems.append(RunsLost(f"{exc}; removed, its open runs are not recorded"))
                os.unlink(path)
                return
            session_id = next((e.get("session") for e in entries if e["kind"] == "run" and e.get("session")),
                              None)
            ended = {e.get("run") for e in entries if e["kind"] == "end"}
            failed = []
            for run in entries:
                if run["kind"] == "run" and run.get("run") not in ended:
                    ended.add(run.get("run"))
                    if self._record(run, session_id, 0, None, "the session ended without a stop event"):
                        s.append("end", run=run.get("run"))
                    else:
                        failed.append(run)
            # the lock is held until the file is gone or renamed: an event of the session arriving now (a
            # resumed session) finds the path changed and starts a new file, never appends to this one
            if not failed:
                os.unlink(path)
                return
            error = str(self.problems[-1]) if len(self.problems) > reported else "unknown"
            attempts = [e for e in entries if e["kind"] == "attempt"]
            if aside:  # a retry: its failures are counted in the file, not logged again run by run
                del self.problems[reported:]
            first = attempts[0]["t"] if attempts else now
            if aside and (len(attempts) + 1 >= MAX_ATTEMPTS or now - first >= KEEP_UNRECORDED_S):
                agents = sorted({str(run.get("agent")) for run in failed})
                self.problems.append(RunsLost(
                    f"gave up recording {len(failed)} run(s) of session {session_id!r} (agents "
                    f"{', '.join(agents)}) after {len(attempts) + 1} attempts over {(now - first) / 86400:.1f} days: "
                    f"their usage records are lost; last error: {error}"))
                os.unlink(path)
                return
            s.append("attempt", failed=len(failed), error=error[:500])
            if not aside:
                os.replace(path, path + UNRECORDED)

    def _record(self, run: dict, session_id: str | None, instruction_tokens: int, duration_s: float | None,
                error: str | None) -> bool:
        """:func:`record_run`; a failure is kept in :attr:`problems` (False), not raised: the other runs go on."""
        try:
            record_run(self.policy, run, session_id, instruction_tokens, duration_s, error)
        except Exception as exc:  # noqa: BLE001 - any failure of one record; a timeout is not an Exception
            self.problems.append(RunNotRecorded(
                f"the usage record of run {run.get('run')!r} (agent {run.get('agent')!r}) was not written: "
                f"{type(exc).__name__}: {exc}"))
            return False
        return True


def record_run(policy: Any, run: dict, session_id: str | None, instruction_tokens: int,
               duration_s: float | None, error: str | None) -> None:
    """Append the usage record of one injection run through the monitor's :class:`~engine.monitor.Run`: what
    was loaded per scope, the instruction files Claude Code loaded itself as the ``instructions`` scope (they
    count towards the run's usage and alerts: they are in its context whatever the budget), and the tier's
    provenance."""
    from engine.monitor import Run, policy_digest
    from engine.usage.location import resolve_log_path
    from engine.usage.log import append_record

    allocation = policy.allocate(run["agent"], run["tier"])
    # What was injected is recorded as it was (soft); "instructions" is a scope of the record, not the policy.
    watched = Run(allocation, policy.thresholds, "soft", scopes=(*allocation.scopes, INSTRUCTIONS))
    for scope, tokens in (run.get("scopes") or {}).items():
        if isinstance(tokens, int) and tokens > 0:
            watched.load(scope, tokens)
    if instruction_tokens > 0:
        watched.load("instructions", instruction_tokens)
    if error:
        watched.fail(error)
    provenance = {key: run.get(key) for key in ("tier_source", "confidence", "signals", "task_hash", "task", "items")}
    provenance.update(run_id=run.get("run"), session_id=session_id)
    record = watched.record(None if duration_s is None else max(duration_s, 0.0), policy_digest(policy),
                            provenance=provenance)
    append_record(resolve_log_path(None, policy), record)


def _open_turn(entries: list[dict]) -> str | None:
    ended = {e.get("run") for e in entries if e["kind"] == "end"}
    for entry in reversed(entries):
        if entry["kind"] == "run" and entry.get("turn") and entry.get("run") not in ended:
            return entry.get("run")
    return None


def _settle_thread(s: Session, entries: list[dict], thread: str, why: str) -> None:
    """Settle every open Task call ``thread`` has made (one entry, only when there is one: see
    :func:`~engine.claude_code.session.open_tasks`): its turn ended (Stop, SubagentStop) or a new one began
    (UserPromptSubmit: an interrupted turn has no Stop), and a subagent starts within its call's turn."""
    if any(e.get("thread", "main") == thread for e in open_tasks(entries)):
        s.append("settled", thread=thread, why=why)


def _prompt_of(entries: Iterable[dict], tool_use_id: Any) -> str | None:
    for entry in entries:
        if entry["kind"] == "task" and entry.get("tool_use_id") == tool_use_id:
            return entry.get("prompt")
    return None


def _count_file(policy: Any, path: str) -> int:
    from engine.claude_code.packing import count_tokens
    from engine.policy.locate import read_bytes

    data = read_bytes(path, MAX_INSTRUCTIONS_BYTES)[:MAX_INSTRUCTIONS_BYTES]  # a FIFO or a device: refused
    return count_tokens(policy, data.decode("utf-8", "replace"))


def _key(item: Item) -> str:
    return f"{item.path}#{item.section or ''}"


def _digest(text: str) -> str:
    from engine.digest import sha256_hex

    return sha256_hex(text)[:16]


def _short(text: str) -> str:
    return "".join(c for c in text if c.isalnum())[:20] or "start"


def _snake(name: str) -> str:
    out = []
    for i, char in enumerate(name):
        if char.isupper() and i:
            out.append("_")
        out.append(char.lower())
    return "".join(out)
