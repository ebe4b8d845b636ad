"""Reading usage logs with DuckDB: JSONL files, globs, folders, remote URLs; the SQL in ``sql/`` does the rest.

Each line is read as text (DuckDB's CSV reader with a delimiter no JSON line holds), so that a line that is not
a usage record is not dropped silently as ``read_json(ignore_errors=true)`` would: ``sql/records.sql`` parses
each line with DuckDB's JSON functions and gives the reason it is not a record, and the lines the reader
itself rejects (longer than :data:`~engine.usage.log.MAX_LINE_BYTES`) come from its rejects table. Every
skipped line is counted; the first :data:`~engine.usage.log.SKIPPED_KEPT` are reported with their file and
line number. ``sql/groups.sql`` and ``sql/scopes.sql`` fold the runs into the sums of
:class:`~engine.analytics.stats.UsageStats`.

DuckDB runs with :data:`MEMORY_LIMIT` (spilling beyond it to ``ctxbudget-duckdb-UID`` in the system's temporary
folder, not the working folder) and at most :data:`THREADS`
threads. A line longer than MAX_LINE_BYTES is skipped and counted, but DuckDB's reader holds it while it
rejects it (a 100 MB line costs about 100 MB, within the memory limit; the reader's ``buffer_size`` would bound
that, but with a small buffer DuckDB 2.0 drops the line without reporting it, so it is not used). Remote logs (``s3://``, ``gs://``, ``https://``…) are read through DuckDB's ``httpfs`` extension with
the credentials DuckDB finds (its secrets, or the usual environment variables).
"""

from __future__ import annotations

import glob
import os
from datetime import datetime
from importlib import resources
from typing import Any, Sequence

from engine.analytics.stats import UsageStats
from engine.usage.log import MAX_LINE_BYTES, OVERLONG, SKIPPED_KEPT, SkippedLine

MEMORY_LIMIT = os.environ.get("CTXBUDGET_DUCKDB_MEMORY", "1GB")
"""DuckDB's memory_limit: past it, DuckDB spills to a temporary folder (``$CTXBUDGET_DUCKDB_MEMORY`` sets it)."""

THREADS = min(os.cpu_count() or 1, 8)

REMOTE = ("s3://", "s3a://", "gs://", "gcs://", "r2://", "az://", "abfss://", "http://", "https://", "hf://")
GLOB = ("*", "?", "[")


def sql(name: str) -> str:
    """The text of ``engine/analytics/sql/NAME.sql`` (package data)."""
    return resources.files("engine.analytics").joinpath("sql", f"{name}.sql").read_text(encoding="utf-8")


def is_remote(location: str) -> bool:
    return location.lower().startswith(REMOTE)


FOLDER_DEPTH = 3
"""How deep below a folder named as a log its ``*.jsonl`` and ``*.parquet`` files are looked for."""


def log_files(location: str | os.PathLike) -> list[str]:
    """The files a log location names: a file, a folder (its ``*.jsonl`` and ``*.parquet`` files, and those of
    its sub-folders down to :data:`FOLDER_DEPTH`, in name order), a glob,
    or a remote URL (passed to DuckDB as it is). OSError when a local location names nothing."""
    text = os.fspath(location)
    if is_remote(text):
        return [text]
    if os.path.isdir(text):  # its logs, and those of partition folders (date=…/host=…/) below it
        found = sorted(p for depth in range(FOLDER_DEPTH + 1) for pattern in ("*.jsonl", "*.parquet")
                       for p in glob.glob(os.path.join(glob.escape(text), *["*"] * depth, pattern))
                       if os.path.isfile(p))
        if not found:
            raise FileNotFoundError(2, "no *.jsonl or *.parquet files in the folder", text)
        return found
    if any(c in text for c in GLOB) and not os.path.exists(text):
        found = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        if not found:
            raise FileNotFoundError(2, "no file matches", text)
        return found
    os.stat(text)  # OSError when it is missing or unreadable
    return [text]


def connect() -> Any:
    import duckdb

    import tempfile

    spill = os.path.join(tempfile.gettempdir(), f"ctxbudget-duckdb-{os.getuid() if hasattr(os, 'getuid') else 0}")
    con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "threads": THREADS, "temp_directory": spill,
                                 "preserve_insertion_order": True})
    con.execute("SET enable_progress_bar = false")  # it would print on stdout, into --json output
    con.execute(sql("macros"))
    return con


def is_parquet(location: str) -> bool:
    return location.lower().split("?")[0].endswith(".parquet")


def scan_files(files: Sequence[str], since: datetime | None, until: datetime | None) -> Any:
    """Fold the runs of ``files`` (JSONL or Parquet) into a :class:`~engine.analytics.scan.LogScan`."""
    from engine.analytics.scan import LogScan

    result = LogScan()
    con = load_runs(files, since, until)
    if con is None:
        return result
    try:
        _fold(con, result)
        _skipped(con, result, [f for f in files if not is_parquet(f)])
        result.tiers = _tiers(con)
        result.daily = [tuple(row) for row in con.execute(sql("daily")).fetchall()]
    finally:
        con.close()
    return result


def _tiers(con: Any) -> dict[str, dict]:
    return tier_rows(con.execute(sql("tiers")).fetchall())


def tier_rows(rows: Any) -> dict[str, dict]:
    """Per tier: runs, usage, exceedance and provenance (the rows of ``sql/tiers.sql``)."""
    found = {}
    for tier, runs, mean, exceeded, detected, given, default, unknown, confidence in rows:
        found[tier] = {"runs": runs, "mean_usage": mean, "exceeded": exceeded, "exceedance_rate": exceeded / runs,
                       "sources": {"detected": detected, "given": given, "default": default, "unknown": unknown},
                       "detected_share": detected / runs, "given_share": given / runs,
                       "mean_confidence": confidence}
    return found


def load_runs(files: Sequence[str], since: datetime | None, until: datetime | None) -> Any:
    """A DuckDB connection with the table ``all_runs`` (every line of the JSONL files, records.sql, and the runs
    of the Parquet files) and the view ``runs`` (the usage records among them); None when there is nothing."""
    jsonl = [f for f in files if not is_parquet(f) and (is_remote(f) or os.path.getsize(f) > 0)]
    parquet = [f for f in files if is_parquet(f)]
    if not jsonl and not parquet:
        return None
    con = connect()
    try:
        period = {"since": since, "until": until}
        parts = []
        if jsonl:
            con.execute(_lines_sql(jsonl))
            parts.append(sql("records"))
        else:
            con.execute("CREATE TEMP TABLE rejected_lines (file_id BIGINT, scan_id BIGINT, line BIGINT); "
                        "CREATE TEMP TABLE rejected_scans (file_id BIGINT, scan_id BIGINT, file_path VARCHAR); "
                        "CREATE TEMP VIEW lines AS SELECT NULL::VARCHAR AS file, NULL::BIGINT AS n LIMIT 0")
        if parquet:
            parts.append(sql("parquet_runs"))
            period["files"] = list(parquet)
        query = " UNION ALL BY NAME ".join(f"({part})" for part in parts)
        con.execute("CREATE TEMP TABLE all_runs AS " + query, period)
        con.execute("CREATE TEMP VIEW runs AS SELECT * FROM all_runs WHERE reason IS NULL")
    except BaseException:
        con.close()
        raise
    return con


SEPARATOR = "\x01\x02\x03\x04"
"""The CSV reader's delimiter: four control characters no JSON line holds (JSON escapes them in strings), so a
line is read as one column, whatever it contains. (A one-character delimiter inside a corrupt line would cut
it short; a second column to catch that makes DuckDB drop blank lines, which would shift line numbers.)"""


def _lines_sql(files: Sequence[str]) -> str:
    """The view ``lines(file, n, line)``: each line of ``files`` as text, numbered within its file."""
    listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    reader = f"""
        read_csv([{listed}], columns={{'line': 'VARCHAR'}}, sep='{SEPARATOR}', quote='', escape='',
                 header=false, auto_detect=false, new_line='\\r\\n', strict_mode=false, filename=true,
                 max_line_size={MAX_LINE_BYTES + 2}, store_rejects=true, rejects_table='rejected_lines',
                 rejects_scan='rejected_scans') WITH ORDINALITY"""
    if len(files) == 1:  # no numbering per file needed: nothing is held but the rows in flight
        return f"CREATE TEMP VIEW lines AS SELECT filename AS file, ordinality AS n, line FROM {reader};"
    return f"""
        CREATE TEMP VIEW lines AS
        SELECT filename AS file, ordinality - min(ordinality) OVER (PARTITION BY filename) + 1 AS n, line
        FROM {reader};
        """


def _fold(con: Any, result: Any) -> None:
    fold(result, con.execute(sql("groups")).fetchall(), con.execute(sql("scopes")).fetchall())


def fold(result: Any, group_rows: Any, scope_rows: Any) -> None:
    """Add the rows of ``groups.sql`` and ``scopes.sql`` (from any engine) to ``result``'s groups."""
    groups = result.groups
    for (agent, profile, key_tier, key_budget, tier, bin_, runs, usage_sum, usage_sq, usage_max, exceeded, failed,
         tokens, share_runs) in group_rows:
        key = (agent, profile, key_tier, int(key_budget))
        stats = groups.get(key)
        if stats is None:
            stats = groups[key] = UsageStats()
        stats.runs += runs
        stats.usage_sum += usage_sum
        stats.usage_sq += usage_sq
        stats.usage_max = max(stats.usage_max, usage_max)
        stats.exceeded += exceeded
        stats.failed += failed
        stats.tokens += _number(tokens)
        stats.share_runs += share_runs
        stats.histogram[bin_] = stats.histogram.get(bin_, 0) + runs
        by_tier = stats.tiers.setdefault(tier or "(none)", [0, 0.0, 0])
        by_tier[0] += runs
        by_tier[1] += usage_sum
        by_tier[2] += exceeded
    for agent, profile, key_tier, key_budget, scope, tokens, share_sum, share_sq, _first in scope_rows:
        stats = groups[(agent, profile, key_tier, int(key_budget))]
        stats.scopes[scope] = [_number(tokens), share_sum, share_sq]


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _skipped(con: Any, result: Any, files: Sequence[str]) -> None:
    """Count the lines that are not runs, and keep the first few with their line numbers and reasons."""
    rejects = con.execute("""
        SELECT s.file_path, e.line FROM rejected_lines e JOIN rejected_scans s USING (scan_id, file_id)
        ORDER BY s.file_path, e.line""").fetchall()
    bad = con.execute("SELECT count(*) FROM all_runs WHERE reason IS NOT NULL").fetchone()[0]
    result.skipped_lines = bad + len(rejects)
    first = con.execute(f"""
        SELECT file, n, reason, line FROM all_runs WHERE reason IS NOT NULL ORDER BY file, n
        LIMIT {SKIPPED_KEPT}""").fetchall()
    order = {f: i for i, f in enumerate(files)}
    located: list[tuple[int, int, str]] = []
    for file, line in rejects:
        located.append((order.get(file, len(order)), int(line), OVERLONG))
    rejected_before: dict[str, list[int]] = {}
    for file, line in rejects:
        rejected_before.setdefault(file, []).append(int(line))
    last = dict(con.execute("SELECT file, max(n) FROM lines GROUP BY file").fetchall()) if first else {}
    for file, n, reason, text in first:
        physical = _physical(n, rejected_before.get(file, []))
        torn = n == last.get(file) and _ends_unterminated(file)
        located.append((order.get(file, len(order)), physical, _detail(reason, text, torn)))
    located.sort()
    multi = len(files) > 1
    result.skipped = [SkippedLine(line, reason if not multi else f"{files[index]}: {reason}")
                      for index, line, reason in located[:SKIPPED_KEPT]]
    result.lines = 0


def _physical(n: int, rejected: list[int]) -> int:
    """The file's line number of the ``n``-th line the reader kept, given the line numbers it rejected."""
    before = 0
    for k, line in enumerate(sorted(rejected)):
        if line - k - 1 < n:  # kept lines before the k-th reject: it comes before the n-th kept line
            before += 1
        else:
            break
    return n + before


def _detail(reason: str, text: str | None, torn: bool) -> str:
    """The reason, with the JSON decoder's own words for a line that is not JSON, and a torn line named so."""
    if reason != "not JSON" or text is None:
        return reason
    if torn:
        return "torn line (the file ends in the middle of it)"
    import json

    try:
        json.loads(text)
    except RecursionError:
        return reason
    except ValueError as exc:
        return f"not JSON ({exc})"
    return reason


def _ends_unterminated(file: str) -> bool:
    """Whether the local ``file`` does not end with a newline (its last line is torn)."""
    if is_remote(file):
        return False
    try:
        with open(file, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            if not handle.tell():
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except OSError:
        return False


# -- export: JSONL into Parquet, partitioned by date (and host) ------------------------------------------------


def export(files: Sequence[str], folder: str | os.PathLike, since: datetime | None = None,
           until: datetime | None = None) -> dict:
    """Write the runs of ``files`` as Parquet under ``folder``, partitioned by UTC date (``date=YYYY-MM-DD/``) and,
    when runs carry a ``host``, by host too. Idempotent: the files written for one set of sources replace the
    ones an earlier export of the same sources wrote in each partition (other sources' files stay).

    Returns {"runs", "skipped_lines", "skipped" (the first few SkippedLine), "partitions", "files"}.
    """
    import hashlib
    import shutil
    import tempfile

    from engine.analytics.scan import LogScan

    target = os.fspath(folder)
    os.makedirs(target, exist_ok=True)
    sources = sorted(f if is_remote(f) else os.path.abspath(f) for f in files)
    key = hashlib.sha256("\n".join(sources).encode()).hexdigest()[:12]
    con = load_runs(files, since, until)
    if con is None:
        return {"runs": 0, "skipped_lines": 0, "skipped": [], "partitions": 0, "files": []}
    staging = tempfile.mkdtemp(prefix=".export-", dir=target)
    try:
        counted = LogScan()
        _skipped(con, counted, [f for f in files if not is_parquet(f)])
        runs, hosts = con.execute("SELECT count(*), count(host) FROM runs").fetchone()
        by = "date, host" if hosts else "date"
        out = staging.replace("'", "''")
        con.execute(f"COPY ({sql('export')}) TO '{out}' (FORMAT parquet, PARTITION_BY ({by}), "
                    f"FILENAME_PATTERN 'usage-{key}-{{i}}', OVERWRITE_OR_IGNORE true)")
        written = []
        partitions = set()
        for root, _dirs, names in os.walk(staging):
            relative = os.path.relpath(root, staging)
            if not names:
                continue
            final = os.path.join(target, relative)
            os.makedirs(final, exist_ok=True)
            partitions.add(relative)
            for old in glob.glob(os.path.join(glob.escape(final), f"usage-{key}-*.parquet")):
                os.unlink(old)
            for name in sorted(names):
                os.replace(os.path.join(root, name), os.path.join(final, name))
                written.append(os.path.join(final, name))
        return {"runs": runs, "skipped_lines": counted.skipped_lines, "skipped": counted.skipped,
                "partitions": len(partitions), "files": sorted(written)}
    finally:
        con.close()
        shutil.rmtree(staging, ignore_errors=True)
