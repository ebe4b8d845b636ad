"""Agent names: exact, then case-insensitive, then by unambiguous short form, else close matches.

``specialists/dbt-expert`` answers to ``dbt-expert``; ``roles/data-architect-role`` to ``data-architect-role``
and ``data-architect``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Iterable, Mapping

from engine.diagnostics import LookupFailed, close_matches


def short_forms(agent: str) -> list[str]:
    """The names ``agent`` also answers to."""
    last = agent.rsplit("/", 1)[-1]
    forms = [last] if last != agent else []
    if last.endswith("-role") and len(last) > 5:
        forms.append(last[: -len("-role")])
    return forms


def build_index(agents: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Lower-cased name or short form → the agents it can mean."""
    index: dict[str, list[str]] = {}
    for agent in agents:
        for name in [agent, *short_forms(agent)]:
            bucket = index.setdefault(name.lower(), [])
            if agent not in bucket:
                bucket.append(agent)
    return {name: tuple(found) for name, found in index.items()}


def resolve(name: str, agents: Mapping[str, object], index: Mapping[str, tuple[str, ...]]) -> str:
    """The full agent name ``name`` refers to; :class:`LookupFailed` with suggestions otherwise."""
    if name in agents:
        return name
    found = index.get(name.strip().lower(), ())
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        raise LookupFailed("agent", name, found, f"agent name {name!r} is ambiguous")
    near = close_matches(name.lower(), index, n=5, spread=0.08)  # one clear guess beats three vague ones
    suggestions: list[str] = []
    for candidate in near:
        for agent in index[candidate]:
            if agent not in suggestions:
                suggestions.append(agent)
    return _fail(name, suggestions[:3])


def _fail(name: str, suggestions: list[str]) -> str:
    raise LookupFailed("agent", name, suggestions)
