"""The usage log: JSONL, one record per line, appended safely by many processes at once, read as a stream.

Appending takes an exclusive ``flock`` on the file and writes each record with one ``os.write`` of the whole
line on an ``O_APPEND`` descriptor, so concurrent writers never lose or interleave records. A reader takes no
lock: a line it cannot read (torn by a crashed writer, or corrupt) is skipped, counted and reported.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from engine.jsonio import LONE_SURROGATE, lone_surrogate_at, may_hold_surrogates, plain_dumps
from engine.records import Record, to_dict
from engine.usage.record import CorruptRecord, UsageRecord

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any, BinaryIO, Iterator, Mapping

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: appends are still single writes, but unlocked
    fcntl = None  # type: ignore[assignment]

MAX_RECORD_BYTES = 1 << 20
"""A record longer than this is refused (a log line is a few hundred bytes)."""

SKIPPED_KEPT = 20
"""How many skipped lines a reader keeps the details of (it counts them all)."""

MAX_LINE_BYTES = MAX_RECORD_BYTES
"""A reader skips (and counts) a line longer than this, without ever holding it whole."""

OVERLONG = f"longer than {MAX_LINE_BYTES:,} bytes (a usage record is a few hundred)"
TORN = "torn line (the file ends in the middle of it)"
NOT_UTF8 = "not UTF-8 text"
"""The reason a line whose bytes are not UTF-8 is skipped (every reader: a usage log is UTF-8)."""
NESTED = "not a usage record (nested too deeply)"


class LogRefused(OSError):
    """The usage log's path is not somewhere a record may be appended: not a ``.jsonl`` name, a symlink, a
    FIFO, a device, a folder, or a file with other hard links. ``strerror`` says which; ``filename`` is the path.

    An OSError, so everything that reports a failed log write (the CLI's exit 2, the monitor) reports this too.
    """


_APPEND_FLAGS = (os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
                 | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0))


def append_record(path: str | os.PathLike, record: UsageRecord | Mapping[str, Any]) -> None:
    """Append ``record`` to the log at ``path`` (created, with its folder, when missing; mode 0o644 at most).

    Only a regular file whose name ends in ``.jsonl`` is ever written: never through a symbolic link
    (``O_NOFOLLOW``), never into a FIFO, socket or device (opened non-blocking and checked with ``fstat``
    before a byte is written), never a file with other hard links. Those raise :class:`LogRefused`.

    When the file does not end with a newline (a writer died mid-line), the record starts on a new line, so
    only the torn line is lost. Raises OSError (LogRefused included) when the log cannot be written.
    """
    data = record.to_dict() if isinstance(record, UsageRecord) else dict(record)
    text = plain_dumps(data, None, (",", ":"))  # json.dumps's text without importing json (~2 ms of a Stop hook)
    if text is None:  # not plain data (a non-finite float, another type): json's to write, or refuse
        import json

        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    line = (text + "\n").encode("utf-8")
    if len(line) > MAX_RECORD_BYTES:
        raise ValueError(f"a usage record may be at most {MAX_RECORD_BYTES:,} bytes; this one is {len(line):,}")
    target = Path(path)
    if target.suffix != ".jsonl" or not target.stem:
        raise LogRefused(errno.EINVAL, "a usage log is a JSONL file; its name must end in .jsonl", str(target))
    _refuse_special(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(target, _APPEND_FLAGS, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP or (exc.errno == errno.EMLINK and os.path.islink(target)):
            raise LogRefused(errno.ELOOP, "is a symbolic link; a usage log is written only to a regular file",
                             str(target)) from None
        raise
    try:
        _check_open(fd, target)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        written = os.write(fd, line)
        while written < len(line):  # only on a full disk or a signal; the lock still keeps others out
            written += os.write(fd, line[written:])
    finally:
        os.close(fd)  # closing releases the lock


def _refuse_special(target: Path) -> None:
    """Refuse before opening what must not be opened at all (a device may act on open)."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    except OSError:  # unreadable folder and the like: the open says why
        return
    if stat.S_ISLNK(mode):
        raise LogRefused(errno.ELOOP, "is a symbolic link; a usage log is written only to a regular file",
                         str(target))
    if not stat.S_ISREG(mode):
        raise LogRefused(errno.EINVAL, f"is {_kind(mode)}; a usage log is written only to a regular file",
                         str(target))


def _check_open(fd: int, target: Path) -> None:
    """The descriptor is a regular file with no other names (what was opened, whatever the path is now)."""
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise LogRefused(errno.EINVAL, f"is {_kind(info.st_mode)}; a usage log is written only to a regular file",
                         str(target))
    if info.st_nlink > 1:
        raise LogRefused(errno.EMLINK, f"has {info.st_nlink - 1} other hard link(s); a usage log is written "
                                       f"only to a file of its own", str(target))


def _kind(mode: int) -> str:
    from engine.policy.locate import file_kind

    return file_kind(mode)


class SkippedLine(Record):
    """A log line that is not a usage record: its 1-based number and why."""

    line: int
    reason: str

    to_dict = to_dict


def first_values(pairs: list[tuple[str, Any]]) -> dict:
    """An object's keys with their *first* values: a key written twice counts once, as DuckDB's JSON reader reads
    it (``json.loads`` keeps the last). The analytics engine and this reader must agree on such a line; DuckDB
    cannot be told otherwise, so the rule is its rule (``object_pairs_hook``, for every object of a line)."""
    found: dict = {}
    for key, value in pairs:
        found.setdefault(key, value)
    return found


def loads_line(raw: bytes | str) -> Any:
    """The JSON value of one log line as every reader of the log takes it — DuckDB's, in the analytics engine,
    and this module's: a key written twice counts with its first value (:func:`first_values`), and a string
    with a lone UTF-16 surrogate (``"\\ud800"``, which no UTF-8 text can hold) makes the line not JSON. Bytes must
    be UTF-8 (json.loads would take UTF-16 or UTF-32, and UTF-8-like bytes of a surrogate; DuckDB takes neither):
    UnicodeDecodeError otherwise. ValueError (or RecursionError) when it is not JSON."""
    import json

    text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    value = json.loads(text, object_pairs_hook=first_values)
    if "\\u" in text:  # only an escape can make a lone surrogate
        if may_hold_surrogates(text) and lone_surrogate_at(text) is not None:
            raise ValueError(LONE_SURROGATE)
    return value


def decode_line(raw: bytes, last: bool = False) -> Any:
    """The JSON value of one log line (:func:`loads_line`); :class:`CorruptRecord` with a reason when it is not
    JSON."""
    try:
        return loads_line(raw)
    except RecursionError:
        raise CorruptRecord(NESTED) from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        if last and not raw.endswith(b"\n"):
            raise CorruptRecord(TORN) from None
        if isinstance(exc, UnicodeDecodeError):
            raise CorruptRecord(NOT_UTF8) from None
        raise CorruptRecord(f"not JSON ({exc})") from None


class LogReader:
    """Stream the :class:`UsageRecord` s of a log, skipping lines that are not records.

    After (or during) iteration, ``skipped_lines`` counts the lines skipped and ``skipped`` holds the first
    :data:`SKIPPED_KEPT` of them. Blank lines are neither records nor skipped.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.skipped_lines = 0
        self.skipped: list[SkippedLine] = []

    def skip(self, line: int, reason: str) -> None:
        self.skipped_lines += 1
        if len(self.skipped) < SKIPPED_KEPT:
            self.skipped.append(SkippedLine(line, reason))

    def __iter__(self) -> Iterator[UsageRecord]:
        with open(self.path, "rb") as handle:
            for number, raw in bounded_lines(handle):
                if raw is None:
                    self.skip(number, OVERLONG)
                    continue
                if not raw.strip():
                    continue
                try:
                    yield UsageRecord.from_dict(decode_line(raw, last=not raw.endswith(b"\n")))
                except CorruptRecord as exc:
                    self.skip(number, str(exc))


BOM = b"\xef\xbb\xbf"
"""A UTF-8 byte order mark: one that starts a log is not part of its first line (every reader skips it)."""


def bounded_lines(handle: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """(1-based number, line) for each line of ``handle``; the line is None when it is longer than ``limit``
    bytes, which is read past in small pieces and never held whole. A UTF-8 byte order mark that starts the file
    is not part of its first line (DuckDB's readers skip it too; one anywhere else makes a line not JSON)."""
    number = 0
    while True:
        raw = handle.readline(limit + 1)
        if not raw:
            return
        number += 1
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM):]
        if len(raw) > limit and not (len(raw) == limit + 1 and raw.endswith(b"\n")):
            while raw and not raw.endswith(b"\n"):
                raw = handle.readline(1 << 16)
            yield number, None
        else:
            yield number, raw


def read_log(path: str | os.PathLike) -> LogReader:
    """A :class:`LogReader` over the log at ``path``: ``for record in read_log(p): ...``."""
    return LogReader(path)
