"""The semantic check of the ``claude_code:`` policy section, registered with :func:`engine.policy.rules.check`."""

from __future__ import annotations

from typing import Iterator

from engine import agents as agent_names
from engine.diagnostics import LookupFailed, Problem
from engine.policy.rules import check
from engine.policy.semantics import problem_at


@check("claude_code", reports=("unknown-agent",))
def claude_code_agents(data: dict, doc) -> Iterator[Problem]:
    """``claude_code.main_agent`` names an agent of the policy (``skip_agents`` may name Claude Code's own
    subagent types, so it is not checked)."""
    section = data.get("claude_code")
    main = section.get("main_agent") if isinstance(section, dict) else None
    if not isinstance(main, str):
        return
    assigned = data.get("agents", {})
    try:
        agent_names.resolve(main, assigned, agent_names.build_index(assigned))
    except LookupFailed as exc:
        yield problem_at(doc, ("claude_code", "main_agent"), "unknown-agent", f"claude_code.main_agent: {exc}")


@check("claude_code", ("state-dir-path", "`claude_code.state_dir` is not a folder inside the project: an absolute "
                                         "path, `~`, a `..` part, or the project folder itself"))
def claude_code_state_dir(data: dict, doc) -> Iterator[Problem]:
    """``claude_code.state_dir`` is a folder of its own inside the project: a policy can make the hook write its
    session files, spilled packs and a ``.gitignore`` there, and nowhere else (docs/security.md)."""
    section = data.get("claude_code")
    value = section.get("state_dir") if isinstance(section, dict) else None
    why = state_dir_problem(value) if isinstance(value, str) else None
    if why:
        yield problem_at(doc, ("claude_code", "state_dir"), "state-dir-path", f"claude_code.state_dir: {why}")


def state_dir_problem(value: str) -> str | None:
    """Why ``value`` is not a folder inside the project (a message), or None."""
    import os

    parts = value.replace("\\", "/").split("/")
    if os.path.isabs(value) or value.startswith(("~", "/", "\\")):
        return f"{value!r} is not relative to the project (session files and packs stay inside it)"
    if ".." in parts:
        return f"{value!r} leaves the project (a '..' part)"
    if all(part in ("", ".") for part in parts):
        return f"{value!r} is the project folder itself: name a folder of its own (default .claude/ctxbudget)"
    if "\x00" in value:
        return "holds a NUL character"
    return None
