"""The ``claude_code:`` section of a policy: which agent the main thread is, what the hook may inject, and
where it keeps its session files. Compiled here, by the adapter that uses it."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Mapping

from engine.records import Record

CONTEXT_CAP = 10_000
"""Claude Code's documented cap on a hook's injected context, in characters: larger output is replaced by a
preview and a file path, so the adapter never goes past it (a policy may set a smaller cap)."""

EVENTS = ("SessionStart", "UserPromptSubmit", "SubagentStart")
"""The events that inject memory (the others only record)."""


class HookSettings(Record):
    """What the hook does, from the policy's ``claude_code:`` section (see docs/claude-code.md)."""

    main_agent: str | None = "roles/data-architect-role"
    """The policy agent whose memory the main thread gets (None: inject nothing into the main thread)."""
    inject: frozenset[str] = frozenset(EVENTS)
    """The events that inject memory."""
    skip_agents: frozenset[str] = frozenset()
    """Subagent types (Claude Code's ``agent_type``) or policy agents that get nothing."""
    unknown_agents: str = "skip"
    """A subagent type the policy does not know: ``skip`` it, or give it the ``main`` agent's memory."""
    context_cap: int = CONTEXT_CAP
    """The most characters one injection may hold; a larger pack goes to a file, with an index injected."""
    state_dir: str = ".claude/ctxbudget"
    """Where session files and spilled packs go, relative to the project (the event's ``cwd``)."""
    timeout_ms: int = 5000
    """The hook gives up (and injects nothing) after this long."""

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> "HookSettings":
        """Settings from the validated section (missing keys take their defaults)."""
        data = data or {}
        default = cls()
        return cls(
            main_agent=data.get("main_agent", default.main_agent),
            inject=frozenset(data.get("inject", EVENTS)),
            skip_agents=frozenset(data.get("skip_agents", ())),
            unknown_agents=data.get("unknown_agents", default.unknown_agents),
            context_cap=min(int(data.get("context_cap", CONTEXT_CAP)), CONTEXT_CAP),
            state_dir=data.get("state_dir", default.state_dir),
            timeout_ms=int(data.get("timeout_ms", default.timeout_ms)),
        )

    @classmethod
    def of(cls, policy: Any) -> "HookSettings":
        """The settings a policy compiled (:attr:`engine.policy.Policy.hook_settings`); the defaults when the
        object has none."""
        found = getattr(policy, "hook_settings", None)
        return found if found is not None else cls()
