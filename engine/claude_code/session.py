"""What one Claude Code session has seen, kept as an append-only JSONL file beside the project.

Every hook is a new process, so what one event learns that a later one needs — the prompt a Task tool call
gave a subagent, the memory already injected, the runs still open — is appended here. Appends are single
``os.write`` calls on an ``O_APPEND`` descriptor under ``flock``, so subagents starting at once never lose
an entry; a claim (taking a remembered prompt) happens under the same lock as the read that finds it.

Entries (``kind``): ``task`` (a Task/Agent tool call's prompt), ``claim`` (a subagent took it), ``settled``
(no subagent will start for a call: it was denied, failed or finished, or its turn ended), ``run`` (an
injection: the run's allocation and what was loaded), ``instructions`` (a file Claude Code loaded itself),
``end`` (a run finished; its usage record was written), ``compacted`` (what the entries a compaction dropped
still said: the memory each thread was given, the session's starts).

**Compaction** keeps the file bounded without forgetting anything a later event needs, as a log-structured
store does. When the file grows past :data:`COMPACT_AT_BYTES` (or twice its size after the last compaction),
the reader holding the lock writes the *live* state — open runs and the instruction files counted for them,
open tasks (neither claimed nor settled, for an hour at most: a subagent starts within seconds of its Task call), claims of subagents still
running, and one ``compacted`` entry with the memory each thread has been given since its context was last
emptied — to a temporary file in the same folder, locks it, fsyncs it and renames it over the session file.
A process waiting for the lock on the old file finds, once it has the lock, that the path names another
file (its inode changed): it opens the path again, so its entry goes to the new file, never into the
replaced one.
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

COMPACT_AT_BYTES = 256 << 10
"""A session file larger than this (and than twice its size after its last compaction) is compacted: every event
reads the whole file (about 33 ms a MiB here), so the bound keeps that read to a few ms."""

MAX_STATE_BYTES = 4 << 20
"""The live state a session is expected to stay within; past it the hook reports a problem each compaction
(the state is kept all the same: nothing a later event needs is dropped)."""

MAX_FILE_BYTES = 32 << 20
"""A session file larger than this is not read (:class:`SessionTooLarge`: the event fails open); compaction keeps
every session that is not pathological far below it."""

UNCLAIMED_TASK_TTL_S = 3600
"""A Task call's prompt no subagent claimed this long after it was remembered is dropped at compaction, settled
or not (a call whose end no event reported: the hooks that report it not installed)."""

STALE_AFTER_S = 24 * 3600
"""A session file untouched this long belongs to a session that ended without saying so."""

UNRECORDED = ".unrecorded"
"""The suffix of an ended session's file set aside because some of its runs could not be recorded yet."""

RETRY_AFTER_S = 3600
"""A set-aside session is retried at most once in this long (each attempt touches it)."""


class SessionProblem(RuntimeError):
    """Something the hook should report about a session file without failing the event."""


class SessionTooLarge(SessionProblem):
    """A session file too large to read (the event fails open: nothing is lost, the file is left as it is)."""


def session_file(folder: str, session_id: str) -> str:
    """The file of ``session_id`` in ``folder`` (named by a digest: a session id is not a file name)."""
    digest = sha256_hex(session_id)[:32]
    return os.path.join(folder, "sessions", f"{digest}.jsonl")


class Session:
    """The entries of one session's file; :meth:`locked` for a read-then-append that others must not race."""

    def __init__(self, path: str):
        self.path = path
        self._fd: int | None = None
        self.problems: list[SessionProblem] = []
        """What the hook reports without failing the event (a live state past :data:`MAX_STATE_BYTES`)."""

    def locked(self) -> _Locked:
        """``with session.locked() as s:`` — the file open and locked (``flock``) for a read-then-append."""
        return _Locked(self)

    def entries(self) -> list[dict[str, Any]]:
        """The file's entries, oldest first (unreadable lines skipped); the file is compacted first when it has
        grown past its bound (see the module's documentation)."""
        fd = self._require()
        size = os.fstat(fd).st_size
        if size > MAX_FILE_BYTES:
            raise SessionTooLarge(f"{self.path}: the session file is {size:,} bytes, past the {MAX_FILE_BYTES:,} "
                                  "a hook reads; it is left as it is (nothing recorded from it)")
        data = os.pread(fd, size, 0)
        found = _parse(data)
        if size > COMPACT_AT_BYTES:
            head = found[0] if found and found[0]["kind"] == "compacted" else None
            # (a quarter of the read bound at most: a hand-edited size must not turn compaction off)
            live = min(head.get("live_bytes", 0), MAX_FILE_BYTES // 4) if head is not None else 0
            if size > 2 * live:
                try:
                    found = self._compact(found)
                except OSError as exc:  # a full or read-only disk: the whole file is read, nothing is lost
                    self.problems.append(SessionProblem(f"{self.path}: not compacted ({exc.strerror or exc})"))
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

    def _compact(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Replace the file (locked by us) with the live state of ``entries``; the new file, locked, becomes
        ours before the rename, so no other process can append to it before we are done."""
        kept = live_state(entries)
        lines = [(dumps(e, separators=(",", ":")) + "\n").encode("utf-8") for e in kept]
        live = sum(map(len, lines))
        head = dict(kept[0], live_bytes=live)  # the first entry is the compacted one: it records the file's size
        lines[0] = (dumps(head, separators=(",", ":")) + "\n").encode("utf-8")
        kept[0] = head
        folder = os.path.dirname(self.path)
        temp = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.unlink(temp)  # a compaction of this process id that was killed half-way
        except FileNotFoundError:
            pass
        fd = os.open(temp, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)  # nobody else can know the file yet: this never waits
            os.write(fd, b"".join(lines))
            os.fsync(fd)
            os.replace(temp, self.path)
        except BaseException:
            os.close(fd)
            try:
                os.unlink(temp)
            except OSError:
                pass
            raise
        from engine.policy.locate import sync_folder

        sync_folder(folder)
        old, self._fd = self._fd, fd
        if old is not None:
            os.close(old)  # releases the old file's lock: a waiter finds the path moved and opens it again
        if live > MAX_STATE_BYTES:
            runs = sum(1 for e in kept if e["kind"] == "run")
            tasks = sum(1 for e in kept if e["kind"] == "task")
            self.problems.append(SessionProblem(
                f"{self.path}: the session's live state is {live:,} bytes after compaction ({runs} open runs, "
                f"{tasks} open tasks), past the {MAX_STATE_BYTES:,} expected; it is kept whole"))
        return kept


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
        for _ in range(100):
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_EX)
                # A compaction may have renamed a new file over the path while we waited for the lock on the
                # old one: an entry appended to the old one would be lost. Open the path again.
                opened, named = os.fstat(fd), os.stat(path, follow_symlinks=False)
                if (opened.st_ino, opened.st_dev) == (named.st_ino, named.st_dev):
                    break
            except FileNotFoundError:  # removed meanwhile (a stale session recorded): open it again
                pass
            except BaseException:
                os.close(fd)
                raise
            os.close(fd)
        else:  # pragma: no cover - a hundred compactions in a row while we waited
            raise SessionProblem(f"{path}: the session file kept being replaced; gave up")
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
    "task": {"tool_use_id": _TEXT + _NONE, "agent_type": _TEXT, "prompt": _TEXT, "t": _NUMBER, "thread": _TEXT,
             "prompt_id": _TEXT + _NONE},
    "claim": {"tool_use_id": _TEXT + _NONE, "agent_id": _TEXT, "t": _NUMBER},
    "settled": {"tool_use_id": _TEXT + _NONE, "thread": _TEXT + _NONE, "why": _TEXT, "t": _NUMBER},
    "run": {"run": _TEXT, "thread": _TEXT, "agent": _TEXT, "tier": _TEXT, "t": _NUMBER, "session": _TEXT + _NONE,
            "turn": (bool,), "tier_source": _TEXT + _NONE, "confidence": _NUMBER + _NONE, "signals": _TEXTS,
            "task_hash": _TEXT + _NONE, "task": _TEXT + _NONE, "scopes": (dict,), "items": (int,), "keys": _TEXTS, "reset": (bool,)},
    "instructions": {"thread": _TEXT, "run": _TEXT, "tokens": (int,), "t": _NUMBER},  # t: duplicate deliveries
    "end": {"run": _TEXT, "t": _NUMBER},
    "compacted": {"seen": (dict,), "starts": (int,), "live_bytes": (int,), "t": _NUMBER},
    "attempt": {"t": _NUMBER, "failed": (int,), "error": _TEXT},
}
_REQUIRED = {"task": ("agent_type", "prompt"), "claim": ("agent_id",), "settled": ("why",), "run": ("run", "thread", "agent", "tier"),
             "instructions": ("run",), "end": ("run",), "compacted": ("seen",),
             "attempt": ("t",)}


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


def _parse(data: bytes) -> list[dict[str, Any]]:
    found = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        try:
            entry = loads(line, max_bytes=MAX_FILE_BYTES)
        except JSONInputError:
            continue
        if type(entry) is dict and isinstance(entry.get("kind"), str) and well_formed(entry):
            found.append(entry)
    return found


def seen_keys(entries: list[dict[str, Any]], thread: str) -> set[str]:
    """The memory keys ``thread`` has been given since its context was last emptied."""
    seen: set[str] = set()
    for e in entries:
        if e["kind"] == "compacted":
            keys = e["seen"].get(thread)
            if type(keys) is list:
                seen.update(k for k in keys if type(k) is str)
        elif e["kind"] == "run" and e.get("thread") == thread:
            if e.get("reset"):
                seen.clear()  # the context was emptied there: what came before is gone from it
            seen.update(e.get("keys", ()))
    return seen


def session_starts(entries: list[dict[str, Any]]) -> int:
    """How many SessionStart runs the session has had (those a compaction dropped included)."""
    starts = sum(1 for e in entries if e["kind"] == "run" and e.get("event") == "SessionStart")
    return starts + sum(e.get("starts", 0) for e in entries if e["kind"] == "compacted")


def open_tasks(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Task calls a starting subagent may still take, oldest first: neither claimed by a subagent nor settled.

    A ``settled`` entry with a ``tool_use_id`` settles that call (PostToolUse, PostToolUseFailure or
    PermissionDenied said it is over); one without settles every call its ``thread`` made *before* it (the
    thread's turn ended: a subagent starts within the turn of its Task call, so none will start for them).
    Without this a denied or failed call stayed unclaimed, and every later subagent of its type was handed the
    previous call's prompt for the rest of the session."""
    claimed = {e.get("tool_use_id") for e in entries if e["kind"] == "claim"}
    settled = {e.get("tool_use_id") for e in entries if e["kind"] == "settled" and e.get("tool_use_id") is not None}
    found: list[dict[str, Any]] = []
    for e in entries:
        if e["kind"] == "task":
            if e.get("tool_use_id") not in claimed and e.get("tool_use_id") not in settled:
                found.append(e)
        elif e["kind"] == "settled" and e.get("tool_use_id") is None and found:
            thread = e.get("thread")
            found = [t for t in found if t.get("thread", "main") != thread]
    return found


def live_state(entries: list[dict[str, Any]], now: float | None = None) -> list[dict[str, Any]]:
    """What a later event can still need of ``entries``: one ``compacted`` entry first (the memory each thread
    was given since its context was last emptied, the session's starts), then, in their order, the open runs
    (without their ``reset`` mark: what came before it is already folded in), the instruction files counted for
    them, the attempts at recording an ended session's runs, the open tasks (:func:`open_tasks`, for
    :data:`UNCLAIMED_TASK_TTL_S`) and the claims of subagents still running, with the tasks they took (a
    ``settled`` entry goes: what it settled is not kept)."""
    now = time.time() if now is None else now
    ended = {e["run"] for e in entries if e["kind"] == "end"}
    runs = [e for e in entries if e["kind"] == "run"]
    open_runs = {e["run"] for e in runs if e["run"] not in ended}
    threads = {e["thread"] for e in runs if e["run"] in open_runs} | {"main"}
    seen = {thread: sorted(seen_keys(entries, thread)) for thread in sorted(threads)}
    kept_claims = {e.get("tool_use_id") for e in entries if e["kind"] == "claim" and e["agent_id"] not in ended}
    still_open = {id(e) for e in open_tasks(entries)}
    head = {"kind": "compacted", "t": round(now, 3), "seen": {t: k for t, k in seen.items() if k},
            "starts": 0, "live_bytes": 0}
    kept: list[dict[str, Any]] = [head]
    for e in entries:
        kind = e["kind"]
        if kind == "run" and e["run"] in open_runs:
            kept.append({k: v for k, v in e.items() if k != "reset"})
        elif kind == "instructions" and e["run"] in open_runs or kind == "attempt":
            kept.append(e)
        elif kind == "claim" and e["agent_id"] not in ended:
            kept.append(e)
        elif kind == "task":
            tool_use_id = e.get("tool_use_id")
            when = e.get("t")
            when = when if isinstance(when, (int, float)) else 0
            if tool_use_id in kept_claims or (id(e) in still_open and now - when < UNCLAIMED_TASK_TTL_S):
                kept.append(e)
    head["starts"] = session_starts(entries) - session_starts(kept)  # the starts of the runs dropped
    return kept


def stale_sessions(folder: str, now: float | None = None, limit: int = 50) -> list[str]:
    """Session files in ``folder`` untouched for :data:`STALE_AFTER_S` (at most ``limit``, oldest first); the
    temporary files of compactions killed half-way, as old, are removed on the way."""
    return _listed(folder, ".jsonl", STALE_AFTER_S, now, limit)


def unrecorded_sessions(folder: str, now: float | None = None, limit: int = 2) -> list[str]:
    """Set-aside session files (:data:`UNRECORDED`) not tried for :data:`RETRY_AFTER_S`, least recently tried
    first (at most ``limit``)."""
    return _listed(folder, ".jsonl" + UNRECORDED, RETRY_AFTER_S, now, limit)


def _listed(folder: str, suffix: str, idle_s: float, now: float | None, limit: int) -> list[str]:
    now = time.time() if now is None else now
    where = os.path.join(folder, "sessions")
    try:
        names = os.listdir(where)
    except OSError:
        return []
    found = []
    for name in names:
        is_temp = name.endswith(".tmp")
        if not name.endswith(suffix) and not is_temp:
            continue
        path = os.path.join(where, name)
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if now - info.st_mtime <= idle_s or not (info.st_mode & 0o170000 == 0o100000):  # regular files only
            continue
        if is_temp:
            if now - info.st_mtime > STALE_AFTER_S:
                try:
                    os.unlink(path)
                except OSError:
                    pass
            continue
        found.append((info.st_mtime, path))
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
