"""``ctxbudget init claude-code``: merge ctxbudget's hook entries into a Claude Code settings file.

Every existing setting and hook is kept; an entry of ours is recognised by its command (``… ctxbudget hook``
or ``… -m engine hook``) and updated in place, so running it twice changes nothing the second time.
"""

from __future__ import annotations

import os
import re

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

from engine.jsonio import JSONInputError, dumps, loads
from engine.records import Record

MAX_SETTINGS_BYTES = 4 << 20
"""A settings file larger than this is not merged (one over the bound reads as not valid JSON)."""

HOOK_TIMEOUT_S = 10
"""The timeout Claude Code gives each of our hook commands (the hook itself gives up sooner)."""

EVENTS: tuple[tuple[str, str | None], ...] = (
    ("SessionStart", None),
    ("UserPromptSubmit", None),
    ("PreToolUse", "Task|Agent"),
    ("SubagentStart", None),
    ("PostToolUse", "Task|Agent"),
    ("PostToolUseFailure", "Task|Agent"),
    ("PermissionDenied", "Task|Agent"),
    ("InstructionsLoaded", None),
    ("SubagentStop", None),
    ("Stop", None),
    ("SessionEnd", None),
)
"""The events ctxbudget listens to, with the matcher each needs (the tool events: only the subagent tools, whose
PostToolUse, PostToolUseFailure and PermissionDenied tell that a Task call will start no subagent any more)."""

_OURS = re.compile(r"""(^|[\s/\\'"])(ctxbudget|-m\s+engine)['"]?\s+hook(\s|$)""")


class SettingsError(ValueError):
    """The settings file cannot be merged (not JSON, not an object, hooks of the wrong shape)."""


class TextStyle(Record):
    """How a settings file is written, as it was found: its line ending, byte order mark, indent and final
    newline (a Windows editor's CRLF and BOM survive a merge; a new or empty file gets LF, two spaces)."""

    newline: str = "\n"
    bom: bool = False
    indent: int | str = 2
    final_newline: bool = True

    @classmethod
    def of(cls, raw: str | None) -> "TextStyle":
        """The style of ``raw`` (the file's text as decoded, BOM and line endings included)."""
        if raw is None:
            return cls()
        bom = raw[:1] == "\ufeff"
        text = raw[1:] if bom else raw
        if not text.strip():
            return cls(bom=bom)
        lf, crlf = text.count("\n"), text.count("\r\n")
        newline = "\r\n" if crlf and crlf == lf else "\r" if not lf and "\r" in text else "\n"
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        indent: int | str = 2
        for line in lines:  # the first indented line is one level deep: its indent is the file's step
            body = line.lstrip(" \t")
            if body and body != line:
                lead = line[: len(line) - len(body)]
                indent = "\t" if lead.startswith("\t") else len(lead) if len(lead) <= 8 else 2
                break
        return cls(newline, bom, indent, text.endswith(("\n", "\r")))

    def render(self, text: str) -> str:
        """``text`` (LF line endings, a final newline) written in this style."""
        if not self.final_newline:
            text = text.rstrip("\n")
        if self.newline != "\n":
            text = text.replace("\n", self.newline)
        return "\ufeff" + text if self.bom else text


class Merge(Record):
    """The result of merging: the file, its text before (None when new) and after (LF line endings, no BOM: what
    the diff shows), whether it changed, and the file's :class:`TextStyle` the written text keeps."""

    path: str
    before: str | None
    after: str
    changed: bool
    style: TextStyle = TextStyle()

    def text(self) -> str:
        """What is written: :attr:`after` in the file's own style."""
        return self.style.render(self.after)

    def diff(self) -> str:
        import difflib

        old = [] if self.before is None else self.before.splitlines(keepends=True)
        label = os.path.basename(self.path)
        lines = difflib.unified_diff(old, self.after.splitlines(keepends=True),
                                     f"a/{label}" if self.before is not None else "/dev/null", f"b/{label}")
        return "".join(lines)


def is_ours(command: Any) -> bool:
    return isinstance(command, str) and bool(_OURS.search(command))


def settings_path(scope: str, project: str = ".") -> str:
    """``.claude/settings.json`` of the project, or the user's ``~/.claude/settings.json``."""
    if scope == "user":
        return os.path.join(os.path.expanduser("~"), ".claude", "settings.json")
    return os.path.join(project, ".claude", "settings.json")


def merge_settings(path: str, command: str = "ctxbudget hook") -> Merge:
    """The settings at ``path`` with ctxbudget's hook entries merged in (nothing is written)."""
    raw = _read(path)
    style = TextStyle.of(raw)
    before = None if raw is None else raw.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    settings: dict[str, Any] = {} if before is None else _parse(path, before)
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise SettingsError(f"{path}: 'hooks' must be an object")
    for event, matcher in EVENTS:
        groups = hooks.setdefault(event, [])
        if not isinstance(groups, list):
            raise SettingsError(f"{path}: 'hooks.{event}' must be a list")
        _merge_event(path, event, groups, matcher, command)
    after = dumps(settings, indent=style.indent) + "\n"
    return Merge(path, before, after, before is None or _parse(path, before) != settings,  # (an empty file: {})
                 style)


def write_settings(merge: Merge) -> None:
    """Write the merged settings atomically (a temporary file in the same folder, then a rename), keeping
    the file's mode and its style (line endings, BOM, indent, final newline)."""
    from engine.claude_code.files import write_atomically

    # a symlink (into a dotfiles repository) is written through: the rename replaces its target, not the link
    path = os.path.realpath(merge.path) if os.path.islink(merge.path) else merge.path
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    write_atomically(path, merge.text(), mode, ".settings-")


def _merge_event(path: str, event: str, groups: list, matcher: str | None, command: str) -> None:
    entry = {"type": "command", "command": command, "timeout": HOOK_TIMEOUT_S}
    for group in groups:
        if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
            raise SettingsError(f"{path}: each entry of 'hooks.{event}' must be an object with a 'hooks' list")
        for i, hook in enumerate(group["hooks"]):
            if isinstance(hook, dict) and is_ours(hook.get("command")):
                group["hooks"][i] = {**hook, **entry}
                if matcher is not None:
                    group["matcher"] = matcher
                return
    group = {"hooks": [entry]}
    if matcher is not None:
        group = {"matcher": matcher, **group}
    groups.append(group)


def _read(path: str) -> str | None:
    from engine.policy.locate import read_bytes

    try:  # a FIFO or a device is refused, never opened or waited on
        raw = read_bytes(path, MAX_SETTINGS_BYTES)
        return raw.decode("utf-8")  # line endings and BOM as they are: merge_settings keeps them
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read ({exc.strerror or exc}); nothing written") from None
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: cannot read ({exc})") from None


def _parse(path: str, text: str) -> dict:
    if not text.strip():
        return {}
    try:
        value = loads(text, max_bytes=MAX_SETTINGS_BYTES)
    except JSONInputError as exc:
        where = f"{path}:{exc.lineno}:{exc.colno}" if exc.lineno else path
        raise SettingsError(f"{where}: not valid JSON ({exc.msg}); nothing written") from None
    if not isinstance(value, dict):
        raise SettingsError(f"{path}: a settings file is a JSON object; nothing written")
    return value
