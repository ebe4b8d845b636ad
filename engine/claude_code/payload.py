"""Reading one hook event from stdin: bounded, decoded, and checked to the fields the adapter uses.

The field names are those of the Claude Agent SDK's published types (``BaseHookInput`` and the
``…HookInput`` of each event in ``@anthropic-ai/claude-agent-sdk``'s ``sdk.d.ts``); the test suite checks
its fixtures against those types.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, BinaryIO

from engine.records import Record

MAX_PAYLOAD_BYTES = 8 << 20
"""A hook event larger than this is refused (a pasted prompt of a few hundred kB is fine)."""

class BadPayload(ValueError):
    """The event on stdin is not one the adapter can read (the message says why)."""


class HookEvent(Record):
    """The fields of a hook event the adapter uses (absent ones are None)."""

    name: str
    session_id: str
    cwd: str
    transcript_path: str | None = None
    agent_id: str | None = None
    agent_type: str | None = None
    prompt: str | None = None
    source: str | None = None
    tool_name: str | None = None
    tool_input: Any = None
    tool_use_id: str | None = None
    file_path: str | None = None
    memory_type: str | None = None
    load_reason: str | None = None
    prompt_id: str | None = None


def read_event(stream: BinaryIO) -> HookEvent:
    """The event on ``stream``; :class:`BadPayload` when it is too large, not JSON or not an event."""
    raw = stream.read(MAX_PAYLOAD_BYTES + 1)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise BadPayload(f"the event is larger than {MAX_PAYLOAD_BYTES:,} bytes")
    return parse_event(raw)


def parse_event(raw: bytes) -> HookEvent:
    """The event in ``raw`` (UTF-8 JSON, read with the bounded reader every input goes through)."""
    from engine.jsonio import JSONInputError, loads

    try:
        obj = loads(raw, max_bytes=MAX_PAYLOAD_BYTES)
    except JSONInputError as exc:
        raise BadPayload(f"the event is not JSON we can read ({exc})") from None
    if type(obj) is not dict:
        raise BadPayload("the event is not a JSON object")
    name = obj.get("hook_event_name")
    session = obj.get("session_id")
    cwd = obj.get("cwd")
    if not isinstance(name, str) or not name:
        raise BadPayload("the event has no 'hook_event_name'")
    if not isinstance(session, str) or not session:
        raise BadPayload("the event has no 'session_id'")
    if not isinstance(cwd, str) or not cwd:
        raise BadPayload("the event has no 'cwd'")
    if "\x00" in cwd or not os.path.isabs(cwd):
        raise BadPayload("the event's 'cwd' is not an absolute path")  # Claude Code sends the project's
    if not os.path.isdir(cwd):  # the hook keeps its state under it: never a folder tree made from a payload
        raise BadPayload("the event's 'cwd' is not a folder")
    return HookEvent(
        name=name, session_id=session, cwd=cwd,
        transcript_path=_text(obj, "transcript_path"), agent_id=_text(obj, "agent_id"),
        agent_type=_text(obj, "agent_type"), prompt=_text(obj, "prompt"), source=_text(obj, "source"),
        tool_name=_text(obj, "tool_name"), tool_input=obj.get("tool_input"), tool_use_id=_text(obj, "tool_use_id"),
        file_path=_path(obj, "file_path"), memory_type=_text(obj, "memory_type"),
        load_reason=_text(obj, "load_reason"), prompt_id=_text(obj, "prompt_id"),
    )


def _text(obj: dict, key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _path(obj: dict, key: str) -> str | None:
    """A path field: a string no file system refuses outright (no NUL), else None (as when missing)."""
    value = _text(obj, key)
    return value if value and "\x00" not in value else None

