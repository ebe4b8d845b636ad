"""One streaming pass over a usage log: runs grouped by (agent, profile), lines skipped, counted and located.

The file is cut into chunks of about :data:`CHUNK_BYTES` at line boundaries; each chunk is read, decoded and
folded into :class:`~engine.analytics.stats.UsageStats` on its own, so memory stays flat however long the log
is. Large logs are scanned by several processes at once and their totals merged.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Callable

from engine.analytics.stats import UsageStats
from engine.usage.log import MAX_LINE_BYTES, NESTED, OVERLONG, SKIPPED_KEPT, SkippedLine
from engine.usage.record import CorruptRecord, parse_timestamp, record_fields

CHUNK_BYTES = 4 << 20
PARALLEL_MIN_BYTES = 16 << 20
"""Logs smaller than this are scanned in-process: starting workers would cost more than it saves."""

Progress = Callable[[int, int], None]
"""Called with (bytes done, bytes in all) as chunks finish."""

GroupKey = tuple[str, str, str, int]
"""(agent as logged, profile as logged, and for runs that name no profile their tier and budget, by which
the profile they were made under is told; else "" and 0)."""


@dataclass
class LogScan:
    """What a scan found: per-group totals, how many lines it read and skipped, and where."""

    groups: dict[GroupKey, UsageStats] = field(default_factory=dict)
    lines: int = 0
    skipped_lines: int = 0
    skipped: list[SkippedLine] = field(default_factory=list)
    tiers: dict[str, dict] | None = None  # per tier with provenance (the DuckDB engine reads it; None: not read)
    daily: list[tuple[str, str, int, int]] | None = None  # (day, agent as logged, runs, exceeded); DuckDB only

    def merge_totals(self, other: "LogScan") -> None:
        """Add ``other``'s runs and skipped-line count (not its line numbers, which depend on order)."""
        for key, stats in other.groups.items():
            mine = self.groups.get(key)
            if mine is None:
                self.groups[key] = stats
            else:
                mine.merge(stats)
        self.skipped_lines += other.skipped_lines


def scan_log(path: str | os.PathLike, since: datetime | None = None, until: datetime | None = None,
             jobs: int | None = None, progress: Progress | None = None) -> LogScan:
    """Scan the log at ``path``, keeping runs with ``since <= timestamp < until``.

    ``jobs`` is the number of processes (default: one per CPU, at most 8, for logs over
    :data:`PARALLEL_MIN_BYTES`). Raises OSError when the log cannot be read.
    """
    path = os.fspath(path)
    size = os.stat(path).st_size
    if jobs is None:
        jobs = min(os.cpu_count() or 1, 8) if size >= PARALLEL_MIN_BYTES else 1
    if jobs <= 1 or size < 2 * CHUNK_BYTES:
        total = LogScan()
        scan_range(path, 0, size, since, until, total,
                   on_chunk=None if progress is None else (lambda done: progress(done, size)))
        return total
    # Each worker folds a few large segments and sends back one small summary per segment.
    segments = line_bounds(path, 0, size, max(CHUNK_BYTES, size // (8 * jobs) + 1))
    tasks = [(path, start, end, since, until) for start, end in segments]
    total = LogScan()
    located: list[tuple[int, list[SkippedLine]]] = [(0, [])] * len(tasks)  # per segment: lines, skipped
    done = 0
    import multiprocessing

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with context.Pool(min(jobs, len(tasks))) as pool:  # workers start before any progress thread does
        if progress is not None:
            progress(0, size)
        for index, result in pool.imap_unordered(_scan_task, list(enumerate(tasks))):
            located[index] = (result.lines, result.skipped)
            total.merge_totals(result)  # in any order; line numbers wait for the segments before
            done += tasks[index][2] - tasks[index][1]
            if progress is not None:
                progress(done, size)
    for lines, skipped in located:
        total.skipped.extend(SkippedLine(s.line + total.lines, s.reason) for s in skipped)
        total.lines += lines
    del total.skipped[SKIPPED_KEPT:]
    return total


def line_bounds(path: str | os.PathLike, start: int, end: int, step: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``step`` bytes covering ``start``..``end``, each beginning at a line's start."""
    starts = [start]
    with open(path, "rb") as handle:
        position = start + step
        while position < end:
            begin = _next_line(handle, position)
            if begin >= end:
                break
            starts.append(begin)
            position = begin + step
    return list(zip(starts, starts[1:] + [end]))


def _next_line(handle: BinaryIO, position: int) -> int:
    """The offset just past the first newline at or after ``position`` (the file's end when none), read in
    small pieces: a line of any length is never held whole."""
    handle.seek(position)
    while True:
        piece = handle.read(1 << 16)
        if not piece:
            return handle.tell()
        found = piece.find(b"\n")
        if found >= 0:
            return position + found + 1
        position += len(piece)


def _scan_task(item: tuple[int, tuple]) -> tuple[int, LogScan]:
    index, (path, start, end, since, until) = item
    result = LogScan()
    scan_range(path, start, end, since, until, result)
    return index, result


def scan_range(path: str, start: int, end: int, since: datetime | None, until: datetime | None,
               result: LogScan, on_chunk: Callable[[int], None] | None = None) -> None:
    """Fold bytes ``start``..``end`` of the log (whole lines) into ``result``, a chunk at a time; skipped
    lines are numbered from ``start``. ``on_chunk`` gets the bytes done after each chunk.

    A line longer than :data:`~engine.usage.log.MAX_LINE_BYTES` is skipped and counted; at most one chunk
    and one line of that length are held at once, whatever the file holds."""
    with open(path, "rb") as handle:
        handle.seek(start)
        position = start
        carry = b""  # the start of a line the chunks so far did not finish
        skipping = False  # inside an overlong line, already counted
        while position < end:
            block = handle.read(min(CHUNK_BYTES, end - position))
            if not block:
                break
            position += len(block)
            if skipping:
                found = block.find(b"\n")
                if found < 0:
                    continue
                block, skipping = block[found + 1:], False
            data = carry + block if carry else block
            cut = data.rfind(b"\n") + 1
            carry = data[cut:]
            if cut:
                scan_chunk(data[:cut], since, until, result)
            if len(carry) > MAX_LINE_BYTES:
                _skip(result, result.lines + 1, OVERLONG)
                result.lines += 1
                carry, skipping = b"", True
            if on_chunk is not None:
                on_chunk(position - start)
        if carry:
            scan_chunk(carry, since, until, result)


def _skip(result: LogScan, number: int, reason: str) -> None:
    result.skipped_lines += 1
    if len(result.skipped) < SKIPPED_KEPT:
        result.skipped.append(SkippedLine(number, reason))


def scan_chunk(data: bytes, since: datetime | None, until: datetime | None, result: LogScan) -> None:
    """Fold the lines of ``data`` into ``result``, numbering skipped lines after the ones it already has."""
    try:  # one decode per chunk is cheaper than one per line; a chunk with bad UTF-8 goes line by line
        lines: list = data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        lines = data.split(b"\n")
    terminated = not lines[-1]
    if terminated:
        lines.pop()
    offset = result.lines
    result.lines += len(lines)
    groups = result.groups
    loads = json.loads
    last = len(lines)
    filtered = since is not None or until is not None
    for number, raw in enumerate(lines, 1):
        if len(raw) > MAX_LINE_BYTES:  # a whole line in one chunk (longer ones never reach here)
            _skip(result, offset + number, OVERLONG)
            continue
        try:
            fields = record_fields(loads(raw))
            if filtered:
                when = parse_timestamp(fields.timestamp)
                if (since is not None and when < since) or (until is not None and when >= until):
                    continue
            profile = fields.profile
            key = (fields.agent, profile, "", 0) if profile else (fields.agent, "", fields.tier, fields.budget)
            stats = groups.get(key)
            if stats is None:
                stats = UsageStats()
                stats.add(fields)
                groups[key] = stats
            else:
                stats.add(fields)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError, RecursionError) as exc:
            if not raw.strip():
                continue  # a blank line is not a record, nor a skipped one
            _skip(result, offset + number, _reason(exc, number == last and not terminated))


def _reason(exc: Exception, unterminated: bool) -> str:
    if isinstance(exc, RecursionError):
        return NESTED
    if isinstance(exc, CorruptRecord):
        return str(exc)
    if isinstance(exc, json.JSONDecodeError) or isinstance(exc, UnicodeDecodeError):
        return "torn line (the file ends in the middle of it)" if unterminated else f"not JSON ({exc})"
    if isinstance(exc, ValueError) and "isoformat" in str(exc):
        return f"'timestamp' is not an ISO 8601 time ({exc})"
    return f"not a usage record ({type(exc).__name__}: {exc})"
