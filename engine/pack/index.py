"""The memory index: an SQLite database (FTS5, BM25) of every markdown file under a memory root.

One row per file (path relative to the root, size, mtime, content hash, token count, sidecar metadata, and a
status: ``ok`` or why it cannot load), one row per section (a file above ``split_above`` tokens is split at
its headings; a smaller one is one section), and the sections' text in an FTS5 table for ranking. A refresh
stats every file and re-reads only those whose size or mtime changed (or whose sidecar did); token counts are
cached with the file, so a counter runs once per change. A row per folder holds a digest of the folder's
listing (each markdown file's name, size, mtime and sidecar signature) as its files' rows were last brought up
to date with it: a refresh reads the file rows of only the folders whose digest changed (or that are gone).

Where it lives: ``$CTXBUDGET_CACHE_DIR/memory/`` (default ``~/.cache/ctxbudget/memory/``), one database per
memory root, named by a hash of the root's real path — never beside the root, which may be a read-only
checkout or shared by a team. The cache trust rules apply: a folder or database not owned by the user, a
symlink, or one writable by group or others is not used, and the index is built in memory instead (as it is
with ``CTXBUDGET_NO_CACHE=1``). WAL mode and a busy timeout make concurrent readers safe beside one writer;
a refresh that cannot get the write lock uses the index as it stands. A database that is not one (or is
corrupt) is deleted and rebuilt.
"""

from __future__ import annotations

import os
import _weakref  # (the C module: weakref.py is not imported by a start)
from array import array
try:  # the module sqlite3 re-exports: sqlite3.dbapi2 would add its datetime adapters (~1.5 ms of every start)
    import _sqlite3 as sqlite3
except ImportError:  # pragma: no cover - an interpreter whose sqlite3 is built otherwise
    import sqlite3
import stat
import time

TYPE_CHECKING = False  # not typing's: importing typing costs every start

from engine.records import Record

if TYPE_CHECKING:  # pragma: no cover
    from datetime import datetime
    from typing import Any, Callable, Iterable

    from engine.pack.tokens import Counter

from engine.digest import bulk_sha256, sha256  # not hashlib: it initialises OpenSSL (ms of a hook's start)
from engine.jsonio import is_utf8
from engine.pack.tokens import compiled


def _log(level: str, message: str, *args: Any) -> None:
    """Log to the ``engine.pack`` logger (imported only when there is something to say)."""
    import logging

    logger = logging.getLogger("engine.pack")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())  # a library: the application decides where this goes
    getattr(logger, level)(message, *args)

FORMAT = 6  # bump when the tables change
SIDECAR_LIMIT = 64 * 1024
MAX_USE_COUNT = (1 << 63) - 1  # a sidecar's use_count above it is corrupt (SQLite's INTEGER holds no more)
MARKDOWN = (".md", ".markdown")
MARKDOWN_ENDINGS = (".md", ".markdown")  # as written; other cases (FOO.MD) take the slower path
SIDECAR = ".metadata.json"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY, path TEXT UNIQUE NOT NULL, size INTEGER, mtime_ns INTEGER, sidecar TEXT,
    sidecar_bad INTEGER, hash TEXT, tokens INTEGER, sections INTEGER, use_count INTEGER, last_used REAL,
    confidence REAL, status TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sections (
    id INTEGER PRIMARY KEY, file_id INTEGER NOT NULL, ord INTEGER NOT NULL, heading TEXT, tokens INTEGER,
    hash TEXT);
CREATE INDEX IF NOT EXISTS sections_file ON sections (file_id);
CREATE INDEX IF NOT EXISTS files_sidecar_bad ON files (path) WHERE sidecar_bad;
CREATE TABLE IF NOT EXISTS folders (folder TEXT PRIMARY KEY, digest TEXT, files INTEGER);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5 (path UNINDEXED, heading, body, tokenize = 'porter unicode61');
"""


class IndexStats(Record):
    """What a refresh did."""

    files: int  # markdown files under the root
    changed: int  # (re)read
    removed: int
    bytes_read: int
    skipped: dict  # path -> reason, for files found but not indexable (a symlink leaving the root, …)
    corrupt_sidecars: tuple[str, ...]
    rebuilt: bool
    location: str
    seconds: float
    pending: int = 0  # changed files found but not read: the refresh stopped at its deadline (a lower bound
    # when the walk stopped too); the next refresh goes on from there
    partial: bool = False  # the refresh stopped at its deadline: files may be missing from the index or stale


class Deadline:
    """When a refresh must stop: ``seconds`` from now by ``clock`` (a refresh that reaches it commits what it
    read and returns, :attr:`IndexStats.partial`). The walk of the folders may use the first ``walk_share`` of
    the time, so that some of it is always left to read files: a root too large to walk in time is still
    indexed a little more by every refresh."""

    __slots__ = ("clock", "at", "walk_at")

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic, walk_share: float = 0.5):
        self.clock = clock
        start = clock()
        self.at = start + seconds
        self.walk_at = start + seconds * walk_share

    def passed(self) -> bool:
        """Whether the time to read files is over."""
        return self.clock() >= self.at

    def walk_passed(self) -> bool:
        """Whether the time to walk folders is over."""
        return self.clock() >= self.walk_at


# -- where the index lives -------------------------------------------------------------------------------

def _cache_base() -> str | None:
    """The user cache folder the compiled-policy cache uses (None when caching is off)."""
    from engine.policy.cache import cache_dir

    return cache_dir()


def trusted(path: str) -> bool:
    """Whether ``path`` may be used as a cache: the user's own, not a symlink, not group/other-writable."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    if stat.S_ISLNK(info.st_mode) or info.st_mode & 0o022:
        return False
    return not hasattr(os, "getuid") or info.st_uid == os.getuid()


def index_location(root: str) -> str:
    """The database file for the memory root ``root`` (a real path), or ``:memory:`` when no trusted cache
    folder can be had."""
    base = _cache_base()
    if base is None:
        return ":memory:"
    folder = os.path.join(base, "memory")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return ":memory:"
    if not trusted(folder):
        _log("warning", "%s is not a trusted cache folder (owner or permissions): indexing in memory", folder)
        return ":memory:"
    key = sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    path = os.path.join(folder, f"{key}.sqlite")
    if os.path.lexists(path) and not trusted(path):
        _log("warning", "%s is not a trusted cache file (owner, permissions or a symlink): indexing in memory", path)
        return ":memory:"
    return path


# -- reading files -----------------------------------------------------------------------------------

# Compiled when a file is first read (0.4 ms of a start): a warm pack, such as every hook's, reads no file.
_PATTERNS: list = []


def _patterns() -> tuple[Any, Any, Any]:
    """The compiled Markdown patterns: a heading line, a code fence, a document's title."""
    if not _PATTERNS:
        import re  # (not at the top: a warm pack imports no `re`)

        _PATTERNS.extend((re.compile(r"^#{1,6}[ \t]+(.*?)[ \t#]*$"), re.compile(r"^[ \t]{0,3}(```|~~~)"),
                          re.compile(r"^#[ \t]+(.+)$", re.M)))
    return _PATTERNS[0], _PATTERNS[1], _PATTERNS[2]


def split_sections(text: str) -> list[tuple[str, str]]:
    """``text`` split before each Markdown heading outside code fences: (heading, text) pairs, the text
    including its heading line; a preamble before the first heading has the heading ``""``."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    fence = None
    heading_line, fence_line, _title = _patterns()
    for line in text.splitlines(keepends=True):
        opened = fence_line.match(line)
        if opened:
            fence = None if fence == opened.group(1) else (fence or opened.group(1))
        elif fence is None:
            heading = heading_line.match(line.rstrip("\r\n"))
            if heading:
                sections.append((heading.group(1).strip(), []))
        sections[-1][1].append(line)
    return [(h, "".join(lines)) for h, lines in sections if "".join(lines).strip()]


def _merge_small(parts: list[tuple[str, str]], counts: list[int], least: int) -> tuple[list, list[int]]:
    """Sections smaller than ``least`` tokens joined to the next (a run of short sections loads as one, under
    the first one's heading); a short last section joins the one before."""
    merged: list[list] = []
    for (heading, body), count in zip(parts, counts):
        if merged and merged[-1][2] < least:
            merged[-1][1] += body
            merged[-1][2] += count
        else:
            merged.append([heading, body, count])
    if len(merged) > 1 and merged[-1][2] < least:
        last = merged.pop()
        merged[-1][1] += last[1]
        merged[-1][2] += last[2]
    return [(h, b) for h, b, _ in merged], [c for _, _, c in merged]


def read_sidecar(path: str) -> tuple[dict | None, bool]:
    """(use_count, last_used, confidence) from a sidecar, and whether it was corrupt. A missing one is
    (None, False)."""
    from engine.policy.locate import read_bytes

    try:
        raw = read_bytes(path, SIDECAR_LIMIT)  # a FIFO or a device is refused, never opened or waited on
    except FileNotFoundError:
        return None, False
    except OSError:
        return None, True
    from engine.jsonio import loads

    try:
        data = loads(raw, max_bytes=SIDECAR_LIMIT)  # strict: no NaN, no infinity, bounded depth and digits
        if not isinstance(data, dict):
            raise ValueError("not an object")
        use_count = data.get("use_count", 0)
        if type(use_count) is not int or not 0 <= use_count <= MAX_USE_COUNT:
            raise ValueError("use_count")
        confidence = data.get("confidence")
        if confidence is not None and (type(confidence) not in (int, float) or not 0 <= confidence <= 1):
            raise ValueError("confidence")
        last_used = data.get("last_used")
        if isinstance(last_used, str):
            from datetime import datetime, timezone

            moment = datetime.fromisoformat(last_used.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=timezone.utc)
            last_used = moment.timestamp()
        elif last_used is not None:
            if type(last_used) not in (int, float):
                raise ValueError("last_used")
            last_used = float(last_used)  # an integer past a double's range: OverflowError
    except (ValueError, OverflowError):
        return None, True
    return {"use_count": use_count, "last_used": last_used,
            "confidence": None if confidence is None else float(confidence)}, False


def sidecar_of(path: str) -> str:
    """``foo.md`` → ``foo.metadata.json`` (the seed's ``Path.with_suffix``)."""
    return os.path.splitext(path)[0] + SIDECAR


# -- the index ---------------------------------------------------------------------------------------

_OPEN: set = set()  # weak references to the indexes of this process (close_all)


def close_all() -> None:
    """Close the database of every index this process opened and still holds (before it exits: engine.cli freezes
    its objects then, and a connection held in a cycle would otherwise stay open, its WAL files left behind)."""
    for found in list(_OPEN):
        index = found()
        if index is not None:
            try:
                index.db.close()
            except sqlite3.Error:
                pass


class MemoryIndex:
    """The index of one memory root. Not thread-safe (one per thread); safe across processes."""

    def __init__(self, root: str, counter: Counter, counter_name: str, split_above: int, max_file_bytes: int,
                 location: str | None = None):
        self.root = os.path.realpath(root)
        self.counter = counter
        self.settings = f"{FORMAT}:{counter_name}:{split_above}:{max_file_bytes}"
        self.split_above = split_above
        self.max_file_bytes = max_file_bytes
        self.location = location or index_location(self.root)
        self.rebuilt = False
        self._rows: dict[str, list[tuple]] = {}  # candidate rows by path prefix, until the index changes
        self._whole = False  # the whole root has been indexed once
        self.db = self._open()
        _OPEN.add(_weakref.ref(self, _OPEN.discard))

    # opening, and rebuilding when the file is not a (healthy) database

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.location, timeout=2.0, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 2000")
        if self.location != ":memory:":
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
        return db

    def _open(self) -> sqlite3.Connection:
        try:
            db = self._connect()
            found = db.execute("SELECT name FROM sqlite_master WHERE name = 'meta'").fetchone()
            if found is None:
                db.executescript(_SCHEMA)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('settings', ?)", (self.settings,))
                return db
            row = db.execute("SELECT value FROM meta WHERE key = 'settings'").fetchone()
            if row is None or row[0] != self.settings:
                db.close()
                return self._rebuild("it was built with other settings")
            db.execute("SELECT count(*) FROM files").fetchone()
            db.execute("SELECT folder, digest, files FROM folders LIMIT 0").fetchall()  # (gone or not one: rebuilt)
            return db
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):  # another process holds it past the busy timeout
                _log("warning", "memory index %s is busy (%s): indexing in memory", self.location, exc)
                self.location = ":memory:"
                return self._rebuild(str(exc))
            return self._rebuild(str(exc))
        except sqlite3.DatabaseError as exc:
            return self._rebuild(str(exc))

    def reset(self, why: str) -> None:
        """Delete and rebuild the database (it turned out corrupt while in use; in memory when the disk is
        full)."""
        try:
            self.db.close()
        except sqlite3.Error:
            pass
        self._rows.clear()
        self._whole = False
        self.db = self._rebuild(why, in_memory=_cannot_write(why))

    def _rebuild(self, why: str, in_memory: bool = False) -> sqlite3.Connection:
        if self.location != ":memory:":
            _log("warning", "memory index %s rebuilt%s: %s", self.location, " in memory" if in_memory else "", why)
            for suffix in ("", "-wal", "-shm"):
                try:
                    os.unlink(self.location + suffix)
                except FileNotFoundError:
                    pass
                except OSError:
                    self.location = ":memory:"
            if in_memory:
                self.location = ":memory:"
        self.rebuilt = True
        try:
            db = self._connect()
            db.executescript(_SCHEMA)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('settings', ?)", (self.settings,))
        except sqlite3.Error as exc:  # the file cannot be written (a full disk): the index lives in memory
            if self.location == ":memory:":
                raise
            _log("warning", "memory index %s cannot be written (%s): indexing in memory", self.location, exc)
            self.location = ":memory:"
            return self._rebuild(str(exc))
        return db

    def close(self) -> None:
        self.db.close()

    # the walk

    def folders(self, prefixes: Iterable[str] | None) -> list[str]:
        """The folders (relative, ``""`` for the root) to walk to see every path starting with a prefix."""
        if prefixes is None:
            return [""]
        out = []
        for prefix in prefixes:
            folder = prefix if prefix.endswith("/") else prefix[:prefix.rfind("/") + 1]
            if prefix and not prefix.endswith("/") and os.path.isdir(os.path.join(self.root, prefix)):
                folder = prefix + "/"
            out.append(folder)
        return [f.rstrip("/") for f in _disjoint(out)]

    def scan(self, folders: list[str] | None = None, deadline: Deadline | None = None,
             first: list[str] | None = None, digests: dict[str, tuple[str, list[str]]] | None = None,
             ) -> tuple[dict[str, tuple[int, int, str]], dict[str, str], set[str], bool]:
        """Every markdown file under the root (or under ``folders`` of it): path → (size, mtime_ns, sidecar
        signature); the files found but not indexable, path → reason; the folders listed; and whether the
        walk finished (it stops when ``deadline``'s walking time is over). ``first``: folders walked before
        the others (and not again). Symlinked folders are not entered; a symlinked file is followed only when
        it stays inside the root. ``digests``, when given, gets each folder listed: folder → (the digest of its
        listing, its markdown files' paths)."""
        found: dict[str, tuple[int, int, str]] = {}
        skipped: dict[str, str] = {}
        listed: set[str] = set()
        starts = list(folders) if folders is not None else [""]
        ahead = set(first or ())
        top = set(starts) | ahead
        # (whether it walks the folders to see first, the folders): the later walk does not enter those again
        phases = [(True, [*first]), (False, [f for f in starts if f not in ahead])] if first else [(False, starts)]
        for phase, stack in phases:
            while stack:
                if deadline is not None and deadline.walk_passed():
                    return found, skipped, listed, False
                rel = stack.pop()
                if rel in top and rel and os.path.islink(os.path.join(self.root, rel)):
                    continue  # a source folder that is a symlink: not followed
                subfolders: list[str] = []
                if self._list(rel, found, skipped, subfolders, digests):
                    listed.add(rel)
                stack.extend(f for f in subfolders if phase or f not in ahead)
        return found, skipped, listed, True

    def _list(self, rel: str, found: dict[str, tuple[int, int, str]], skipped: dict[str, str],
              subfolders: list[str], digests: dict[str, tuple[str, list[str]]] | None = None) -> bool:
        """List one folder (relative to the root): its markdown files into ``found``, what cannot be indexed
        into ``skipped``, its subfolders appended to ``subfolders``; with ``digests``, the folder's digest and
        files into it (:func:`listing_digest`). False when it cannot be read (a folder that does not exist is
        listed, empty: an agent without recent/)."""
        folder = os.path.join(self.root, rel) if rel else self.root
        try:
            entries = list(os.scandir(folder))
        except FileNotFoundError:
            if digests is not None:
                digests[rel] = (listing_digest([]), [])
            return True
        except OSError as exc:
            skipped[rel or "."] = f"unreadable folder ({exc.strerror})"
            return False
        prefix = rel + "/" if rel else ""
        sidecars: dict[str, Any] = {}  # stem -> stat of foo.metadata.json
        files = []
        for entry in entries:
            name = entry.name
            if name[0] == ".":
                continue
            if not name.isascii() and not is_utf8(name):  # bytes that are not UTF-8: SQLite holds text
                skipped[prefix + _shown(name)] = "name is not UTF-8 text (not indexed)"
                continue
            try:
                if name.endswith(MARKDOWN_ENDINGS) and not entry.is_symlink():
                    if entry.is_dir(follow_symlinks=False):
                        subfolders.append(prefix + name)
                    else:
                        files.append((name, entry.stat(follow_symlinks=False)))
                elif name.endswith(SIDECAR):
                    sidecars[name[:-len(SIDECAR)]] = entry.stat(follow_symlinks=False)
                elif entry.is_dir(follow_symlinks=False):
                    subfolders.append(prefix + name)
                elif entry.is_symlink():
                    if name.lower().endswith(MARKDOWN):
                        target = os.path.realpath(entry.path)
                        if not target.startswith(self.root + os.sep):
                            skipped[prefix + name] = "symlink leaving the memory root (not followed)"
                        elif os.path.isfile(target):
                            files.append((name, os.stat(target)))
                elif name.lower().endswith(MARKDOWN) and entry.is_file(follow_symlinks=False):
                    files.append((name, entry.stat(follow_symlinks=False)))  # FOO.MD
            except OSError as exc:
                skipped[prefix + name] = f"unreadable ({exc.strerror})"
        listing = []
        for name, info in files:
            if stat.S_ISREG(info.st_mode):  # not a FIFO or a device that happens to end in .md
                side = sidecars.get(name.rpartition(".")[0])
                signature = found[prefix + name] = (info.st_size, info.st_mtime_ns,
                                                    f"{side.st_size}:{side.st_mtime_ns}" if side is not None else "")
                listing.append((name, signature))
        if digests is not None:
            digests[rel] = (listing_digest(listing), [prefix + name for name, _ in listing])
        return True

    def refresh(self, progress: Callable[[int, int], None] | None = None,
                prefixes: Iterable[str] | None = None, deadline: Deadline | None = None) -> IndexStats:
        """Bring the index up to date with the files (see the module's documentation); with ``prefixes``,
        only the files whose paths start with one of them (what one pack can load) — once the whole root has
        been indexed: BM25's statistics are the whole store's, so the first refresh reads everything.

        The files read are committed in chunks, so a refresh interrupted (by ``deadline``, a signal, a killed
        process) keeps what it read and the next one goes on from there. Past ``deadline`` the refresh commits
        and returns with :attr:`IndexStats.partial` set; until the whole root has been indexed, a refresh with
        both ``prefixes`` and a deadline walks and reads the files under ``prefixes`` before the rest."""
        try:
            return self._refresh(progress, prefixes, deadline)
        except sqlite3.OperationalError as exc:
            if not _cannot_write(exc):
                raise
            self.reset(str(exc))  # a full disk: the index lives in memory from now on
            return self._refresh(progress, prefixes, deadline)

    def _refresh(self, progress: Callable[[int, int], None] | None, prefixes: Iterable[str] | None,
                 deadline: Deadline | None) -> IndexStats:
        started = time.perf_counter()
        if deadline is not None and not self._complete():
            return self._catch_up(progress, self.folders(prefixes) if prefixes is not None else [], deadline,
                                  started)
        if prefixes is not None and not self._complete():
            prefixes = None
        folders = self.folders(prefixes)
        digests: dict[str, tuple[str, list[str]]] = {}
        found, skipped, listed, walked = self.scan(folders, deadline, digests=digests)
        run = _Run(self._version())
        self.db.execute("BEGIN")  # one snapshot of the folders' digests and of the file rows they stand for
        try:
            stored = self._digests(folders, len(listed), walked)
            if stored is None:  # none to trust (a new index, one cut short, a table not as this code writes it)
                dirty, gone = list(digests), []
                known = self._known(folders)
            else:
                dirty = [f for f, (digest, paths) in digests.items() if stored.get(f) != (digest, len(paths))]
                # (a walk cut short has not seen every folder: one it did not list may be there still)
                gone = [f for f in stored if f not in digests] if walked else []
                known = self._known(dirty + gone, directly=True)
        finally:
            self.db.execute("COMMIT")
        if stored is None:
            changed = [p for p, sig in found.items() if known.get(p, (None,))[1:] != sig]
        else:  # (in the walk's order, as above)
            changed = [p for f in dirty for p in digests[f][1] if known.get(p, (None,))[1:] != found[p]]
        # a file is gone when its folder was listed without it (a walk cut short has not seen every folder)
        removed = [p for p in known if p not in found and (walked or p.rpartition("/")[0] in listed)]
        whole = prefixes is None and walked

        def write_digests() -> None:
            # what this refresh has brought each folder's rows up to date with (in the transaction that does)
            if stored is None and walked:
                for folder in folders:  # every folder's row is written anew, what was there before dropped
                    self.db.execute(*_folder_range("DELETE FROM folders WHERE", folder))
            elif gone:
                self.db.executemany("DELETE FROM folders WHERE folder = ?", [(f,) for f in gone])
            self.db.executemany("INSERT OR REPLACE INTO folders (folder, digest, files) VALUES (?, ?, ?)",
                                [(f, digests[f][0], len(digests[f][1])) for f in dirty])

        def reload() -> dict[str, tuple[int, int, int, str]]:
            return self._known(folders) if stored is None else self._known(dirty + gone, directly=True)

        write = write_digests if dirty or gone or (stored is None and walked) else None
        pending = self._apply(run, found, known, changed, removed, reload, deadline, progress,
                              done_meta={"complete": "1", "walk": None} if whole else None, digests=write)
        if write is not None and not changed and not removed:  # the digests alone, if the lock is free at once
            self._write_alone(run, write)
        if whole and not pending and not run.busy:
            if not self._complete() and not (run.done or run.removed):
                try:  # nothing changed, but the whole root has now been seen
                    self.db.execute("INSERT OR REPLACE INTO meta VALUES ('complete', '1')")
                except sqlite3.OperationalError:
                    pass
            self._whole = True
        return self._stats(run, found, skipped, started, pending, run.stopped or not walked)

    def _apply(self, run: _Run, found: dict[str, tuple[int, int, str]], known: dict[str, tuple],
               changed: list[str], removed: list[str], reload: Callable[[], dict[str, tuple]],
               deadline: Deadline | None, progress: Callable[[int, int], None] | None,
               done_meta: dict[str, str] | None = None, meta: Callable[[list[str]], dict[str, str]] | None = None,
               digests: Callable[[], None] | None = None) -> int:
        """Delete ``removed``, read ``changed`` (paths of ``found``; ``known``: the index's rows they are weighed
        against, as ``reload()`` reads them again), one transaction a chunk, until ``deadline``; each chunk also
        writes ``meta(changed files not read yet)`` and drops the digests of the folders whose rows it changed,
        and the last one writes ``done_meta`` and ``digests()`` when every file is read (the digests only when no
        other process wrote in between). Returns how many were not read."""
        if not changed and not removed:
            run.corrupt += [p for (p,) in self.db.execute("SELECT path FROM files WHERE sidecar_bad") if p in found]
            return 0
        done = 0
        writer = _Writer(self.db, hashing=bulk_sha256() if len(changed) > BULK_FILES else sha256)
        total = sum(found[p][0] for p in changed)
        corrupt: list[str] = []
        while not run.stopped:  # one transaction per chunk: what was read stays, whatever stops the refresh
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # another process is writing: use the index as it is
                _log("info", "memory index busy (%s): using it as it stands", exc)
                run.busy = True
                break
            try:
                seen = self._version()
                if seen != run.version:  # another process wrote since: what is left is weighed against its rows
                    run.version, known, run.interleaved = seen, reload(), True
                    changed = changed[:done] + [p for p in changed[done:] if known.get(p, (None,))[1:] != found[p]]
                    removed = [p for p in removed if p in known]
                touched = {p.rpartition("/")[0] for p in removed}
                for path in removed:
                    self._delete(known[path][0])
                run.removed += len(removed)
                removed = []
                writer.start()
                chunk = 0
                start = done
                while done < len(changed) and chunk < CHUNK_BYTES:
                    if deadline is not None and deadline.passed():
                        run.stopped = True
                        break
                    path = changed[done]
                    old = known.get(path)
                    if old is not None and old[1:3] == found[path][:2]:
                        self._update_sidecar(old[0], path, found[path][2], corrupt)
                    else:
                        if old is not None:
                            self._delete(old[0])
                        size = self._add(writer, path, found[path], corrupt)
                        run.read += size
                        chunk += size + CHUNK_FILE_COST
                    done += 1
                    run.done += 1
                    if progress is not None:
                        progress(min(run.read, total), total)
                writer.flush()
                # a folder's digest stands for its rows: one whose rows change loses it until it is written again
                touched.update(p.rpartition("/")[0] for p in changed[start:done])
                self.db.executemany("DELETE FROM folders WHERE folder = ?", [(f,) for f in touched])
                if done == len(changed) and digests is not None and not run.interleaved:
                    digests()
                extra = dict(meta(changed[done:]) if meta is not None else {})
                if done == len(changed) and done_meta:
                    extra.update(done_meta)
                for key, value in extra.items():
                    if value is None:
                        self.db.execute("DELETE FROM meta WHERE key = ?", (key,))
                    else:
                        self.db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))
                self.db.execute("COMMIT")
                self._rows.clear()
            except BaseException:
                try:
                    self.db.execute("ROLLBACK")
                except sqlite3.Error:  # SQLite rolled back already (a COMMIT that found the disk full)
                    pass
                self._rows.clear()
                raise
            if done == len(changed):
                break
        run.corrupt += [p for (p,) in self.db.execute("SELECT path FROM files WHERE sidecar_bad") if p in found]
        return len(changed) - done

    def _catch_up(self, progress: Callable[[int, int], None] | None, first: list[str], deadline: Deadline,
                  started: float) -> IndexStats:
        """A refresh within ``deadline`` of an index not complete yet. The pack's own folders (``first``) are
        walked and read first. Then the walk of the rest of the root goes on from where the last refresh left it
        (a cursor kept in the index: the folders still to walk), reading each folder's changed files as it
        goes, a chunk at a time; a folder whose files were not all read goes back on the cursor. So every
        refresh adds to the index whatever the root's size, and the root is complete once the cursor is empty."""
        import json

        run = _Run(self._version())
        if first:
            found, skipped, listed, walked = self.scan(first, deadline)
            known = self._known(first)
            changed = [p for p, sig in found.items() if known.get(p, (None,))[1:] != sig]
            removed = [p for p in known if p not in found and (walked or p.rpartition("/")[0] in listed)]
            pending = self._apply(run, found, known, changed, removed, lambda: self._known(first), deadline,
                                  progress)
            run.stopped = run.stopped or not walked
        else:
            found, skipped, pending = {}, {}, 0
        cursor = _cursor(self.db.execute("SELECT value FROM meta WHERE key = 'walk'").fetchone())
        ahead = set(first)
        while cursor and not run.stopped and not run.busy:
            batch: dict[str, tuple[int, int, str]] = {}
            known, listed, order, size = {}, set(), [], 0
            while cursor and size < CHUNK_BYTES:  # walk until a chunk's worth of changes is found
                if deadline.passed():
                    run.stopped = True
                    break
                rel, descend = cursor.pop()
                if rel in ahead or (rel and os.path.islink(os.path.join(self.root, rel))):
                    continue  # walked first; or a folder turned into a symlink since: not followed
                here: dict[str, tuple[int, int, str]] = {}
                subfolders: list[str] = []
                if self._list(rel, here, skipped, subfolders):
                    listed.add(rel)
                    order.append(rel)
                if descend:
                    cursor.extend([f, True] for f in subfolders if f not in ahead)
                rows = self._known([rel], directly=True)
                known.update(rows)
                batch.update(here)
                size += sum(sig[0] + CHUNK_FILE_COST for p, sig in here.items() if rows.get(p, (None,))[1:] != sig)
            found.update(batch)
            changed = [p for p, sig in batch.items() if known.get(p, (None,))[1:] != sig]
            removed = [p for p in known if p not in batch and p.rpartition("/")[0] in listed]
            if run.stopped:  # out of time while walking: the folders with changes are listed again next time
                touched = {p.rpartition("/")[0] for p in (*changed, *removed)}
                cursor += [[folder, False] for folder in reversed(order) if folder in touched]
                pending += len(changed)
                break

            def walk(unread: list[str], rest: list = cursor) -> dict[str, str]:
                # the cursor as a refresh stopping now leaves it: the folders of unread files are listed again
                again = [[folder, False] for folder in dict.fromkeys(p.rpartition("/")[0] for p in unread)]
                return {"walk": json.dumps(rest + again[::-1])}

            left = self._apply(run, batch, known, changed, removed, lambda seen=sorted(listed): self._known(seen),
                               deadline, progress, meta=walk,
                               done_meta=None if cursor else {"complete": "1", "walk": None})
            pending += left
            if left:  # (the folders of every file the batch found changed: listing one again costs little)
                cursor += [[folder, False] for folder in dict.fromkeys(p.rpartition("/")[0] for p in changed)]
        try:
            if not run.busy and not run.stopped and not cursor and not pending:
                if not self._complete():  # (the last chunk wrote it, when there was one)
                    self.db.execute("BEGIN IMMEDIATE")
                    self.db.execute("INSERT OR REPLACE INTO meta VALUES ('complete', '1')")
                    self.db.execute("DELETE FROM meta WHERE key = 'walk'")
                    self.db.execute("COMMIT")
                self._whole = True
            elif not run.busy:  # where the next refresh goes on (also when this one found nothing to read)
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('walk', ?)", (json.dumps(cursor),))
        except sqlite3.OperationalError as exc:  # busy: the next refresh walks again from the last cursor kept
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            _log("info", "memory index busy (%s): its walk cursor not kept", exc)
        return self._stats(run, found, skipped, started, pending, not self._whole)

    def _stats(self, run: _Run, found: dict, skipped: dict, started: float, pending: int,
               partial: bool) -> IndexStats:
        corrupt = tuple(dict.fromkeys(run.corrupt))
        for path in corrupt:
            _log("warning", "%s: corrupt sidecar %s ignored", path, os.path.basename(sidecar_of(path)))
        return IndexStats(len(found), run.done, run.removed, run.read, skipped, corrupt, self.rebuilt,
                          self.location, time.perf_counter() - started, pending, partial)

    def _digests(self, folders: list[str], listed: int, walked: bool) -> dict[str, tuple[str, int]] | None:
        """The folders' digests the index holds under ``folders``: folder → (digest, files), or None when they
        cannot be trusted — a row not as :meth:`_refresh` writes it (a digest that is not 64 characters of
        text, a count that is not an integer, a huge name), more rows than a walk that listed ``listed``
        folders could have written (a walk cut short may have listed few: then at most ``DIGEST_ROWS`` rows,
        ``DIGEST_NAMES`` characters of names), or file rows that no folder's row counts (a row missing): a
        refresh then weighs every file against its row, as if there were none."""
        stored: dict[str, tuple[str, int]] = {}
        ok = ("typeof(folder) = 'text' AND length(folder) <= 4096 AND typeof(digest) = 'text' "
              "AND length(digest) = 64 AND typeof(files) = 'integer' AND files BETWEEN 0 AND 1000000000")
        rows_left, names_left = (2 * listed + 64 if walked else DIGEST_ROWS), DIGEST_NAMES
        for folder in folders:
            query, args = _folder_range("SELECT count(*), coalesce(sum(length(folder)), 0) FROM folders WHERE", folder)
            count, names = self.db.execute(query, args).fetchone()
            rows_left, names_left = rows_left - count, names_left - names
            if rows_left < 0 or names_left < 0:  # (read before any row is: the memory it takes is bounded)
                return None
            query, args = _folder_range(f"SELECT CASE WHEN {ok} THEN folder END, CASE WHEN {ok} THEN digest END, "
                                        f"CASE WHEN {ok} THEN files END FROM folders WHERE", folder)
            total = 0
            for name, digest, files in self.db.execute(query, args):
                if name is None:
                    return None
                stored[name] = (digest, files)
                total += files
            query, args = _folder_range("SELECT count(*) FROM files WHERE", folder, "path", subfolders_only=True)
            if self.db.execute(query, args).fetchone()[0] != total:
                return None
        return stored

    def _write_alone(self, run: _Run, write: Callable[[], None]) -> None:
        """``write()`` in a transaction of its own, when no other process has written since ``run`` read the
        rows, and only if the write lock is free at once (the digests are for the next refresh: never worth
        waiting for)."""
        (timeout,) = self.db.execute("PRAGMA busy_timeout").fetchone()
        self.db.execute("PRAGMA busy_timeout = 0")
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            _log("info", "memory index busy (%s): its folders' digests not written", exc)
            return
        finally:
            self.db.execute(f"PRAGMA busy_timeout = {int(timeout)}")
        try:
            if self._version() == run.version:
                write()
            self.db.execute("COMMIT")
        except BaseException:
            try:
                self.db.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            raise

    def _known(self, folders: list[str], directly: bool = False) -> dict[str, tuple[int, int, int, str]]:
        """The indexed files under ``folders`` — only those directly in them, not in their subfolders, when
        ``directly`` —: path → (id, size, mtime_ns, sidecar signature)."""
        known = {}
        for folder in folders:
            low = folder + "/" if folder else ""
            under, args = _starting_with("path", low)
            query = f"SELECT id, path, size, mtime_ns, sidecar FROM files WHERE {under}"
            if directly:
                query, args = f"{query} AND instr(substr(path, ?), '/') = 0", (*args, len(low) + 1)
            known.update((path, (fid, size, mtime, sidecar))
                         for fid, path, size, mtime, sidecar in self.db.execute(query, args))
        return known

    def _version(self) -> int:
        """SQLite's ``data_version``: it changes when another connection commits (our own commits leave it)."""
        return self.db.execute("PRAGMA data_version").fetchone()[0]

    def _complete(self) -> bool:
        """Whether the whole root has been indexed once."""
        if not self._whole:
            self._whole = self.db.execute("SELECT 1 FROM meta WHERE key = 'complete'").fetchone() is not None
        return self._whole

    def _delete(self, file_id: int) -> None:
        self.db.execute("DELETE FROM fts WHERE rowid IN (SELECT id FROM sections WHERE file_id = ?)", (file_id,))
        self.db.execute("DELETE FROM sections WHERE file_id = ?", (file_id,))
        self.db.execute("DELETE FROM files WHERE id = ?", (file_id,))

    def _sidecar(self, path: str, signature: str, corrupt: list[str]) -> tuple[int, dict]:
        if not signature:
            return 0, {}
        meta, bad = read_sidecar(os.path.join(self.root, sidecar_of(path)))
        if bad:
            corrupt.append(path)
            return 1, {}
        return 0, meta or {}

    def _update_sidecar(self, file_id: int, path: str, signature: str, corrupt: list[str]) -> None:
        bad, meta = self._sidecar(path, signature, corrupt)
        self.db.execute("UPDATE files SET sidecar = ?, sidecar_bad = ?, use_count = ?, last_used = ?, confidence = ? "
                        "WHERE id = ?", (signature, bad, meta.get("use_count", 0), meta.get("last_used"),
                         meta.get("confidence"), file_id))

    def _add(self, writer: _Writer, path: str, signature: tuple[int, int, str], corrupt: list[str]) -> int:
        """Read one file and queue its rows (``writer``); returns the bytes read."""
        size, mtime_ns, sidecar = signature
        status, text, raw_len, digest = "ok", "", 0, None
        limit = self.max_file_bytes
        try:
            with open(os.path.join(self.root, path), "rb") as handle:
                # the size the walk saw bounds the buffer (a read of limit + 1 bytes allocates all of them)
                raw = handle.read(min(size, limit) + 1)
                if size < len(raw) <= limit:  # it grew since the walk
                    raw += handle.read(limit + 1 - len(raw))
            raw_len = len(raw)
            if len(raw) > limit:
                status = f"too large (over {limit:,} bytes)"
            elif b"\0" in raw[:8192]:
                status = "binary"
            else:
                text = raw.decode("utf-8-sig")
                digest = writer.hashing(raw).hexdigest()
        except UnicodeDecodeError:
            status = "not UTF-8 text"
        except OSError as exc:
            status = f"unreadable ({exc.strerror})"
        if status == "ok" and not text.strip():
            status = "empty"
        bad, meta = self._sidecar(path, sidecar, corrupt)
        parts: list = []
        tokens = 0
        if status == "ok":
            # a file that may be above split_above (about 3 bytes a token at the least) is split first, and
            # its sections counted: a file's count is the sum of its sections'
            if len(raw) > self.split_above * 3:
                parts = split_sections(text)
            if len(parts) > 1:
                counts = [self.counter(body) for _, body in parts]
                tokens = sum(counts)
                if tokens <= self.split_above:  # small enough after all: one section, counted once
                    parts, counts = [("", text)], [tokens]
                else:
                    parts, counts = _merge_small(parts, counts, self.split_above // 8)
            else:
                parts, tokens = [("", text)], self.counter(text)
                counts = [tokens]
        file_id = writer.file(
            (path, size, mtime_ns, sidecar, bad, digest, tokens, len(parts), meta.get("use_count", 0),
             meta.get("last_used"), meta.get("confidence"), status))
        if status != "ok":
            return raw_len
        # What ranks a section besides its text: the file's name, the document's title and the section's heading
        # (a "## Pitfalls" section of incremental-models.md is about incremental models).
        name = compiled(r"[-_.]+").sub(" ", os.path.splitext(os.path.basename(path))[0])
        title = _patterns()[2].search(text[:4096])
        label = f"{name} {title.group(1).strip() if title else ''}"
        hashing = writer.hashing
        for order, (heading, body) in enumerate(parts):
            section_hash = digest if len(parts) == 1 else hashing(body.encode("utf-8", "surrogatepass")).hexdigest()
            writer.section(file_id, order, heading, counts[order], section_hash, path, f"{label} {heading}", body)
        return raw_len

    # queries

    def candidates(self, prefixes: Iterable[str]) -> list[tuple]:
        """The sections of the loadable files whose paths start with one of ``prefixes``, as tuples
        (id, path, ord, heading, tokens, file_tokens, hash, last_used, use_count, confidence): ``last_used``
        in seconds since the epoch, from the sidecar, else the file's mtime; ``confidence`` 0.5 without a
        sidecar. Kept in memory until a refresh changes the index."""
        query = ("SELECT s.id, f.path, s.ord, s.heading, s.tokens, f.tokens, s.hash, "
                 "coalesce(f.last_used, f.mtime_ns / 1e9), coalesce(f.use_count, 0), coalesce(f.confidence, 0.5) "
                 "FROM files f JOIN sections s ON s.file_id = f.id "
                 "WHERE f.status = 'ok' AND ")
        out: list[tuple] = []
        for prefix in _disjoint(prefixes):
            rows = self._rows.get(prefix)
            if rows is None:
                under, args = _starting_with("f.path", prefix)
                rows = self._rows[prefix] = self.db.execute(query + under, args).fetchall()
            out += rows
        return out

    def unloadable(self, prefixes: Iterable[str]) -> list[tuple[str, str]]:
        """(path, reason) of indexed files under ``prefixes`` that cannot load (binary, not UTF-8, …)."""
        out = []
        for prefix in _disjoint(prefixes):
            under, args = _starting_with("path", prefix)
            out += self.db.execute(f"SELECT path, status FROM files WHERE status != 'ok' AND {under}", args).fetchall()
        return out

    def lexical(self, terms: list[str]) -> dict[int, float]:
        """BM25 relevance (higher is better, > 0) of every section matching any of ``terms``. (One query over
        the whole store: a filter on the path would make FTS5 read each matching row, several times slower.)"""
        if not terms:
            return {}
        query = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        try:
            rows = self.db.execute("SELECT rowid, bm25(fts, 0.0, 2.0, 1.0) FROM fts WHERE fts MATCH ?",
                                   (query,)).fetchall()
        except sqlite3.OperationalError:  # a term FTS5 cannot parse: no lexical evidence
            return {}
        return {rowid: -score for rowid, score in rows}

    def texts(self, ids: list[int]) -> dict[int, str]:
        out: dict[int, str] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            marks = ",".join("?" * len(chunk))
            out.update(self.db.execute(f"SELECT rowid, body FROM fts WHERE rowid IN ({marks})", chunk).fetchall())
        return out

    def count(self) -> tuple[int, int, int]:
        """(files, sections, tokens) in the index."""
        files, tokens = self.db.execute("SELECT count(*), coalesce(sum(tokens), 0) FROM files").fetchone()
        return files, self.db.execute("SELECT count(*) FROM sections").fetchone()[0], tokens


def _cursor(row: tuple | None) -> list:
    """The walk a bounded refresh left in the index: [folder, whether to walk its subfolders too], the next one
    to walk last; the whole root when there is none (or it is not such a list: the index is a cache)."""
    import json

    if row is not None:
        try:
            cursor = json.loads(row[0])
        except (TypeError, ValueError):
            cursor = None
        if isinstance(cursor, list) and all(
                isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) and isinstance(c[1], bool)
                and not c[0].startswith("/") and ".." not in c[0].split("/") for c in cursor):
            return cursor
    return [["", True]]


class _Run:
    """What one refresh has done so far (its transactions may be several)."""

    __slots__ = ("version", "done", "read", "removed", "corrupt", "busy", "stopped", "interleaved")

    def __init__(self, version: int):
        self.version = version  # SQLite's data_version when the rows in hand were read
        self.done = self.read = self.removed = 0
        self.corrupt: list[str] = []
        self.busy = self.stopped = False
        self.interleaved = False  # another process wrote since the rows in hand were first read


DIGEST_ROWS = 1_000_000
"""At most this many folders' rows are read when a walk was cut short (otherwise: twice the folders walked)."""
DIGEST_NAMES = 64 << 20
"""At most this many characters of folder names are read (a table written by this code holds far fewer)."""
CHUNK_BYTES = 8 << 20
"""A refresh commits about every this many bytes read: what it read survives an interruption."""
CHUNK_FILE_COST = 4096
"""What one file read counts for, besides its bytes, towards a chunk (so a chunk of tiny files still ends)."""
BULK_FILES = 64
"""A refresh reading more files hashes them with OpenSSL's SHA-256 (:func:`engine.digest.bulk_sha256`)."""


class _Writer:
    """The rows a refresh adds, written a chunk at a time with ``executemany`` (three statements a chunk, not
    three a file). Ids are given here as SQLite would give them: one above the largest in the table."""

    def __init__(self, db: sqlite3.Connection, hashing: Any):
        self.db = db
        self.hashing = hashing
        self.files: list[tuple] = []
        self.sections: list[tuple] = []
        self.texts: list[tuple] = []
        self.file_id = self.section_id = 0

    def start(self) -> None:
        """Take the next ids from the tables (in the transaction the rows will be written in)."""
        self.file_id = self.db.execute("SELECT coalesce(max(id), 0) FROM files").fetchone()[0]
        self.section_id = self.db.execute("SELECT coalesce(max(id), 0) FROM sections").fetchone()[0]

    def file(self, row: tuple) -> int:
        self.file_id += 1
        self.files.append((self.file_id, *row))
        return self.file_id

    def section(self, file_id: int, order: int, heading: str, tokens: int, digest: str | None, path: str,
                label: str, body: str) -> None:
        self.section_id += 1
        self.sections.append((self.section_id, file_id, order, heading, tokens, digest))
        self.texts.append((self.section_id, path, label, body))

    def flush(self) -> None:
        db = self.db
        if self.files:
            db.executemany("INSERT INTO files (id, path, size, mtime_ns, sidecar, sidecar_bad, hash, tokens, sections, "
                           "use_count, last_used, confidence, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           self.files)
        if self.sections:
            db.executemany("INSERT INTO sections (id, file_id, ord, heading, tokens, hash) VALUES (?, ?, ?, ?, ?, ?)",
                           self.sections)
            db.executemany("INSERT INTO fts (rowid, path, heading, body) VALUES (?, ?, ?, ?)", self.texts)
        self.files, self.sections, self.texts = [], [], []


def _cannot_write(error: object) -> bool:
    """Whether an SQLite error (or its message) says the database file cannot be written: a full disk."""
    text = str(error).lower()
    return "full" in text or "disk i/o error" in text


def _shown(name: str) -> str:
    """``name`` with the bytes that are not UTF-8 written as ``\\xNN`` (printable, and JSON can hold it)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def listing_digest(listing: list[tuple[str, tuple[int, int, str]]]) -> str:
    """The digest of a folder's listing: its markdown files' (name, (size, mtime_ns, sidecar signature)), in
    any order (SHA-256 of the names, the sizes and mtimes as 64-bit integers, the sidecar signatures). A change
    to any file's name, size, mtime or sidecar changes it (a folder's own mtime does not move when a file in it
    is rewritten in place). Half the time of hashing the listing's ``repr``: ~1 µs a file."""
    if not listing:
        return _EMPTY
    names, signatures = zip(*sorted(listing))
    sizes, mtimes, sidecars = zip(*signatures)
    # (the count first: the names hold no NUL, and then come exactly 16 bytes a file, so no two listings hash alike)
    digest = sha256(f"{len(names)}\0{chr(0).join(names)}\0".encode("utf-8", "surrogatepass"))
    try:
        digest.update(b"q" + array("q", sizes).tobytes() + array("q", mtimes).tobytes())
    except OverflowError:  # an mtime past 2262 (a file system can hold one)
        digest.update(b"r" + repr((sizes, mtimes)).encode("ascii"))
    digest.update("\0".join(sidecars).encode("ascii"))
    return digest.hexdigest()


_EMPTY = sha256(b"").hexdigest()


def _folder_range(query: str, folder: str, column: str = "folder", subfolders_only: bool = False,
                  ) -> tuple[str, tuple]:
    """``query`` (ending in ``WHERE``) completed to select the rows of ``column`` at ``folder`` or under it
    (paths under it when ``subfolders_only``): (SQL, arguments), with :func:`_starting_with`'s exact bounds."""
    if not folder:
        return f"{query} 1", ()
    under, args = _starting_with(column, folder + "/")
    if column == "folder" and not subfolders_only:
        return f"{query} (folder = ? OR ({under}))", (folder, *args)
    return f"{query} {under}", args


def _starting_with(column: str, prefix: str) -> tuple[str, tuple]:
    """An SQL condition selecting the rows whose ``column`` starts with ``prefix``, and its arguments: a range
    of the column's index with exact bounds — every text starting with ``a/`` lies in [``a/``, ``a0``), as
    SQLite compares UTF-8 bytes in code-point order. (``prefix + "\\U0010ffff"`` as the upper bound missed a
    path whose next character is U+10FFFF, which a file name can hold.)"""
    if not prefix:
        return "1", ()
    last = ord(prefix[-1])
    if last == 0x10FFFF:  # no next character: compare the start itself
        return f"substr({column}, 1, ?) = ?", (len(prefix), prefix)
    after = 0xE000 if last == 0xD7FF else last + 1  # (no surrogates in text SQLite is given)
    return f"{column} >= ? AND {column} < ?", (prefix, prefix[:-1] + chr(after))


def _disjoint(prefixes: Iterable[str]) -> list[str]:
    """The prefixes, without one that another covers (``a/`` covers ``a/b/``), so no row comes twice."""
    out: list[str] = []
    for prefix in sorted(set(prefixes)):
        if not out or not prefix.startswith(out[-1]):
            out.append(prefix)
    return out


def touch_sidecars(root: str, paths: Iterable[str], now: "datetime | None" = None) -> list[str]:
    """Add one to ``use_count`` and set ``last_used`` in the sidecar of each path (created when missing),
    atomically (a temporary file replaced into place). A corrupt sidecar is left alone. Returns the paths
    touched."""
    import json
    from datetime import datetime, timezone

    from engine.jsonio import loads
    from engine.policy.locate import read_bytes

    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    stamp = moment.isoformat(timespec="seconds").replace("+00:00", "Z")
    touched = []
    for path in dict.fromkeys(paths):
        target = os.path.join(root, sidecar_of(path))
        data: Any = {}
        if os.path.lexists(target):
            if os.path.islink(target):
                continue
            try:
                data = loads(read_bytes(target, SIDECAR_LIMIT), max_bytes=SIDECAR_LIMIT)
            except (OSError, ValueError):
                continue
            if not isinstance(data, dict):
                continue
        count = data.get("use_count", 0)
        count = count if type(count) is int and 0 <= count <= MAX_USE_COUNT else 0
        data["use_count"] = min(count + 1, MAX_USE_COUNT)  # saturates: the index stores a 64-bit integer
        data["last_used"] = stamp
        temporary = None
        try:
            fd, temporary = _create_beside(target)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)
                handle.write("\n")
            try:  # the sidecar's mode kept; a new one has the mode the umask gives it (as open() would)
                os.chmod(temporary, os.stat(target).st_mode & 0o777)
            except FileNotFoundError:
                pass
            os.replace(temporary, target)
            touched.append(path)
        except OSError as exc:
            _log("warning", "cannot update %s: %s", target, exc)
            if temporary is not None:
                try:
                    os.unlink(temporary)
                except OSError:
                    pass
    return touched


def _create_beside(target: str) -> tuple[int, str]:
    """A new file beside ``target`` under a fresh name, opened for writing: (descriptor, path). O_EXCL and
    O_NOFOLLOW: never through a name or a symlink planted in a shared root. Created with mode 0666 less the
    umask, as ``open()`` makes a file (``tempfile.mkstemp`` makes 0600, which a new sidecar would keep)."""
    folder, name = os.path.split(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        temporary = os.path.join(folder, f"{name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(temporary, flags, 0o666), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")
