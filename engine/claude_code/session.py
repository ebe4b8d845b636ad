"""What one Claude Code session has seen, kept as an append-only JSONL file beside the project.

Every hook is a new process, so what one event learns that a later one needs — the prompt a Task tool call
gave a subagent, the memory already injected, the runs still open — is appended here. Appends are single
``os.write`` calls on an ``O_APPEND`` descriptor under ``flock``, so subagents starting at once never lose
an entry; a claim (taking a remembered prompt) happens under the same lock as the read that finds it.

Entries (``kind``): ``task`` (a Task/Agent tool call's prompt), ``claim`` (a subagent took it), ``run`` (an
injection: the run's allocation and what was loaded), ``instructions`` (a file Claude Code loaded itself),
``end`` (a run finished; its usage record was written).
"""

from __future__ import annotations

import os
import time

TYPE_CHECKING = False  # not typing's: importing typing costs every start (a hook is a new process)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

from engine.digest import sha256_hex
from engine.jsonio import JSONInputError, dumps, loads

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

MAX_STATE_BYTES = 4 << 20
"""A session file is read only up to this size (the newest entries win: older ones are dropped)."""

STALE_AFTER_S = 24 * 3600
"""A session file untouched this long belongs to a session that ended without saying so."""


def session_file(folder: str, session_id: str) -> str:
    """The file of ``session_id`` in ``folder`` (named by a digest: a session id is not a file name)."""
    digest = sha256_hex(session_id)[:32]
    return os.path.join(folder, "sessions", f"{digest}.jsonl")


class Session:
    """The entries of one session's file; :meth:`locked` for a read-then-append that others must not race."""

    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None

    def locked(self) -> _Locked:
        """``with session.locked() as s:`` — the file open and locked (``flock``) for a read-then-append."""
        return _Locked(self)

    def entries(self) -> list[dict[str, Any]]:
        """The file's entries, oldest first (unreadable lines skipped)."""
        fd = self._require()
        size = os.fstat(fd).st_size
        start = max(0, size - MAX_STATE_BYTES)
        data = os.pread(fd, size - start, start)
        lines = data.split(b"\n")
        if start:
            lines = lines[1:]  # the first line was cut
        found = []
        for line in lines:
            if not line.strip():
                continue
            try:
                entry = loads(line, max_bytes=MAX_STATE_BYTES)
            except JSONInputError:
                continue
            if type(entry) is dict and isinstance(entry.get("kind"), str) and well_formed(entry):
                found.append(entry)
        return found

    def append(self, kind: str, **fields: Any) -> dict[str, Any]:
        entry = {"kind": kind, "t": round(time.time(), 3), **fields}
        line = (dumps(entry, separators=(",", ":")) + "\n").encode("utf-8")
        os.write(self._require(), line)
        return entry

    def _require(self) -> int:
        if self._fd is None:
            raise RuntimeError("use Session.locked()")
        return self._fd


class _Locked:
    """:meth:`Session.locked`'s context manager (a class: contextlib would cost every hook 0.6 ms to import)."""

    __slots__ = ("session",)

    def __init__(self, session: Session):
        self.session = session

    def __enter__(self) -> Session:
        path = self.session.path
        state = os.path.dirname(os.path.dirname(path))
        made = not os.path.isdir(state)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        if made:  # only a folder of ctxbudget's own: never a .gitignore of "*" in one the project had already
            _ignore_folder(state)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self.session._fd = fd
        return self.session

    def __exit__(self, *exc: object) -> None:
        fd, self.session._fd = self.session._fd, None
        if fd is not None:
            os.close(fd)


_TEXT, _NUMBER, _NONE = (str,), (int, float), (type(None),)
_TEXTS = "texts"  # a list of strings
_STR_ONLY = {str}
_SHAPES: dict[str, dict[str, Any]] = {
    # kind -> field -> the types it may have; a field marked required must be there (the others may be missing)
    "task": {"tool_use_id": _TEXT + _NONE, "agent_type": _TEXT, "prompt": _TEXT},
    "claim": {"tool_use_id": _TEXT + _NONE, "agent_id": _TEXT},
    "run": {"run": _TEXT, "thread": _TEXT, "agent": _TEXT, "tier": _TEXT, "t": _NUMBER, "session": _TEXT + _NONE,
            "turn": (bool,), "tier_source": _TEXT + _NONE, "confidence": _NUMBER + _NONE, "signals": _TEXTS,
            "task_hash": _TEXT + _NONE, "task": _TEXT + _NONE, "scopes": (dict,), "items": (int,), "keys": _TEXTS, "reset": (bool,)},
    "instructions": {"thread": _TEXT, "run": _TEXT, "tokens": (int,)},
    "end": {"run": _TEXT},
}
_REQUIRED = {"task": ("agent_type", "prompt"), "claim": ("agent_id",), "run": ("run", "thread", "agent", "tier"),
             "instructions": ("run",), "end": ("run",)}


def well_formed(entry: dict[str, Any]) -> bool:
    """Whether an entry's fields have the types the adapter writes (one that does not — a hand edit, another
    version — is skipped like an unreadable line, instead of failing every later event of the session)."""
    shape = _SHAPES.get(entry["kind"])
    if shape is None:
        return True  # a kind this version does not know: nothing reads it
    if any(name not in entry for name in _REQUIRED[entry["kind"]]):
        return False
    for name, types in shape.items():
        if name not in entry:
            continue
        value = entry[name]
        if types is _TEXTS:
            if type(value) is not list or (value and {*map(type, value)} != _STR_ONLY):
                return False
        elif not isinstance(value, types):
            return False
    return True


def stale_sessions(folder: str, now: float | None = None, limit: int = 50) -> list[str]:
    """Session files in ``folder`` untouched for :data:`STALE_AFTER_S` (at most ``limit``, oldest first)."""
    now = time.time() if now is None else now
    where = os.path.join(folder, "sessions")
    try:
        names = os.listdir(where)
    except OSError:
        return []
    found = []
    for name in names:
        if not name.endswith(".jsonl"):
            continue
        path = os.path.join(where, name)
        try:
            mtime = os.lstat(path).st_mtime
        except OSError:
            continue
        if now - mtime > STALE_AFTER_S:
            found.append((mtime, path))
    return [p for _, p in sorted(found)[:limit]]


def remove_stale_packs(folder: str, now: float | None = None, limit: int = 50) -> int:
    """Remove the spilled packs of sessions idle for :data:`STALE_AFTER_S` (a session's folder under
    ``folder/packs`` is touched by each spill): their ``.md`` files (a symlink: the link, never its target),
    then the folder when nothing else is in it. At most ``limit`` stale folders a call (one holding something of
    someone else's is left); returns how many it handled."""
    now = time.time() if now is None else now
    where = os.path.join(folder, "packs")
    try:
        names = os.listdir(where)
    except OSError:
        return 0
    emptied = 0
    for name in names:
        path = os.path.join(where, name)
        try:
            info = os.lstat(path)
            if not os.path.isdir(path) or os.path.islink(path) or now - info.st_mtime <= STALE_AFTER_S:
                continue
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.name.endswith((".md", ".tmp")) and not entry.is_dir(follow_symlinks=False):
                        os.unlink(entry.path)
            os.rmdir(path)
        except OSError:  # gone meanwhile, or something of someone else's inside: left as it is
            pass
        emptied += 1
        if emptied >= limit:
            break
    return emptied


def _ignore_folder(folder: str) -> None:
    """Keep the adapter's folder out of version control (a ``.gitignore`` of ``*`` inside it)."""
    marker = os.path.join(folder, ".gitignore")
    if not os.path.exists(marker):
        try:
            with open(marker, "x", encoding="utf-8") as out:
                out.write("# ctxbudget's session files and spilled packs: local, not for version control\n*\n")
        except OSError:
            pass
