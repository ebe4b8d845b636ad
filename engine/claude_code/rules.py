"""The semantic check of the ``claude_code:`` policy section (registered in engine.policy.semantics.RULES)."""

from __future__ import annotations

from typing import Iterator

from engine import agents as agent_names
from engine.diagnostics import LookupFailed, Problem


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
        pos = doc.pos(("claude_code", "main_agent"))
        yield Problem(pos.file, pos.line, pos.col, "unknown-agent", f"claude_code.main_agent: {exc}",
                      "$.claude_code.main_agent")
