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
