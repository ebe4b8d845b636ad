"""Reading usage logs with DuckDB: JSONL files, globs, folders, remote URLs, Parquet; the SQL in ``sql/`` does the rest.

A local JSONL file is read by DuckDB's JSON reader with every field a record may carry kept as JSON, and
``sql/records.sql`` checks each line's types (a cheap test for the usual record, the careful checks for the
rest) and gives the reason a line is not a record; its lines are counted apart, so that a line the reader drops
is still counted. Logs the JSON reader cannot vouch for, and remote logs, are read line by line as text (DuckDB's
CSV reader with a delimiter no JSON line holds) through the same ``records.sql``. Every skipped line is
counted; the first :data:`~engine.usage.log.SKIPPED_KEPT` are reported with their file and line number.

The records written the usual way are summed as the reader gives them (``sql/fast_sums.sql``: no table holds a row
per run, except for export); :class:`DuckScan` sums the other runs per group key (``sql/groups.sql``,
``sql/bins.sql``, ``sql/scopes.sql``) beside those sums (``sql/fast_groups.sql``, ``sql/fast_bins.sql``,
``sql/fast_scopes.sql``), and every figure comes from ``sql/figures.sql``, ``sql/scope_figures.sql``,
``sql/profile_runs.sql``, ``sql/tiers.sql`` and ``sql/daily.sql`` (with ``sql/fast_daily.sql``), given the
policy's ``agent_keys`` and ``weights`` tables.

DuckDB runs with :data:`MEMORY_LIMIT` (spilling beyond it to a folder only the user can enter,
:func:`spill_folder`, not the working folder) and at most :data:`THREADS` threads: one database per process
(:func:`connect`), a connection of its own per scan, so scans at the same time share the limit. A line longer than
MAX_LINE_BYTES is skipped and counted, but DuckDB's reader holds it while it rejects it (a 100 MB line costs about
100 MB, within the memory limit; the reader's ``buffer_size`` would bound that, but with a small buffer DuckDB 2.0
drops the line without reporting it, so it is not used). Remote logs (``s3://``, ``gs://``, ``https://``…) are read through
DuckDB's ``httpfs`` extension with the credentials DuckDB finds (its secrets, or the usual environment variables).
"""

from __future__ import annotations

import glob
import os
from datetime import datetime
from importlib import resources
from typing import Any, Sequence

from engine.digest import sha256_hex
from engine.usage.log import BOM, MAX_LINE_BYTES, NOT_UTF8, OVERLONG, SKIPPED_KEPT, TORN, SkippedLine

MEMORY_LIMIT = os.environ.get("CTXBUDGET_DUCKDB_MEMORY", "1GB")
"""DuckDB's memory_limit: past it, DuckDB spills to a temporary folder (``$CTXBUDGET_DUCKDB_MEMORY`` sets it)."""

THREADS = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8)
"""DuckDB's threads: one per CPU this process may run on (``taskset``, a CPU set: DuckDB itself counts every CPU
of the machine), at most 8."""

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
    or a remote URL (passed to DuckDB as it is). OSError when a local location names nothing; ValueError when
    a file's name is not UTF-8 text (DuckDB takes names as UTF-8, so it cannot open such a file)."""
    return [utf8_name(f) for f in _log_files(os.fspath(location))]


def utf8_name(path: str) -> str:
    """``path`` when it is UTF-8 text; ValueError otherwise (a name from bytes that are not UTF-8)."""
    from engine.jsonio import is_utf8

    if not is_utf8(path):
        shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        raise ValueError(f"{shown}: the name is not UTF-8 text, which DuckDB cannot open: rename it")
    return path


def _log_files(text: str) -> list[str]:
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


_database: list = []
"""``[(settings, database)]``: the process's DuckDB database (in memory), made by the first :func:`connect` and
again when its settings (or the process: a fork) change; each scan is a connection to it of its own."""
_forked: list = []  # a parent's database, never touched in the child (closing it there is not safe)


def duckdb_engine() -> Any:
    """DuckDB's engine: the module ``duckdb`` re-exports (``_duckdb``, its C++ extension), which has all this
    module uses — ``connect``, the connection, the exceptions. ``import duckdb`` also builds the package's Python
    relation and expression API on top, which these queries never touch: 0.09 s of every analysing command's
    start against 0.02 s for the extension alone here (``python -X importtime``). ``duckdb`` itself where the
    extension is not found under that name or lacks them (another DuckDB release)."""
    try:
        import _duckdb as module
    except ImportError:
        module = None
    if module is None or not all(hasattr(module, name) for name in ENGINE_NAMES):
        import duckdb as module
    return module


ENGINE_NAMES = ("connect", "Error", "InvalidInputException", "IOException", "OutOfMemoryException")
"""What this module takes from DuckDB's engine module (:func:`duckdb_engine`)."""


def connect() -> Any:
    """A new connection to the process's DuckDB database: its temporary tables are its own (they go when it is
    closed), the macros (sql/macros.sql) are the database's. Making the database costs ~25 ms and its macros
    ~9 ms; a connection to it ~0.3 ms — what a process that analyses many logs (a service, the tests) saves."""
    duckdb = duckdb_engine()

    spill = spill_folder()
    settings = (MEMORY_LIMIT, THREADS, spill, os.getpid())
    if not _database or _database[0][0] != settings:
        if _database and _database[0][0][3] != settings[3]:
            _forked.append(_database[0][1])
        try:
            database = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "threads": THREADS,
                                              "temp_directory": spill,
                                              "preserve_insertion_order": False})  # every query orders what it must
        except duckdb.Error as exc:  # the memory limit comes from the environment: the rest is ours
            raise ValueError(f"CTXBUDGET_DUCKDB_MEMORY={MEMORY_LIMIT!r} is not a memory size DuckDB takes (such as "
                             f"1GB or 512MB): {first_line(exc)}") from None
        database.execute(sql("macros").replace("CREATE OR REPLACE TEMP MACRO", "CREATE OR REPLACE MACRO"))
        _database[:] = [(settings, database)]
    con = _database[0][1].cursor()
    con.execute("SET enable_progress_bar = false")  # it would print on stdout, into --json output
    # times are UTC, whatever the machine's zone (DuckDB takes the zone of $TZ): a timestamp written without a zone
    # is UTC, as the Python reader takes it; a run's day (the report's runs per day, export's date partitions) is
    # its UTC day, as Spark's session reads it (spark.py)
    con.execute("SET TimeZone = 'UTC'")
    # a table name the query does not define is an error, never a Python variable of the caller's that happens
    # to bear it (DuckDB's replacement scans)
    con.execute("SET python_enable_replacements = false")
    return con


def spill_folder() -> str:
    """Where DuckDB spills past :data:`MEMORY_LIMIT`: ``ctxbudget-duckdb-UID`` in the system's temporary folder, a
    folder of the user's own that nobody else can enter. DuckDB would make it readable by all (mode 0755, its
    files 0644: the usage records it spills, in a folder every user can list), and would write into one that
    another user made there first (or a link of theirs). So it is made here with mode 0700, and one that is not
    a folder of the user's (a link, another owner) is passed over for a new private folder of this process's
    (``tempfile.mkdtemp``, removed when the process ends). One per process: :func:`connect` keeps its database
    while this stays the same."""
    if _spill and _spill[0][0] == os.getpid():
        return _spill[0][1]
    import tempfile

    if not hasattr(os, "getuid"):  # no owners to check (Windows): the user's own temporary folder
        path = os.path.join(tempfile.gettempdir(), "ctxbudget-duckdb")
    else:
        import stat

        uid = os.getuid()
        path = os.path.join(tempfile.gettempdir(), f"ctxbudget-duckdb-{uid}")
        try:
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                pass
            found = os.lstat(path)  # a link is not followed: it is passed over
            if not stat.S_ISDIR(found.st_mode) or found.st_uid != uid:
                raise PermissionError(f"{path} is not a folder of uid {uid}'s")
            if stat.S_IMODE(found.st_mode) & 0o077:  # the user's own, made open by DuckDB before: closed
                os.chmod(path, 0o700)
        except OSError:
            import atexit
            import shutil

            path = tempfile.mkdtemp(prefix=f"ctxbudget-duckdb-{uid}-")
            atexit.register(shutil.rmtree, path, True)
    _spill[:] = [(os.getpid(), path)]
    return path


_spill: list[tuple[int, str]] = []


class memory_errors:
    """DuckDB running out of memory within :data:`MEMORY_LIMIT` as a ValueError that says what to do (the CLI
    reports it as `ctxbudget: error: …`, exit 2) instead of DuckDB's traceback."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        if exc is not None and type(exc).__name__ == "OutOfMemoryException" and \
                type(exc).__module__.startswith(("duckdb", "_duckdb")):
            raise ValueError(f"DuckDB needed more memory than its limit, {MEMORY_LIMIT} (set CTXBUDGET_DUCKDB_MEMORY "
                             f"higher): {first_line(exc)}") from None
        return False


def is_parquet(location: str) -> bool:
    return location.lower().split("?")[0].endswith(".parquet")


class Skipped:
    """The lines of a log that are not runs: how many, and the first few with line numbers and reasons."""

    def __init__(self) -> None:
        self.skipped_lines = 0
        self.skipped: list[SkippedLine] = []
        self.lines = 0


class DuckScan:
    """The runs of some files, read by DuckDB and summed per group key (``sql/groups.sql``, ``bins.sql``,
    ``scopes.sql``), from which ``sql/figures.sql`` and the others give every figure. Use as a context manager."""

    def __init__(self, files: Sequence[str], since: datetime | None, until: datetime | None,
                 daily: bool = True) -> None:
        # every figure is summed as the log is read, the report's runs per day too (a run's day is then part of
        # the sums' key): no table holds a row per run of the records written the usual way
        self.con = load_runs(files, since, until, times=daily, summed=True)
        self.counted = Skipped()
        self._jsonl = [f for f in files if not is_parquet(f)]
        self._since, self._until = since, until
        empty = self.con is None
        if empty:
            self.con = connect()
            for statement in EMPTY:
                self.con.execute(statement)
        try:
            if not empty:
                self.con.execute(f"CREATE TEMP TABLE groups AS SELECT * FROM (({sql('groups')}) UNION ALL BY NAME "
                                 f"({sql('fast_groups')})) ORDER BY ALL")
                self.con.execute(f"CREATE TEMP TABLE group_bins AS SELECT * FROM (({sql('bins')}) UNION ALL BY NAME "
                                 f"({sql('fast_bins')})) ORDER BY ALL")
                self.con.execute(f"CREATE TEMP TABLE scope_sums AS {_scope_sums()}")
                _skipped(self.con, self.counted, files)
            # runs read unnumbered (in parallel): the order scopes first appear in is not known until asked for
            self._numbered = empty or not self.con.execute(
                "SELECT (SELECT count(*) FROM all_runs WHERE n IS NULL AND list_contains(?, file)) "
                "+ (SELECT count(*) FROM fast_sums)", [self._jsonl]).fetchone()[0]
            self._tiers = tier_rows(self.con.execute(sql("tiers")).fetchall())
            self._daily = [tuple(row) for row in self.con.execute(
                f"SELECT day, agent, CAST(sum(runs) AS BIGINT), CAST(sum(exceeded) AS BIGINT) "
                f"FROM (({sql('daily')}) UNION ALL ({sql('fast_daily')})) GROUP BY ALL ORDER BY ALL").fetchall()] \
                if daily else None
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "DuckScan":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None

    @property
    def skipped_lines(self) -> int:
        return self.counted.skipped_lines

    @property
    def skipped(self) -> list[SkippedLine]:
        return self.counted.skipped

    def keys(self) -> list[tuple]:
        """The group keys (agent, profile, key_tier, key_budget) the runs fall in, in order."""
        return [tuple(row) for row in self.con.execute(
            "SELECT DISTINCT agent, profile, key_tier, key_budget FROM groups ORDER BY ALL").fetchall()]

    def figures(self, agent_keys: Sequence[Any], weights: Sequence[Any]) -> Any:
        """The figures of the runs whose keys are in ``agent_keys`` (``AgentKey`` rows), with ``weights``."""
        con = self.con
        con.execute("CREATE OR REPLACE TEMP TABLE agent_keys (agent VARCHAR, profile VARCHAR, key_tier VARCHAR, "
                    "key_budget BIGINT, name VARCHAR, run_profile VARCHAR, is_current BOOLEAN)")
        con.execute("CREATE OR REPLACE TEMP TABLE weights (name VARCHAR, scope VARCHAR, weight DOUBLE, place BIGINT)")
        _insert(con, "agent_keys", agent_keys, 7)
        _insert(con, "weights", weights, 4)
        if not self._numbered and con.execute(sql("scope_order")).fetchone()[0]:
            self._number_runs()
        return figures_from_rows(con.execute(sql("figures")).fetchall(), con.execute(sql("scope_figures")).fetchall(),
                                 con.execute(sql("profile_runs")).fetchall())

    def _number_runs(self) -> None:
        """Read the runs that were read unnumbered again, numbered (one thread), and sum their scopes anew: the
        order scopes first appear in decides the order of an agent's scopes its profile does not weigh."""
        con = self.con
        unnumbered = {file for (file,) in con.execute(
            "SELECT DISTINCT file FROM all_runs WHERE n IS NULL AND list_contains(?, file) UNION "
            "SELECT DISTINCT file FROM fast_sums", [self._jsonl]).fetchall()}
        numbered = _fast_runs(_fields_select([f for f in self._jsonl if f in unnumbered], numbered=True))
        con.execute(f"CREATE TEMP TABLE numbered_runs AS SELECT * FROM ({numbered}) WHERE reason IS NULL",
                    {"since": self._since, "until": self._until, "times": False})
        con.execute("INSERT INTO numbered_runs BY NAME SELECT * FROM all_runs "
                    "WHERE n IS NOT NULL OR NOT list_contains(?, file)", [sorted(unnumbered)])
        con.execute("DROP TABLE all_runs; ALTER TABLE numbered_runs RENAME TO all_runs; DELETE FROM fast_sums")
        con.execute(f"CREATE OR REPLACE TEMP TABLE scope_sums AS {_scope_sums()}")
        self._numbered = True

    def tiers(self) -> dict[str, dict]:
        return self._tiers

    def daily(self) -> list[tuple[str, str, int, int]] | None:
        """Per UTC day and agent: runs and runs over budget (None when the scan was opened with daily=False)."""
        return self._daily


def _scope_sums() -> str:
    """The table ``scope_sums``: the scopes of the runs kept a row each, and of those summed as the log was read."""
    return (f"SELECT * FROM (({sql('scopes')}) UNION ALL BY NAME ({sql('fast_scopes')})) "
            f"ORDER BY agent, profile, key_tier, key_budget, first_seen, scope")  # as scopes.sql: one order of sums


EMPTY = (
    "CREATE TEMP TABLE groups (agent VARCHAR, profile VARCHAR, key_tier VARCHAR, key_budget BIGINT, tier VARCHAR, "
    "tier_source VARCHAR, runs BIGINT, usage_sum DOUBLE, usage_sq DOUBLE, usage_max DOUBLE, "
    "exceeded BIGINT, failed BIGINT, tokens DECIMAL(38, 0), share_runs BIGINT, confidence_sum DOUBLE, "
    "confidence_runs BIGINT)",
    "CREATE TEMP TABLE group_bins (agent VARCHAR, profile VARCHAR, key_tier VARCHAR, key_budget BIGINT, "
    "bin DOUBLE, runs BIGINT)",
    "CREATE TEMP TABLE scope_sums (agent VARCHAR, profile VARCHAR, key_tier VARCHAR, key_budget BIGINT, "
    "scope VARCHAR, tokens DECIMAL(38, 0), share_sum DOUBLE, share_sq DOUBLE, first_seen STRUCT(file VARCHAR, n BIGINT, "
    "place BIGINT))",
    "CREATE TEMP TABLE runs (tier VARCHAR, usage DOUBLE, exceeded BOOLEAN, tier_source VARCHAR, confidence DOUBLE, "
    "ran_at TIMESTAMPTZ, agent VARCHAR)",
    "CREATE TEMP TABLE fast_sums (in_period BOOLEAN, unchecked_hash VARCHAR, agent_json JSON, day VARCHAR, "
    "runs BIGINT, exceeded BIGINT)",
)
"""The tables of a log with no runs (an empty file)."""


def _insert(con: Any, table: str, rows: Sequence[Any], width: int) -> None:
    """Insert ``rows`` into ``table`` in one statement (a list parameter per column, unnested side by side)."""
    if not rows:
        return
    columns = list(zip(*rows))
    con.execute(f"INSERT INTO {table} SELECT {', '.join(f'unnest(${i + 1})' for i in range(width))}",
                [list(c) for c in columns])


def figures_from_rows(rows: Any, scope_rows: Any, profile_rows: Any) -> Any:
    """:class:`~engine.analytics.stats.Figures` from the rows of figures.sql, scope_figures.sql and
    profile_runs.sql (any engine)."""
    from engine.analytics.stats import Figures, ScopeStats, TierStats, UsageStats

    scopes: dict[tuple[str, str], dict[str, ScopeStats]] = {}
    for name, part, scope, tokens, share, share_stdev, weight, drift, seen in scope_rows:
        scopes.setdefault((name, part), {})[scope] = ScopeStats(_number(tokens), share, share_stdev, weight, drift,
                                                                bool(seen))
    tiers: dict[tuple[str, str, str], dict[str, TierStats]] = {}
    whole: dict[tuple[str, str, str], tuple] = {}
    for (subject, name, part, tier, runs, mean, median, p90, max_usage, exceeded, rate, failed, tokens, q1, q3,
         low_bin, stdev, low, high, share_runs) in rows:
        if tier is not None:
            tiers.setdefault((subject, name, part), {})[tier] = TierStats(runs, mean, int(exceeded), rate, low, high)
        else:
            whole[(subject, name, part)] = (runs, mean, median, p90, max_usage, int(exceeded), rate, int(failed),
                                            _number(tokens), q1, q3, low_bin, stdev, low, high, int(share_runs))
    found: dict[str, dict[str, UsageStats]] = {"all": {}, "current": {}}
    overall = UsageStats()
    for (subject, name, part), values in whole.items():
        stats = UsageStats(*values, tiers=tiers.get((subject, name, part), {}),
                           scopes=scopes.get((name, part), {}) if subject == "agent" else {})
        if subject == "overall":
            overall = stats
        else:
            found[part][name] = stats
    profiles: dict[str, dict[str, int]] = {}
    for name, run_profile, runs in profile_rows:
        profiles.setdefault(name, {})[run_profile] = int(runs)
    return Figures(found["all"], found["current"], overall, profiles)


def tier_rows(rows: Any) -> dict[str, dict]:
    """Per tier: runs, usage, exceedance and provenance (the rows of ``sql/tiers.sql``)."""
    found = {}
    for tier, runs, mean, exceeded, detected, given, default, unknown, confidence in rows:
        found[tier] = {"runs": runs, "mean_usage": mean, "exceeded": exceeded, "exceedance_rate": exceeded / runs,
                       "sources": {"detected": detected, "given": given, "default": default, "unknown": unknown},
                       "detected_share": detected / runs, "given_share": given / runs,
                       "mean_confidence": confidence}
    return found


KEYS = ("timestamp", "agent", "profile", "tier", "budget", "usage", "scopes", "exceeded", "success", "tokens_loaded",
        "budget_allocated", "usage_pct", "scopes_loaded", "scope_breakdown", "task_complexity", "exceeded_budget",
        "host", "tier_source", "confidence")
"""The keys of a usage record (both formats) records.sql reads: the columns of ``fields`` (as j_KEY)."""

RUN_COLUMNS = ("file VARCHAR, n BIGINT, line VARCHAR, reason VARCHAR, agent VARCHAR, profile VARCHAR, tier VARCHAR, "
               "budget BIGINT, tokens_loaded BIGINT, usage DOUBLE, exceeded BOOLEAN, success BOOLEAN, "
               "scope_names VARCHAR[], scope_values BIGINT[], total DECIMAL(38, 0), host VARCHAR, tier_source VARCHAR, "
               "confidence DOUBLE, ran_at TIMESTAMPTZ, in_period BOOLEAN, success_unsaid BOOLEAN, native BOOLEAN, "
               "unchecked_hash UBIGINT")
"""The columns of ``all_runs``: records.sql's (parquet_runs.sql gives some of them), and fast_runs.sql's
``unchecked_hash`` (a test holds them to the queries')."""

NO_FIELDS = ("SELECT NULL::VARCHAR AS file, NULL::BIGINT AS n, NULL::VARCHAR AS line, true AS is_json, "
             "true AS is_object, " + ", ".join(f"NULL::JSON AS j_{key}" for key in KEYS) + " LIMIT 0")
"""The relation ``fields`` with no line: what gives an empty table its columns."""


FAST = True
"""Whether local JSONL files are read by DuckDB's JSON reader (else line by line as text; the tests compare)."""

last_reader = ""
"""How :func:`load_runs` last read JSONL: "json" (DuckDB's JSON reader) or "lines" (line by line as text)."""


SOURCES_KEY = "ctxbudget_export"
"""The key of a Parquet file's key-value metadata under which ``export`` records where its runs came from: a JSON
object ``{"host": the machine's name, "sources": [absolute paths or URLs]}``."""


def _export_key(path: str) -> str | None:
    """The source key in the name ``usage-KEY-N.parquet`` that ``export`` gives its files (None for other names)."""
    name = os.path.basename(path)
    if name.startswith("usage-") and name.lower().endswith(".parquet"):
        key = name[6:].split("-", 1)[0]
        if len(key) == 12 and all(c in "0123456789abcdef" for c in key):
            return key
    return None


def _partition_tail(path: str) -> tuple[str, ...]:
    """A file's name and the partition folders (``name=value``) above it: the same for one export's file wherever
    the export was copied."""
    parts = os.path.normpath(os.path.abspath(path)).split(os.sep)
    tail = [parts.pop()]
    while len(parts) > 1 and "=" in parts[-1]:
        tail.append(parts.pop())
    return tuple(tail)


def read_twice(files: Sequence[str]) -> str | None:
    """Why reading ``files`` together would count runs twice, or None. Three ways: a Parquet file that ``export``
    wrote on this machine from a JSONL log that is read too (``export --to`` a folder below the log's, then
    ``analyze --log`` the log's folder); two exports of different source sets that share a log (a glob
    exported, then one of its files); one machine's export of a log in two folders (copied, or exported twice). What each file
    came from is in its metadata (:data:`SOURCES_KEY`); older exports' files, and metadata that is not of that
    shape, are taken as they are. Footers are read only when needed: one per export key when JSONL logs or
    several keys are read, and those of files whose names and partitions are the same in two folders."""
    from engine.jsonio import loads

    local = [f for f in files if not is_remote(f)]
    parquet = [(f, _export_key(f)) for f in local if is_parquet(f)]
    parquet = [(f, key) for f, key in parquet if key is not None]
    if not parquet:
        return None
    jsonl = {os.path.abspath(f): f for f in local if not is_parquet(f)}
    one_per_key: dict[str, str] = {}
    same_name: dict[tuple, list[str]] = {}
    for f, key in parquet:
        one_per_key.setdefault(key, f)
        same_name.setdefault((key, *_partition_tail(f)), []).append(f)
    collided = [group for group in same_name.values() if len(group) > 1]
    wanted = set(f for group in collided for f in group)
    if jsonl or len(one_per_key) > 1:
        wanted.update(one_per_key.values())
    if not wanted:
        return None
    con = connect()
    try:
        rows = con.execute("SELECT file_name, TRY(decode(value)) FROM parquet_kv_metadata(?) WHERE decode(key) = ?",
                           [sorted(wanted), SOURCES_KEY]).fetchall()
    except duckdb_error():  # a file that is not Parquet: the read that follows names it
        return None
    finally:
        con.close()
    made: dict[str, tuple[str, list[str]]] = {}  # file → (host, sources)
    for file, value in rows:
        try:
            found = loads(value) if value is not None else None
        except ValueError:  # JSONInputError: not JSON, too deep, too long
            continue
        if isinstance(found, dict) and isinstance(found.get("host"), str) and isinstance(found.get("sources"), list) \
                and all(isinstance(s, str) for s in found["sources"]):
            made[file] = (found["host"], found["sources"])
    for group in collided:
        hosts: dict[str, str] = {}  # the same key: the same logs; on the same machine: the same runs
        for f in group:
            if f in made:
                other = hosts.setdefault(made[f][0], f)
                if other != f and os.path.realpath(other) != os.path.realpath(f):
                    return (f"{other} and {f} are exports of the same log on the same machine: each of its runs "
                            f"would count twice; read one of them")
    import socket  # here, not above: most logs have no export's files (its import took 4 ms)

    here = socket.gethostname()
    seen: dict[tuple[str, str], str] = {}  # (host, source) → the file of the first export found to hold its runs
    for key, file in sorted(one_per_key.items()):
        if file not in made:
            continue
        host, sources = made[file]
        for source in dict.fromkeys(sources):
            if host == here and source in jsonl:
                return (f"{file} was exported from {jsonl[source]}, which is read too: each of its runs would count "
                        f"twice; read the log or its export, not both (export to a folder of its own)")
            other = seen.setdefault((host, source), file)
            if other != file:
                return (f"{other} and {file} were exported from the same log ({source} on {host}) by two exports: "
                        f"each of its runs would count twice; read one of them")
    return None


def load_runs(files: Sequence[str], since: datetime | None, until: datetime | None, times: bool = True,
              summed: bool = False) -> Any:
    """:func:`_load_runs`; a DuckDB error reading a remote log (no connection, a host that does not answer, the
    ``httpfs`` extension that cannot be installed offline) is an OSError naming it, which the commands report as
    ``cannot read the usage log …`` (exit 2), not a traceback."""
    try:
        return _load_runs(files, since, until, times, summed)
    except duckdb_error() as exc:
        remote = [f for f in files if is_remote(f)]
        if not remote:
            raise
        raise OSError(first_line(exc)) from None  # the commands name the log


def _load_runs(files: Sequence[str], since: datetime | None, until: datetime | None, times: bool = True,
               summed: bool = False) -> Any:
    """A DuckDB connection with the table ``all_runs`` (every non-blank line of the JSONL files, and the runs of
    the Parquet files, in records.sql's columns), the view ``runs`` (the usage records in the period among them),
    the table ``fast_sums`` and the table ``skipped_found`` (file, line, reason: the first skipped lines) with
    ``skipped_count`` its total; None when there is nothing. ``times``: whether each run's time is read when no
    period asks for it (the runs per day and export need it; with ``summed``, each run's UTC day is part of the
    sums' key, ``fast_sums.day``). ``summed``: whether the records written the usual
    way are summed straight from the reader into ``fast_sums`` (``sql/fast_sums.sql``: no row per run, which is
    what costs time and memory) instead of kept in ``all_runs`` (``fast_sums`` is then empty).

    Local JSONL files are read by DuckDB's JSON reader in two passes. The first reads every line unnumbered, in
    parallel, and takes the records written the usual way (``sql/fast_runs.sql`` or ``fast_sums.sql``); the second, only when some
    line is not such a record, reads the files that have one again, numbered, and gives those lines to
    records.sql (the careful checks, the reasons). Their lines are counted apart (:func:`_count_lines`, which
    also notes the keys whose null the reader drops): when the counts agree and every row is a record,
    nothing was skipped. Else one pass over the file's bytes (:func:`_locate`) numbers the skipped lines for
    the first few. Remote files, and logs the JSON reader cannot vouch for, are read line by line as text
    (:func:`_lines_sql`): slower, the same answers."""
    jsonl = [f for f in files if not is_parquet(f) and (is_remote(f) or os.path.getsize(f) > 0)]
    parquet = [f for f in files if is_parquet(f)]
    if not jsonl and not parquet:
        return None
    twice = read_twice(files)
    if twice is not None:
        raise ValueError(twice)
    global last_reader
    fast = FAST and bool(jsonl) and not any(is_remote(f) for f in jsonl)
    last_reader = "json"
    if fast:
        duckdb = duckdb_engine()
        counting = Counting(jsonl)  # the lines are counted while DuckDB reads (it releases the GIL)
        con = None
        try:
            con = _load(jsonl, parquet, since, until, fast=True, times=times, summed=summed)
            _recheck(con, jsonl, since, until)
        except duckdb.InvalidInputException:  # a line past the reader's buffer (several MAX_LINE_BYTES)
            if con is not None:
                con.close()
            con = None
        except BaseException:
            if con is not None:
                con.close()
            counting.join()
            raise
        try:
            counted = counting.result()
            if con is None:
                pass
            elif _checked(con, jsonl, counted, since, until):
                return con
        except BaseException:
            if con is not None:
                con.close()
            raise
        if con is not None:
            con.close()
    last_reader = "lines" if jsonl else "json"
    return _load(jsonl, parquet, since, until, fast=False, times=times, summed=summed)


class Counting:
    """:func:`_count_lines` of each of ``files`` in a thread of its own, begun at once; :meth:`result` waits for
    it. (A thread rather than ``concurrent.futures``, whose import, with ``logging``'s, took 9 ms of each
    analysing command's start here.)"""

    def __init__(self, files: Sequence[str]) -> None:
        import threading

        self._counted: list[tuple[int, bool, frozenset[bytes]]] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._count, args=(list(files),), daemon=True)
        self._thread.start()

    def _count(self, files: list[str]) -> None:
        try:
            self._counted = [_count_lines(f) for f in files]
        except BaseException as exc:  # raised again by result(), in the caller's thread
            self._error = exc

    def join(self) -> None:
        self._thread.join()

    def result(self) -> list[tuple[int, bool, frozenset[bytes]]]:
        self.join()
        if self._error is not None:
            raise self._error
        return self._counted


def _load(jsonl: Sequence[str], parquet: Sequence[str], since: datetime | None, until: datetime | None,
          fast: bool, times: bool, summed: bool) -> Any:
    con = connect()
    try:
        period: dict[str, Any] = {"since": since, "until": until}
        parts = []
        sums = _with(sql("fast_sums"), "fast_lines", _with(sql("fast_lines"), "fields", NO_FIELDS)) + " LIMIT 0"
        if jsonl:
            if fast:  # the seed's records are never fast: such files are read numbered, by records.sql alone
                seed = [f for f in jsonl if _seed_like(f)]
                usual = [f for f in jsonl if f not in seed]
                if usual and summed:
                    sums = _fast_sums(_fields_select(usual, numbered=False))
                elif usual:
                    parts.append(_fast_runs(_fields_select(usual, numbered=False)))
                    period["times"] = times
                if seed:
                    parts.append(_with(sql("records"), "fields", _fields_select(seed, numbered=True)))
            else:
                con.execute(_lines_sql(jsonl))
                con.execute("CREATE TEMP VIEW fields AS " + sql("line_fields"))
                parts.append(sql("records"))
        if not jsonl or fast:
            con.execute("CREATE TEMP TABLE rejected_lines (file_id BIGINT, scan_id BIGINT, line BIGINT, "
                        "error_type VARCHAR); "
                        "CREATE TEMP TABLE rejected_scans (file_id BIGINT, scan_id BIGINT, file_path VARCHAR)")
        if not jsonl:
            con.execute("CREATE TEMP VIEW lines AS SELECT NULL::VARCHAR AS file, NULL::BIGINT AS n LIMIT 0")
        if parquet:
            parts.append(_parquet_runs(_parquet_rows(con, parquet)))
        query = " UNION ALL BY NAME ".join(f"({part})" for part in parts)
        try:
            con.execute("CREATE TEMP TABLE fast_sums AS " + sums, {"since": since, "until": until, "daily": times})
            con.execute(f"CREATE TEMP TABLE all_runs ({RUN_COLUMNS})")
            if parts:  # none: every run was summed as the log was read
                con.execute("INSERT INTO all_runs BY NAME " + query, period)
        except duckdb_error():
            broken = _broken_parquet(con, parquet, since, until)  # a damaged page past a sound footer
            if broken is not None:
                raise ValueError(broken) from None
            raise  # the JSON reader's (load_runs then reads the lines as text)
        con.execute(f"CREATE TEMP VIEW runs AS {sql('runs')}")
        con.execute("CREATE TEMP TABLE skipped_found (file VARCHAR, line BIGINT, reason VARCHAR); "
                    "CREATE TEMP TABLE skipped_total (count BIGINT)")
    except BaseException:
        con.close()
        raise
    return con


PARQUET_COLUMNS = {
    "agent": ("VARCHAR",), "profile": ("VARCHAR",), "tier": ("VARCHAR",),
    "budget": ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UINTEGER", "USMALLINT", "UTINYINT"),
    "tokens_loaded": ("BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UINTEGER", "USMALLINT", "UTINYINT"),
    "usage": ("DOUBLE", "FLOAT"), "exceeded": ("BOOLEAN",), "success": ("BOOLEAN",),
    "scope_list": ('STRUCT(place BIGINT, "name" VARCHAR, tokens BIGINT)[]',),
    "ran_at": ("TIMESTAMP WITH TIME ZONE",),
}
"""The columns of a Parquet log (what ``ctxbudget export`` writes; ``total`` is worked out again) and the types
read as them. A file without them, or with other types, is not a usage log: an error names it."""

PARQUET_OPTIONAL = {"host": ("VARCHAR",), "tier_source": ("VARCHAR",), "confidence": ("DOUBLE", "FLOAT")}
"""Columns older exports lack (NULL, of the first type, when no file has them)."""


def schema_problem(columns: dict[str, str] | None, required: dict[str, tuple[str, ...]],
                   optional: dict[str, tuple[str, ...]]) -> str | None:
    """What makes ``columns`` (name → type, as an engine names it) not those of a Parquet usage log — each of
    ``required`` with one of its types, each of ``optional`` it has too; None when nothing does. Both engines."""
    if columns is None:
        return "unreadable"
    for name, kinds in (*required.items(), *optional.items()):
        if name not in columns:
            if name in required:
                return f"no column {name!r}"
        elif _type_key(columns[name]) not in map(_type_key, kinds):
            return f"column {name!r} is {columns[name]}, not {' or '.join(kinds)}"
    return None


def _type_key(kind: str) -> str:
    """A type's name without the spaces and quotes an engine's version may write differently."""
    return "".join(ch for ch in kind if ch not in ' "`').upper()


def duckdb_error() -> type:
    return duckdb_engine().Error


def io_error() -> type:
    return duckdb_engine().IOException


def first_line(exc: BaseException) -> str:
    """The first line of an engine's error message (DuckDB and Spark add advice and stacks below it)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _parquet_read(files: Sequence[str]) -> str:
    listed = ", ".join(_quoted(f) for f in files)
    return (f"read_parquet([{listed}], hive_partitioning = true, hive_types_autocast = false, "
            f"union_by_name = true, filename = true, file_row_number = true)")


def _parquet_rows(con: Any, files: Sequence[str]) -> str:
    """The relation ``parquet_rows`` of parquet_runs.sql over ``files``: their rows, with the optional columns
    no file has as NULL. ValueError naming a file that cannot be read as Parquet, or whose columns are not those
    of a usage log (:data:`PARQUET_COLUMNS`)."""
    listed = ", ".join(map(_quoted, files))
    found: dict[str, str] | None = None
    try:
        found = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {_parquet_read(files)})"
                                 ).fetchall())
        # union_by_name gives a file's missing columns as NULL: each file must have them (names from its footer)
        lacking = con.execute(f"SELECT count(*) FROM (SELECT file_name, list(name) AS names FROM parquet_schema("
                              f"[{listed}]) GROUP BY file_name) WHERE NOT list_has_all(names, ?)",
                              [list(PARQUET_COLUMNS)]).fetchone()[0]
    except duckdb_error():
        lacking = None
    if lacking == 0 and schema_problem(found, PARQUET_COLUMNS, PARQUET_OPTIONAL) is None:
        missing = [f"NULL::{kinds[0]} AS {name}" for name, kinds in PARQUET_OPTIONAL.items() if name not in found]
        return f"SELECT *{''.join(', ' + m for m in missing)} FROM {_parquet_read(files)}"
    for file in files:  # which file: each read alone
        try:
            alone = dict(con.execute(
                f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {_parquet_read([file])})").fetchall())
        except duckdb_error() as exc:
            raise ValueError(f"{file}: cannot read it as Parquet: {first_line(exc)}") from None
        problem = schema_problem(alone, PARQUET_COLUMNS, PARQUET_OPTIONAL)
        if problem is not None:
            raise ValueError(f"{file}: not a usage log written by `ctxbudget export`: {problem}")
    raise ValueError("the Parquet files of the log cannot be read together (a column's type differs between files)")


def _parquet_runs(rows: str) -> str:
    """parquet_runs.sql over parquet_checks.sql over ``rows`` (a query: :func:`_parquet_rows`)."""
    return _with(sql("parquet_runs"), "checked", _with(sql("parquet_checks"), "parquet_rows", rows))


def _broken_parquet(con: Any, files: Sequence[str], since: datetime | None, until: datetime | None) -> str | None:
    """The error of the first of ``files`` that cannot be read through parquet_runs.sql alone (None when each can)."""
    for file in files:
        try:  # hashing every column reads every value (a count would read only what it must)
            con.execute(f"SELECT max(hash(COLUMNS(*))) FROM ({_parquet_runs(_parquet_rows(con, [file]))})",
                        {"since": since, "until": until}).fetchone()
        except duckdb_error() as exc:
            return f"{file}: cannot read it as Parquet: {first_line(exc)}"
    return None


SNIFF_BYTES = 1 << 16
"""How much of the start of a JSONL file tells whether it holds the seed's records."""


def _seed_like(path: str) -> bool:
    """Whether the start of the local file ``path`` names the seed's ``budget_allocated`` (its records are not
    ours, so the first pass would take none of them: the file is read numbered, once)."""
    with open(path, "rb") as handle:
        return b'"budget_allocated"' in handle.read(SNIFF_BYTES)


def _recheck(con: Any, files: Sequence[str], since: datetime | None, until: datetime | None) -> None:
    """The second pass of the JSON reader: the lines the first left unchecked (in ``all_runs`` or ``fast_sums``),
    read again numbered (the files that have some) and found by the hash of their values
    (``unusual_line_hash``), through records.sql; they replace the first pass's rows for them."""
    hashes = ("SELECT unchecked_hash FROM all_runs WHERE reason = 'unchecked' UNION ALL "
              "SELECT unchecked_hash FROM fast_sums WHERE unchecked_hash IS NOT NULL")
    unchecked = {file for (file,) in con.execute(
        "SELECT DISTINCT file FROM all_runs WHERE reason = 'unchecked' UNION "
        "SELECT DISTINCT file FROM fast_sums WHERE unchecked_hash IS NOT NULL").fetchall()}
    if not unchecked:
        return
    numbered = _fields_select([f for f in files if f in unchecked], numbered=True)
    candidates = (f"SELECT * FROM ({numbered}) WHERE unusual_line_hash(j_budget_allocated, j_timestamp, j_agent, "
                  f"j_profile, j_tier, j_budget, j_tokens_loaded, j_usage, j_exceeded, j_success, j_scopes) IN "
                  f"({hashes})")
    checked = _with(sql("fast_lines"), "fields", candidates)
    lines = f"SELECT * EXCLUDE (scope_keys, line_time, fast) FROM ({checked}) WHERE NOT fast"
    con.execute(f"INSERT INTO all_runs BY NAME {_with(sql('records'), 'fields', lines)}",
                {"since": since, "until": until})
    con.execute("DELETE FROM all_runs WHERE reason = 'unchecked'; "
                "DELETE FROM fast_sums WHERE unchecked_hash IS NOT NULL")


def _with(query: str, name: str, relation: str) -> str:
    """``query`` (one of the queries of ``sql/`` that read the relation ``name``) reading ``relation`` (a query)
    as ``name``."""
    head, found, rest = query.partition("\nWITH ")
    if not found:  # a plain SELECT (after its comments)
        return f"WITH {name} AS ({relation})\n{query}"
    return f"{head}\nWITH {name} AS ({relation}), {rest}"


def _fast_runs(fields: str) -> str:
    """fast_runs.sql over fast_lines.sql over ``fields`` (a query: :func:`_fields_select`)."""
    return _with(sql("fast_runs"), "fast_lines", _with(sql("fast_lines"), "fields", fields))


def _fast_sums(fields: str) -> str:
    """fast_sums.sql over fast_lines.sql over ``fields`` (a query: :func:`_fields_select`)."""
    return _with(sql("fast_sums"), "fast_lines", _with(sql("fast_lines"), "fields", fields))


CHUNK_BYTES = 1 << 20
"""How much of a log the line counter and :func:`_locate` read at a time."""


NULLABLE_KEYS = (b'"success"', b'"budget_allocated"')
"""Keys whose value null DuckDB's JSON reader cannot tell from a missing key (see :func:`_checked`)."""


def _escaped_key(key: bytes) -> bytes:
    """A bytes pattern of ``key`` (a quoted name) written with any of its characters escaped (``"\\u0073uccess"``):
    DuckDB's reader unescapes key names, so the byte search for :data:`NULLABLE_KEYS` must see these too."""
    import re

    parts = []
    for ch in key.decode("ascii")[1:-1]:
        code = "".join(f"[{h}{h.upper()}]" if h.isalpha() else h for h in f"{ord(ch):04x}")
        parts.append(f"(?:{re.escape(ch)}|\\\\u{code})")
    return ('"' + "".join(parts) + '"').encode("ascii")


def _count_lines(path: str) -> tuple[int, bool, frozenset[bytes]]:
    """(lines, whether the last one ends with a newline, which of :data:`NULLABLE_KEYS` the file holds anywhere,
    its name written plainly or with escapes) of the local file ``path``, counted in C-speed chunks in one pass.

    The chunks are read into one buffer (``readinto``), after the end of the one before, so that a key across
    two chunks is found. A new ``bytes`` a chunk, and a copy of each joined to that end, took 0.32 CPU-seconds
    against 0.30 on the 1M log alone (medians of 9), and ``recommend`` 2.43 s against 2.32 with the count
    beside DuckDB's read, whose two threads it shares 2 cores with (medians of 6, interleaved, under load)."""
    import re

    lines = 0
    last = 10  # the newline
    found: set[bytes] = set()
    longest = 6 * max(len(key) for key in NULLABLE_KEYS)  # every character escaped
    escaped = {key: re.compile(_escaped_key(key)) for key in NULLABLE_KEYS}
    buffer = bytearray(longest + CHUNK_BYTES)
    view = memoryview(buffer)
    kept = 0  # the bytes at the start of the buffer that end the chunk before (the keys are looked for across)
    with open(path, "rb", buffering=0) as handle:
        while size := handle.readinto(view[kept:kept + CHUNK_BYTES]):
            end = kept + size
            lines += buffer.count(b"\n", kept, end)
            last = buffer[end - 1]
            if len(found) < len(NULLABLE_KEYS):
                # rfind: only whether the key is there matters, and CPython's search from the end (a Horspool-like
                # skip) took 0.05 CPU-seconds for `"budget_allocated"` over the 1M log against 0.09 for find
                found.update(key for key in NULLABLE_KEYS if key not in found and buffer.rfind(key, 0, end) >= 0)
                # rare: a key's name may be written with escapes. A backslash is looked for first: one byte is
                # found with memchr (0.014 s for 1M records here), the pair "\\u" by a slower search (0.44 s),
                # which made this count take as long as DuckDB's read beside it.
                if buffer.find(b"\\", 0, end) >= 0 and buffer.find(b"\\u", 0, end) >= 0:
                    found.update(key for key in NULLABLE_KEYS
                                 if key not in found and escaped[key].search(buffer, 0, end))
                kept = min(longest, end)
                buffer[:kept] = bytes(view[end - kept:end])
            else:
                kept = 0
    return lines + (last != 10), last == 10, frozenset(found)


UNDECODABLE = object()
"""What :func:`_locate` gives for the text of a line that is not UTF-8 (the JSON reader gives it a row of NULLs)."""


def _locate(path: str, wanted: set[int], stop_after: int | None) -> tuple[int, dict[int, tuple[int, object]],
                                                                          list[int]]:
    """One pass over the bytes of ``path``: (its non-blank lines, {n: (line number, text; None when longer than
    MAX_LINE_BYTES, :data:`UNDECODABLE` when not UTF-8)} for the ``n``-th non-blank lines in ``wanted``, the ``n``
    of the overlong lines). A line is never held longer than MAX_LINE_BYTES; with ``stop_after`` the pass ends after
    that non-blank line."""
    found: dict[int, tuple[int, object]] = {}
    overlong: list[int] = []
    number = kept = 0

    def line(raw: bytes, too_long: bool) -> None:
        nonlocal number, kept
        number += 1
        if not too_long and not raw.strip(b" \t\r"):
            return
        kept += 1
        if too_long:
            overlong.append(kept)
        if kept in wanted:
            if number == 1 and raw.startswith(BOM):  # a byte order mark that starts the file: the readers skip it
                raw = raw[len(BOM):]
            try:
                text: str | object | None = None if too_long else raw.decode("utf-8")
            except UnicodeDecodeError:
                text = UNDECODABLE
            found[kept] = (number, text)

    carry, skipping = b"", False
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK_BYTES):
            if skipping:  # inside an overlong line, already counted
                end = block.find(b"\n")
                if end < 0:
                    continue
                block, skipping = block[end + 1:], False
            parts = (carry + block if carry else block).split(b"\n")
            carry = parts.pop()
            for raw in parts:
                line(raw, len(raw) > MAX_LINE_BYTES)
            if len(carry) > MAX_LINE_BYTES:
                line(b"", True)
                carry, skipping = b"", True
            if stop_after is not None and kept >= stop_after:
                return kept, found, overlong
        if carry and not skipping:
            line(carry, len(carry) > MAX_LINE_BYTES)
    return kept, found, overlong


def _checked(con: Any, files: Sequence[str], counted: Sequence[tuple[int, bool]], since: datetime | None,
             until: datetime | None) -> bool:
    """Check what DuckDB's JSON reader read against the files' lines and locate the first skipped lines (the
    table ``skipped_found``, and ``skipped_total``), given each file's (lines, whether the last ends with a
    newline). False when the reader cannot be vouched for: the log is then read line by line."""
    counts = {file: (rows, bad, unsaid, native) for file, rows, bad, unsaid, native in con.execute("""
        SELECT file, sum(rows), sum(bad), sum(unsaid), sum(native) FROM (
            SELECT file, count(*) AS rows, count(*) FILTER (WHERE reason IS NOT NULL) AS bad,
                   count(*) FILTER (WHERE reason IS NULL AND success_unsaid) AS unsaid,
                   count(*) FILTER (WHERE reason IS NULL AND native) AS native
            FROM all_runs WHERE list_contains($files, file) GROUP BY file
            UNION ALL
            SELECT file, sum(runs), 0, sum(success_unsaid), sum(runs)  -- the usual records: ours, no reason
            FROM fast_sums WHERE list_contains($files, file) GROUP BY file)
        GROUP BY file""", {"files": list(files)}).fetchall()}
    total = 0
    detail: list[tuple[int, str, int, str | None, bool]] = []  # (file's place, file, line number, text, torn)
    for place, file in enumerate(files):
        rows, bad, unsaid, native = counts.get(file, (0, 0, 0, 0))
        lines, terminated, mentioned = counted[place]
        # the reader reads a key whose value is null as missing: where that would change the answer, it cannot
        if (unsaid and b'"success"' in mentioned) or (native and b'"budget_allocated"' in mentioned):
            return False
        total += bad
        if rows == lines and not bad:
            continue
        first = [n for (n,) in con.execute(
            "SELECT n FROM all_runs WHERE file = ? AND reason IS NOT NULL ORDER BY n LIMIT ?",
            [file, SKIPPED_KEPT]).fetchall()]
        kept, found, overlong = _locate(file, set(first), max(first) if rows == lines and first else None)
        if rows != lines and kept != rows:
            return False  # a line the reader did not give a row for
        if overlong and con.execute(f"SELECT count(*) FROM all_runs WHERE file = ? AND reason IS NULL AND n IN "
                                    f"({', '.join(map(str, overlong))})", [file]).fetchone()[0]:
            return False
        for n in first:
            number, text = found[n]
            detail.append((place, file, number, text, number == lines and not terminated))
    con.execute("INSERT INTO skipped_total VALUES (?)", [total])
    if not detail:
        return True
    detail.sort()
    detail = detail[:SKIPPED_KEPT]
    con.execute("CREATE TEMP TABLE lines (file VARCHAR, n BIGINT, line VARCHAR)")
    texts = [(file, number, text) for _place, file, number, text, _torn in detail
             if text is not None and text is not UNDECODABLE]
    if texts:
        con.executemany("INSERT INTO lines VALUES (?, ?, ?)", texts)
    exact = _with(sql("records"), "fields", sql("line_fields"))
    reasons = {(file, n): (reason, line) for file, n, reason, line in con.execute(
        f"SELECT file, n, reason, line FROM ({exact})", {"since": since, "until": until}).fetchall()}
    located = []
    for _place, file, number, text, torn in detail:
        if text is None:
            reason = OVERLONG
        elif text is UNDECODABLE:  # as the Python reader says it
            reason = TORN if torn else NOT_UTF8
        else:
            reason, line = reasons.get((file, number), (None, None))
            if reason is None:
                return False  # the exact reader would have read it: trust the exact reader
            reason = _detail(reason, line, torn)
        located.append((file, number, reason))
    con.executemany("INSERT INTO skipped_found VALUES (?, ?, ?)", located)
    return True


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fields_select(files: Sequence[str], numbered: bool) -> str:
    """The relation ``fields`` as a SELECT: one row per non-blank line of each file (DuckDB's JSON reader),
    numbered among the file's non-blank lines when ``numbered`` (``n``; :func:`_locate` turns it into a line
    number when the file has blank lines; numbering makes the reader run in one thread), else with ``n`` NULL.
    A line that is not a JSON object gives a row of NULLs (``ignore_errors``)."""
    columns = "{" + ", ".join(f"'{key}': 'JSON'" for key in KEYS) + "}"
    keys = ", ".join(f"{key} AS j_{key}" for key in KEYS)
    number, ordinality = ("ordinality", " WITH ORDINALITY") if numbered else ("NULL::BIGINT", "")
    reads = [f"""
        SELECT {_quoted(f)} AS file, {number} AS n, NULL::VARCHAR AS line, true AS is_json, true AS is_object,
               {keys}
        FROM read_json({_quoted(f)}, format = 'newline_delimited', columns = {columns}, ignore_errors = true,
                       maximum_object_size = {MAX_LINE_BYTES + 2}){ordinality}""" for f in files]
    return " UNION ALL ".join(reads)


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


def _number(value: Any) -> int | float:
    """A token count as the engines give it (an int, a Decimal, a float) as an int when it is whole."""
    return int(value) if float(value).is_integer() else float(value)


def _skipped(con: Any, result: Any, every: Sequence[str]) -> None:
    """Count the lines (and Parquet rows) of the log's files ``every`` that are not runs, and keep the first few
    with their line numbers and reasons."""
    files = [f for f in every if not is_parquet(f)]
    parquet = [f for f in every if is_parquet(f)]
    _skipped_lines(con, result, files, multi=len(every) > 1)
    if parquet:
        _skipped_rows(con, result, parquet)


def _skipped_rows(con: Any, result: Any, parquet: Sequence[str]) -> None:
    """The rows of Parquet files that are not runs (parquet_runs.sql), after the log lines: counted, and the first
    few kept with their files and row numbers."""
    count = con.execute("SELECT count(*) FROM all_runs WHERE reason IS NOT NULL AND list_contains(?, file)",
                        [list(parquet)]).fetchone()[0]
    result.skipped_lines += count
    room = SKIPPED_KEPT - len(result.skipped)
    if count and room > 0:
        result.skipped += [SkippedLine(n, f"{file}: Parquet row {n}: {reason}") for file, n, reason in con.execute(
            "SELECT file, n, reason FROM all_runs WHERE reason IS NOT NULL AND list_contains(?, file) "
            "ORDER BY file, n LIMIT ?", [list(parquet), room]).fetchall()]


def _skipped_lines(con: Any, result: Any, files: Sequence[str], multi: bool) -> None:
    """Count the lines of the JSONL ``files`` that are not runs, and keep the first few with their line numbers
    and reasons (named by file when the log has several files)."""
    total = con.execute("SELECT count FROM skipped_total").fetchone()  # counted by _checked (the JSON reader)
    if total is not None:
        result.skipped_lines = total[0]
        result.skipped = [SkippedLine(line, reason if not multi else f"{file}: {reason}") for file, line, reason
                          in con.execute("SELECT * FROM skipped_found").fetchall()]
        result.lines = 0
        return
    # the lines the text reader rejected: too long, or not UTF-8 (DuckDB's error types)
    rejects = con.execute("""
        SELECT s.file_path, e.line, e.error_type::VARCHAR FROM rejected_lines e
        JOIN rejected_scans s USING (scan_id, file_id) ORDER BY s.file_path, e.line""").fetchall()
    bad = con.execute("SELECT count(*) FROM all_runs WHERE reason IS NOT NULL AND list_contains(?, file)",
                      [list(files)]).fetchone()[0]
    result.skipped_lines = bad + len(rejects)
    first = con.execute(f"""
        SELECT file, n, reason, line FROM all_runs WHERE reason IS NOT NULL AND list_contains(?, file)
        ORDER BY file, n LIMIT {SKIPPED_KEPT}""", [list(files)]).fetchall()
    order = {f: i for i, f in enumerate(files)}
    rejected_before: dict[str, list[int]] = {}
    for file, line, _kind in rejects:
        rejected_before.setdefault(file, []).append(int(line))
    last = dict(con.execute("SELECT file, max(n) FROM lines GROUP BY file").fetchall()) if first or rejects else {}
    # each file's last line (the last it kept or the last it rejected), worked out once per file
    final = {file: max(_physical(last.get(file) or 0, lines), max(lines)) for file, lines in rejected_before.items()}
    located: list[tuple[int, int, str]] = []
    for file, line, kind in rejects:
        reason = OVERLONG
        if kind == "INVALID ENCODING":  # as the Python reader says it: a torn last line, else not UTF-8
            reason = TORN if int(line) == final[file] and _ends_unterminated(file) else NOT_UTF8
        located.append((order.get(file, len(order)), int(line), reason))
    for file, n, reason, text in first:
        physical = _physical(n, rejected_before.get(file, []))
        torn = n == last.get(file) and _ends_unterminated(file)
        located.append((order.get(file, len(order)), physical, _detail(reason, text, torn)))
    located.sort()
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
        return TORN
    from engine.usage.log import loads_line

    try:
        loads_line(text)
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
    import shutil
    import tempfile

    import json

    target = utf8_name(os.fspath(folder))
    sources = sorted(f if is_remote(f) else os.path.abspath(f) for f in files)
    key = sha256_hex("\n".join(sources))[:12]
    inside = os.path.join(os.path.realpath(target), "")
    for f in files:  # `analyze --log FOLDER`, the way back, would read the log and its export: every run twice
        if not is_remote(f) and os.path.realpath(f).startswith(inside):
            raise ValueError(f"{f} is inside {target}: a later `analyze --log {target}` would read it and its export "
                             f"and count every run twice; export to a folder of its own")
    import socket

    made = {"host": socket.gethostname(), "sources": [s for s in sources if not is_parquet(s)]}
    metadata = _quoted(json.dumps(made, ensure_ascii=False))
    with memory_errors():
        con = load_runs(files, since, until)  # before the folder is made: a log that cannot be read leaves nothing
    if con is None:
        return {"runs": 0, "skipped_lines": 0, "skipped": [], "partitions": 0, "files": []}
    staging = None
    try:
        os.makedirs(target, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".export-", dir=target)
        counted = Skipped()
        with memory_errors():
            _skipped(con, counted, files)
            runs, hosts = con.execute("SELECT count(*), count(host) FROM runs").fetchone()
            by = "date, host" if hosts else "date"
            out = staging.replace("'", "''")
            try:
                con.execute(f"COPY ({sql('export')}) TO '{out}' (FORMAT parquet, PARTITION_BY ({by}), "
                            f"FILENAME_PATTERN 'usage-{key}-{{i}}', OVERWRITE_OR_IGNORE true, "
                            f"KV_METADATA {{{SOURCES_KEY}: {metadata}}})")
            except io_error() as exc:  # a full disk: the staging folder goes, the earlier export stays
                raise OSError(f"cannot write the Parquet files: {first_line(exc)}") from None
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
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
