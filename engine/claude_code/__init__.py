"""The Claude Code adapter: ``ctxbudget hook`` and ``ctxbudget init claude-code``.

Claude Code runs a command hook as a new process for each event, with the event's JSON on stdin, and reads
the hook's JSON from stdout (see docs/claude-code.md). The adapter turns events into packs:

- ``SessionStart`` → the main agent's ``global`` memory, at the policy's default tier;
- ``UserPromptSubmit`` → the prompt is the task: detect its tier, pack the main agent's memory;
- ``PreToolUse`` of the Task/Agent tool → remember the subagent's prompt (no output);
- ``SubagentStart`` → the subagent's pack, its task taken from the remembered prompt;
- ``InstructionsLoaded`` → the instruction file's tokens, recorded as the ``instructions`` scope;
- ``Stop`` / ``SubagentStop`` / ``SessionEnd`` → the run is finished: its usage record is written.

Modules: :mod:`.payload` (reading an event), :mod:`.settings` (the ``claude_code:`` policy section),
:mod:`.session` (what one session has seen, kept beside the project), :mod:`.inject` (fitting a pack into
the injected-context cap), :mod:`.hook` (the event handlers), :mod:`.install` (merging the hook entries into
``.claude/settings.json``). Nothing here is imported by other jobs.
"""
