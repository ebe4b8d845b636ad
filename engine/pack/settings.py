"""The ``memory:`` section of a policy, compiled: where memory lives, which files feed which scope, how an item
is scored, what is pinned, where leftover allowance goes, and which token counter counts.

Imports nothing heavy (no sqlite3, no ``re``: a warm pack fills its templates without it): the semantic rules of
the section use it during validation.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, Mapping

from engine.model import DEFAULT_RELEVANCE, RELEVANCE_FEATURES
from engine.records import Record

DEFAULT_ROOT = "./.claude/memory"
DEFAULT_SOURCES: Mapping[str, tuple[str, ...]] = {
    "global": ("patterns/**", "recent/**"),
    "agent_recent": ("{agent_type}/{agent_name}/recent/**", "{agent_type}/{agent_name}/intermediate/**"),
    "agent_patterns": ("{agent_type}/{agent_name}/patterns/**",),
}
DEFAULT_SPILL = ("agent_patterns", "agent_recent", "global")
DEFAULT_SPLIT_ABOVE = 2000  # tokens: a larger markdown file is split at its headings
DEFAULT_MAX_FILE_BYTES = 4 * 1024 * 1024  # a larger file is not read (counted as skipped)
PLACEHOLDERS = ("agent_type", "agent_name")
COUNTERS = ("estimate", "cl100k", "o200k")

_PLACEHOLDER = r"\{([^{}]*)\}"  # what fill() replaces (with re: template_problem)
_GLOB_ESCAPES = str.maketrans({c: f"[{c}]" for c in "*?[]"})


class MemorySettings(Record):
    """The compiled ``memory:`` section (see docs/memory.md)."""

    root: str = DEFAULT_ROOT
    sources: Mapping[str, tuple[str, ...]] = DEFAULT_SOURCES
    relevance: str = DEFAULT_RELEVANCE
    pinned: tuple[str, ...] = ()
    spill: tuple[str, ...] = DEFAULT_SPILL
    counter: str = "estimate"
    split_above: int = DEFAULT_SPLIT_ABOVE
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    log_task: bool = False

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> "MemorySettings":
        data = data or {}
        sources = data.get("sources")
        return cls(
            root=data.get("root", DEFAULT_ROOT),
            sources={s: tuple(t) for s, t in sources.items()} if sources is not None else DEFAULT_SOURCES,
            relevance=data.get("relevance", DEFAULT_RELEVANCE),
            pinned=tuple(data.get("pinned", ())),
            spill=tuple(data.get("spill", DEFAULT_SPILL)),
            counter=data.get("counter", "estimate"),
            split_above=int(data.get("split_above", DEFAULT_SPLIT_ABOVE)),
            max_file_bytes=int(data.get("max_file_bytes", DEFAULT_MAX_FILE_BYTES)),
            log_task=bool(data.get("log_task", False)),
        )


def template_problem(template: str) -> str | None:
    """Why a source or pinned template is not usable, or None."""
    import re

    for name in re.findall(_PLACEHOLDER, template):
        if name not in PLACEHOLDERS:
            return f"unknown placeholder {{{name}}} (known: {{agent_type}}, {{agent_name}})"
    if template.startswith("/") or re.match(r"^[A-Za-z]:", template):
        return "must be relative to the memory root"
    if ".." in template.replace("\\", "/").split("/"):
        return "may not leave the memory root ('..')"
    if "{" in re.sub(_PLACEHOLDER, "", template) or "}" in re.sub(_PLACEHOLDER, "", template):
        return "unbalanced braces"
    return None


def fill(template: str, agent: str) -> str:
    """``template`` with the agent's placeholders filled in (``specialists/dbt-expert`` → agent_type
    ``specialists``, agent_name ``dbt-expert``); glob characters in the name are escaped."""
    agent_type, _, agent_name = agent.rpartition("/")
    values = {"agent_type": _glob_escape(agent_type), "agent_name": _glob_escape(agent_name)}
    # each match of _PLACEHOLDER, left to right: a "{", then the first "}" after it with no "{" between
    out: list[str] = []
    done, start = 0, template.find("{")
    while start != -1:
        end = template.find("}", start + 1)
        if end == -1:
            break
        inner = template.find("{", start + 1, end)
        if inner != -1:  # no match at start: the next "{" may begin one
            start = inner
            continue
        out.append(template[done:start])
        out.append(values.get(template[start + 1:end], template[start:end + 1]))
        done = end + 1
        start = template.find("{", done)
    out.append(template[done:])
    return "".join(out)


def _glob_escape(text: str) -> str:
    """``*``, ``?``, ``[`` and ``]`` made literal (``[*]``)."""
    return text.translate(_GLOB_ESCAPES)


def glob_regex(pattern: str) -> str:
    """A regular expression (stdlib ``re``, anchored) for a path glob: ``**`` any depth, ``*`` and ``?`` within
    one path segment, ``[...]`` a character class; a pattern without wildcards names a file or a folder."""
    import re

    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end == -1:
                out.append(re.escape(c))
                i += 1
            else:
                body = pattern[i + 1:end]
                out.append("[" + ("^" + re.escape(body[1:]) if body.startswith("!") else re.escape(body)) + "]")
                i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    body = "".join(out)
    if not any(ch in pattern for ch in "*?["):
        body += "(?:/.*)?"  # a plain name: the file, or everything below the folder
    return body


def literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard, cut back to a whole folder (for an index range scan)."""
    cut = min([pattern.find(c) for c in "*?[" if c in pattern] or [len(pattern)])
    prefix = pattern[:cut]
    if cut < len(pattern):
        prefix = prefix[:prefix.rfind("/") + 1]
    return prefix
