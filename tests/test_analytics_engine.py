"""The DuckDB engine: its two readers and a plain json loop give the same answers; it stays out of other commands."""

from __future__ import annotations

import ast
import json
from datetime import datetime, timedelta, timezone
import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine
from engine.analytics import analyze, duck
from engine.cli.commands import __path__ as commands_path
from engine.usage.log import MAX_LINE_BYTES, OVERLONG, loads_line
from usage_oracle import analyze_plain, comparable
from usage_synth import START, native_record, write_known_log

pytest.importorskip("duckdb")


@pytest.fixture(scope="module")
def policy():
    return engine.load_policy()


@pytest.mark.parametrize("fmt", ["native", "seed", "seed-breakdown"])
def test_the_same_answers_as_a_json_loop_on_the_known_logs(policy, tmp_path, monkeypatch, fmt):
    log = write_known_log(tmp_path / "k.jsonl", fmt)
    fast = analyze(policy, log).to_dict()
    assert duck.last_reader == "json"
    monkeypatch.setattr(duck, "FAST", False)
    lines = analyze(policy, log).to_dict()
    assert duck.last_reader == "lines"
    assert fast == lines
    plain = analyze_plain(policy, log, monkeypatch)
    assert fast.pop("tiers")["medium"]["runs"] == 295
    assert fast == plain
    assert (fast["runs"], fast["skipped_lines"], len(fast["agents"])) == (295, 0, 5)


def _mangled(tmp_path: Path) -> Path:
    """The known log with every kind of bad line a reader skips, blank lines and CRLF endings mixed in."""
    lines = write_known_log(tmp_path / "k.jsonl").read_text().splitlines()
    good = json.loads(lines[0])
    bad = [
        "garbage", "", "   ", "[1, 2]", '"a string"', "null", "{}",
        json.dumps({k: v for k, v in good.items() if k != "agent"}),
        json.dumps(dict(good, agent="")), json.dumps(dict(good, agent=7)), json.dumps(dict(good, budget=-1)),
        json.dumps(dict(good, budget=1.5)), json.dumps(dict(good, budget="20000")), json.dumps(dict(good, usage=-0.5)),
        json.dumps(dict(good, usage="high")), json.dumps(dict(good, usage=True)), json.dumps(dict(good, scopes=[1])),
        json.dumps(dict(good, scopes={"global": "x"})), json.dumps(dict(good, scopes={"global": None})),
        json.dumps(dict(good, exceeded="no")), json.dumps(dict(good, exceeded=False, success="yes")),
        json.dumps(dict(good, tier=3)), json.dumps(dict(good, profile=["p"])), json.dumps(dict(good, timestamp=5)),
        '{"a": 1} trailing', "{\x01}", json.dumps(dict(good, usage=None, exceeded=None, scopes=None, tier=None)),
        json.dumps(dict(good, scopes={}, tier="", profile="")),
    ]
    out = []
    for i, line in enumerate(lines):
        out.append(line + ("\r\n" if i % 7 == 0 else "\n"))
        if i < len(bad):
            out.append(bad[i] + "\n")
    path = tmp_path / "mangled.jsonl"
    path.write_text("".join(out) + '{"torn', newline="")
    return path


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 20])
def test_the_line_count_sees_every_line_and_key_across_its_chunks(tmp_path, monkeypatch, chunk):
    # the count beside DuckDB's read reads the file a chunk at a time into one buffer: a key split between two
    # chunks (written plainly or with escapes), a last line without a newline and an empty file are counted as
    # the whole file's bytes say
    import re

    monkeypatch.setattr(duck, "CHUNK_BYTES", chunk)
    texts = [b"", b"\n", b"\n\n", b"a", b'{"success": null}', b'x\n{"success": true}\n{"budget_allocated": 1}',
             b'{"\\u0073uccess": null}\n', b'{"budget\\u005Fallocated": null}', b'\\u \\ "success\n" "succes"s',
             b"y" * 100 + b'"budget_allocated"' + b"\n" * 3 + b"z" * 50]
    for number, text in enumerate(texts):
        path = tmp_path / f"{number}.jsonl"
        path.write_bytes(text)
        mentioned = frozenset(key for key in duck.NULLABLE_KEYS
                              if key in text or re.search(duck._escaped_key(key), text))
        ends = not text or text.endswith(b"\n")
        assert duck._count_lines(str(path)) == (text.count(b"\n") + (not ends), ends, mentioned), text


def test_bad_lines_are_skipped_counted_and_located_exactly(policy, tmp_path, monkeypatch):
    log = _mangled(tmp_path)
    fast = analyze(policy, log).to_dict()
    assert duck.last_reader == "json"  # blank lines, CRLF and bad records: still DuckDB's JSON reader
    monkeypatch.setattr(duck, "FAST", False)
    assert analyze(policy, log).to_dict() == fast  # the same reasons too
    assert fast["skipped_lines"] == 25
    assert fast["skipped"][0] == {"line": 2, "reason": "not JSON (Expecting value: line 1 column 1 (char 0))"}
    assert fast["skipped"][-1]["reason"] == "'tier' and 'profile' must be strings"
    assert comparable(fast) == comparable(analyze_plain(policy, log, monkeypatch))


@pytest.mark.parametrize("extra, reader", [
    ({"success": None}, "lines"),  # null is not missing: the JSON reader cannot tell them apart
    ({"budget_allocated": None}, "lines"),
    ({"success": False}, "json"),
    ({"note": "success budget_allocated"}, "json"),
    ({"\x00budget_allocated": None}, "lines"),  # written "\u0062udget_allocated": the byte search misses it
    ({"\x00success": None}, "lines"),
    ({"note": "caf\u00e9 \u2014 \x1f"}, "json"),  # escaped non-ASCII and control characters: as JSON writers do
])
def test_a_key_whose_value_is_null_is_read_line_by_line(policy, tmp_path, monkeypatch, extra, reader):
    good = native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, 10000, {"global": 10000})
    if any(key.startswith("\x00") for key in extra):  # nowhere else the key's name as it is
        good.pop("success")
    log = tmp_path / "u.jsonl"
    odd = json.dumps(dict(good, **extra))
    for key in extra:
        if key.startswith("\x00"):
            odd = odd.replace(json.dumps(key), '"\\u%04x%s"' % (ord(key[1]), key[2:]))
    log.write_text(f"{json.dumps(good)}\n{odd}\n{json.dumps(good)}\n")
    data = analyze(policy, log).to_dict()
    assert duck.last_reader == reader
    assert comparable(data) == comparable(analyze_plain(policy, log, monkeypatch))


def _alike_in_every_reader(policy, log: Path, monkeypatch) -> dict:
    """``analyze`` of ``log`` by DuckDB's JSON reader, once the line-by-line reader has given the same answer and
    the json loop the same figures."""
    fast = analyze(policy, log).to_dict()
    monkeypatch.setattr(duck, "FAST", False)
    assert analyze(policy, log).to_dict() == fast
    monkeypatch.setattr(duck, "FAST", True)
    assert comparable(fast) == comparable(analyze_plain(policy, log, monkeypatch))
    return fast


SUCCESS = [(None if value == "-" else value, outcome) for value, outcome in
           (line.split("\t") for line in (Path(__file__).parent / "data" / "usage-success-hostile.txt")
            .read_text(encoding="utf-8").splitlines() if line and not line.startswith("#"))]


@pytest.mark.parametrize("success, outcome", SUCCESS)
def test_success_is_true_or_false_even_when_exceeded_is_not_given(policy, tmp_path, monkeypatch, success, outcome):
    """A record that leaves out `exceeded` (it is worked out from the tokens) still says `success` as true or
    false, or not at all: every reader — DuckDB's two, the json loop, `read_log` — skips it otherwise."""
    good = native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, 10000, {"global": 10000})
    odd = {k: v for k, v in good.items() if k not in ("exceeded", "success")}
    odd = json.dumps(odd) if success is None else json.dumps(dict(odd, success="@@")).replace('"@@"', success)
    log = tmp_path / "u.jsonl"
    log.write_text(f"{json.dumps(good)}\n{odd}\n")
    data = _alike_in_every_reader(policy, log, monkeypatch)
    records = list(engine.usage.read_log(log))
    if outcome == "skipped":
        assert (data["runs"], data["skipped_lines"]) == (1, 1)
        assert data["skipped"] == [{"line": 2, "reason": "'exceeded' and 'success' must be true or false"}]
        assert len(records) == 1
    else:
        assert (data["runs"], data["skipped_lines"], len(records)) == (2, 0, 2)
        assert data["agents"]["specialists/dbt-expert"]["failed"] == (outcome == "failed")
        assert records[1].success is (outcome != "failed") and records[1].exceeded is False


def test_many_skipped_lines_among_blank_ones(policy, tmp_path, monkeypatch):
    """More bad lines than are reported, after blank lines: the count is exact, the first few located."""
    good = json.dumps(native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, 10000,
                                    {"global": 10000}))
    text = "".join(f"{good}\n\n  \n{'oops' if i % 3 else '[1]'}\n" for i in range(40))
    log = tmp_path / "u.jsonl"
    log.write_text(text)
    data = analyze(policy, log).to_dict()
    assert duck.last_reader == "json"
    assert (data["runs"], data["skipped_lines"]) == (40, 40)
    assert [s["line"] for s in data["skipped"]] == [4 + 4 * i for i in range(20)]
    assert data["skipped"][:2] == [{"line": 4, "reason": "not a JSON object"},
                                   {"line": 8, "reason": "not JSON (Expecting value: line 1 column 1 (char 0))"}]
    assert comparable(data) == comparable(analyze_plain(policy, log, monkeypatch))


def test_an_overlong_line_shifts_no_line_number(policy, tmp_path):
    good = json.dumps(native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, 10000,
                                    {"global": 10000}))
    log = tmp_path / "u.jsonl"
    log.write_text("\n".join([good, "x" * (MAX_LINE_BYTES + 10), good, "oops", "y" * (3 * MAX_LINE_BYTES), "",
                              "oops", good]) + "\n")
    data = analyze(policy, log).to_dict()
    assert (data["runs"], data["skipped_lines"]) == (3, 4)
    assert [(s["line"], s["reason"][:8]) for s in data["skipped"]] == [
        (2, OVERLONG[:8]), (4, "not JSON"), (5, OVERLONG[:8]), (7, "not JSON")]


def test_a_folder_a_glob_and_several_files(policy, tmp_path):
    whole = analyze(policy, write_known_log(tmp_path / "k.jsonl")).to_dict()
    lines = (tmp_path / "k.jsonl").read_text().splitlines(keepends=True)
    folder = tmp_path / "logs"
    for day, part in enumerate((lines[:100], lines[100:200], lines[200:])):
        (folder / f"date=2025-10-0{day + 1}").mkdir(parents=True)
        (folder / f"date=2025-10-0{day + 1}" / "usage.jsonl").write_text("".join(part))
    (folder / "date=2025-10-02" / "usage.jsonl").open("a").write("broken\n")
    for location in (folder, f"{folder}/*/usage.jsonl"):
        data = analyze(policy, location).to_dict()
        assert data["skipped_lines"] == 1
        assert data["skipped"] == [{"line": 101, "reason": f"{folder}/date=2025-10-02/usage.jsonl: not JSON "
                                                           "(Expecting value: line 1 column 1 (char 0))"}]
        for key in ("log", "skipped_lines", "skipped"):
            del data[key]
        assert data == {k: v for k, v in whole.items() if k not in ("log", "skipped_lines", "skipped")}


def test_scans_share_one_database_but_not_their_tables(policy, tmp_path, monkeypatch):
    """Every scan is a connection of its own to the process's one DuckDB database (made once: ~35 ms saved per
    analysis): its temporary tables are its own, the macros are shared, two analyses in two threads at once each
    get their own log's answers, and new settings make a new database."""
    import duckdb
    from concurrent.futures import ThreadPoolExecutor

    first, second = duck.connect(), duck.connect()
    first.execute("CREATE TEMP TABLE all_runs AS SELECT 1 AS n")
    with pytest.raises(duckdb.CatalogException):
        second.execute("SELECT * FROM all_runs")
    assert second.execute("SELECT json_kind('12'::JSON)").fetchone() == ("UBIGINT",)
    first.close()
    second.close()

    known = write_known_log(tmp_path / "known.jsonl")
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps(native_record(START, "dbt-expert", "specialist-narrow", 1000, 10 * i,
                                                       {"global": 10 * i})) + "\n" for i in range(1, 8)))
    alone = [analyze(policy, log).to_dict() for log in (known, other)]
    with ThreadPoolExecutor(2) as pool:
        for _ in range(3):
            together = list(pool.map(lambda log: analyze(policy, log).to_dict(), (known, other)))
            assert together == alone

    monkeypatch.setattr(duck, "MEMORY_LIMIT", "300MB")
    con = duck.connect()
    assert con.execute("SELECT current_setting('memory_limit')").fetchone()[0] in ("286.1 MiB", "300.0 MB")
    con.close()


def test_duckdb_spills_into_a_folder_only_the_user_can_enter(tmp_path, monkeypatch):
    """DuckDB makes its spill folder readable by all (0755, files 0644) and writes into one another user made
    first: the folder is made 0700 here, and a link, a file or another user's folder in its place is passed
    over for a private folder of the process's own."""
    import stat
    import tempfile

    if not hasattr(os, "getuid"):
        pytest.skip("no file owners here")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    usual = tmp_path / f"ctxbudget-duckdb-{os.getuid()}"

    def spill() -> str:
        monkeypatch.setattr(duck, "_spill", [])
        con = duck.connect()
        try:
            setting = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
        finally:
            con.close()
        assert os.path.realpath(setting) == os.path.realpath(duck.spill_folder())
        return setting

    assert spill() == str(usual) and stat.S_IMODE(usual.stat().st_mode) == 0o700
    usual.chmod(0o755)  # left open (by DuckDB, before): the user's own, so closed again
    assert spill() == str(usual) and stat.S_IMODE(usual.stat().st_mode) == 0o700
    usual.rmdir()

    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o777)
    planted = [("link", lambda: usual.symlink_to(theirs)), ("file", lambda: usual.write_text("x"))]
    if os.geteuid() == 0:  # only root can give a folder to another user
        planted.append(("another user's", lambda: (usual.mkdir(mode=0o777), os.chown(usual, 65534, 65534))))
    for what, plant in planted:
        plant()
        chosen = spill()
        assert chosen != str(usual) and os.path.dirname(chosen) == str(tmp_path), what
        found = os.lstat(chosen)
        assert stat.S_ISDIR(found.st_mode) and found.st_uid == os.getuid(), what
        assert stat.S_IMODE(found.st_mode) == 0o700, what
        assert list(theirs.iterdir()) == [], what
        if usual.is_symlink() or usual.is_file():
            usual.unlink()
        else:
            usual.rmdir()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity here")
def test_duckdb_runs_a_thread_per_cpu_the_process_may_use(tmp_path):
    """A process pinned to one CPU (taskset, a container's CPU set) runs DuckDB with one thread, not one per CPU
    of the machine."""
    probe = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
             "from engine.analytics import duck; con = duck.connect(); "
             "print(duck.THREADS, con.execute(\"SELECT current_setting('threads')\").fetchone()[0])")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "1"]


def test_a_table_a_query_does_not_define_is_never_a_python_variable():
    """DuckDB's replacement scans would read a caller's variable named like a missing table (a relation, a data
    frame): the scans' connections turn them off, so a missing table is an error."""
    import duckdb

    all_runs = duckdb.sql("SELECT 42 AS planted")  # noqa: F841 - what a replacement scan would find
    con = duck.connect()
    with pytest.raises(duckdb.CatalogException):
        con.execute("SELECT * FROM all_runs").fetchall()
    con.close()


def test_a_location_that_names_nothing_is_an_os_error(policy, tmp_path):
    with pytest.raises(OSError):
        analyze(policy, tmp_path / "none-*.jsonl")
    with pytest.raises(OSError):
        analyze(policy, tmp_path)


PROBE = """
import sys, io, contextlib
from engine.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(sorted(m for m in sys.modules if m.split(".")[0] in ("duckdb", "_duckdb", "pyspark")))
"""


@pytest.mark.parametrize("args", [
    ["budget", "dbt-expert", "complex"],
    ["evaluate", "dbt-expert", "Add a date filter to the revenue dashboard", "--json"],
    ["pack", "--help"],
    ["hook", "--help"],
])
def test_commands_that_do_not_analyse_import_no_duckdb(args, tmp_path):
    if not (Path(commands_path[0]) / f"{args[0]}.py").exists():
        pytest.skip(f"no `{args[0]}` command in this tree")
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path), "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_analyze_does_use_duckdb(tmp_path):
    log = write_known_log(tmp_path / "k.jsonl")
    env = {**os.environ, "CTXBUDGET_CACHE_DIR": str(tmp_path), "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE, "analyze", "--log", str(log)], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    loaded = ast.literal_eval(done.stdout.strip())
    # DuckDB's engine (its C++ extension, `_duckdb`), without the `duckdb` package's Python relation API on top,
    # whose import took 0.07 s of the command's start (duck.duckdb_engine); the package where there is no such
    # extension
    engine = duck.duckdb_engine()
    assert engine.__name__ in loaded
    if engine.__name__ == "_duckdb":
        assert "duckdb" not in loaded and not any(m.startswith("duckdb.") for m in loaded)


def test_duckdb_engine_has_what_the_analytics_use():
    import duckdb

    engine = duck.duckdb_engine()
    for name in duck.ENGINE_NAMES:
        assert getattr(engine, name) is getattr(duckdb, name)  # the same functions and exception classes


ZONE_PROBE = """
import json, sys
from datetime import datetime, timezone
from engine import load_policy
from engine.analytics import analyze
from engine.cli import main

log, out = sys.argv[1:]
since = datetime(2026, 11, 1, 3, tzinfo=timezone.utc)
a = analyze(load_policy("default"), log, since=since, until=datetime(2026, 11, 30, tzinfo=timezone.utc), daily=True)
assert main(["export", "--log", log, "--to", out]) == 0
print(json.dumps([a.runs, a.daily]))
"""


def test_times_are_utc_whatever_the_machines_zone(policy, tmp_path):
    """DuckDB takes the zone of $TZ: a run's day (the report's runs per day, export's date partitions) was its
    day in the machine's zone, so the same log exported in two zones counted a run twice, and a timestamp written
    without a zone was taken in it (the Python reader takes it as UTC)."""
    log = tmp_path / "zones.jsonl"
    log.write_text("".join(json.dumps(native_record(datetime(2026, 11, day, 2, tzinfo=timezone.utc), "a", "p",
                                                    1000, 900, {"global": 900})) + "\n" for day in range(1, 5))
                   + json.dumps({**native_record(datetime(2026, 11, 5, 2, tzinfo=timezone.utc), "a", "p", 1000, 900,
                                                 {"global": 900}), "timestamp": "2026-11-01T02:30:00"}) + "\n")
    answers = {}
    for zone in ("UTC", "America/New_York", "Asia/Tokyo"):
        env = {**os.environ, "TZ": zone, "CTXBUDGET_CACHE_DIR": str(tmp_path / "cache")}
        out = tmp_path / "export"  # one folder for every zone: an export in another zone changes nothing
        done = subprocess.run([sys.executable, "-c", ZONE_PROBE, str(log), str(out)], env=env, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        answers[zone] = json.loads(done.stdout.splitlines()[-1])
        assert sorted(p.parent.name for p in out.rglob("*.parquet")) == [f"date=2026-11-0{d}" for d in range(1, 5)]
    # the four runs at 02:00Z are each on their UTC day; the one at 02:30 without a zone is UTC, before 03:00Z
    assert answers["UTC"] == [3, [["2026-11-02", "a", 1, 0], ["2026-11-03", "a", 1, 0], ["2026-11-04", "a", 1, 0]]]
    assert answers["America/New_York"] == answers["Asia/Tokyo"] == answers["UTC"]
    assert analyze(policy, out).runs == 5


# -- export: Parquet partitioned by date (and host), read back with the same answers --------------------------

def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_export_writes_parquet_by_date_idempotently(policy, tmp_path, capsys):
    from engine.cli import main

    log = _mangled(tmp_path)
    out = tmp_path / "parquet"
    assert main(["export", "--log", str(log), "--to", str(out), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["runs"], first["skipped_lines"], first["partitions"]) == (297, 25, 3)
    tree = _tree(out)
    assert sorted({name.split("/")[0] for name in tree}) == ["date=2025-10-01", "date=2025-10-02", "date=2025-10-03"]
    assert main(["export", "--log", str(log), "--to", str(out)]) == 0  # again: the same files, nothing added
    assert _tree(out) == tree
    from_parquet = analyze(policy, out).to_dict()
    from_jsonl = analyze(policy, log).to_dict()
    assert from_parquet["skipped_lines"] == 0
    for data in (from_parquet, from_jsonl):
        for key in ("log", "skipped_lines", "skipped"):
            del data[key]
    assert from_parquet == from_jsonl


def test_export_partitions_by_host_when_records_carry_one(policy, tmp_path):
    from engine.analytics import duck

    lines = write_known_log(tmp_path / "k.jsonl").read_text().splitlines()
    (tmp_path / "hosts.jsonl").write_text("".join(
        json.dumps(dict(json.loads(line), host=f"runner-{i % 2}")) + "\n" for i, line in enumerate(lines)))
    result = duck.export([str(tmp_path / "hosts.jsonl")], tmp_path / "out")
    assert result["partitions"] == 6
    assert {Path(f).parent.name for f in result["files"]} == {"host=runner-0", "host=runner-1"}
    only = analyze(policy, f"{tmp_path}/out/*/host=runner-1/*.parquet")
    assert only.runs == len(lines) // 2
    assert analyze(policy, tmp_path / "out").to_dict()["agents"] == analyze(policy, tmp_path / "k.jsonl").to_dict()["agents"]


def test_a_parquet_folder_honours_the_period(policy, tmp_path):
    from datetime import datetime, timezone

    from engine.analytics import duck

    log = write_known_log(tmp_path / "k.jsonl")
    duck.export([str(log)], tmp_path / "out")
    since, until = datetime(2025, 10, 2, tzinfo=timezone.utc), datetime(2025, 10, 3, 6, tzinfo=timezone.utc)
    assert analyze(policy, tmp_path / "out", since=since, until=until).to_dict()["agents"] == \
        analyze(policy, log, since=since, until=until).to_dict()["agents"]


def test_tier_provenance(policy, tmp_path, capsys):
    from engine.cli import main

    def run_at(tier, source, confidence, usage=0.5):
        record = native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, int(20000 * usage),
                               {"global": int(20000 * usage)}, tier=tier)
        return dict(record, tier_source=source, confidence=confidence)

    records = ([run_at("medium", "detected", 0.8)] * 6 + [run_at("medium", "given", None, 1.2)] * 2
               + [run_at("complex", "default", None)] + [native_record(START, "specialists/dbt-expert",
                                                                        "specialist-narrow", 20000, 100, {})])
    log = tmp_path / "p.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    tiers = analyze(policy, log).to_dict()["tiers"]
    assert list(tiers) == ["medium", "complex"]
    assert tiers["medium"] == {"runs": 9, "mean_usage": round((6 * 0.5 + 2 * 1.2 + 0.005) / 9, 4), "exceeded": 2,
                               "exceedance_rate": round(2 / 9, 4),
                               "sources": {"detected": 6, "given": 2, "default": 0, "unknown": 1},
                               "detected_share": round(6 / 9, 4), "given_share": round(2 / 9, 4),
                               "mean_confidence": 0.8}
    assert tiers["complex"]["sources"]["default"] == 1 and tiers["complex"]["mean_confidence"] is None
    assert main(["analyze", "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "tiers: where each run's tier came from" in out
    assert "medium      9  60.1 %       22.2 %    66.7 %  22.2 %             0.80" in out


SCOPES = (Path(__file__).parent / "data" / "usage-scopes-hostile.txt").read_text(encoding="utf-8").splitlines()
"""Scope values a usage record may hold (one JSON text a line): wrong types, -0.0, out of range, keys twice."""


def _with_scopes(tmp_path: Path, scopes: str) -> Path:
    good = json.dumps(native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, 10000,
                                    {"global": 10000}))
    odd = good.replace('"scopes": {"global": 10000}', f'"scopes": {scopes}')
    assert odd != good
    log = tmp_path / "u.jsonl"
    log.write_text(f"{good}\n{odd}\n{good}\n")
    return log


@pytest.mark.parametrize("scopes", SCOPES)
def test_scope_values_are_checked_alike_by_both_readers(policy, tmp_path, monkeypatch, scopes):
    log = _with_scopes(tmp_path, scopes)
    fast = analyze(policy, log).to_dict()
    assert duck.last_reader == "json"
    monkeypatch.setattr(duck, "FAST", False)
    assert analyze(policy, log).to_dict() == fast


@pytest.mark.parametrize("scopes", SCOPES)
def test_scope_values_as_a_json_loop_reads_them(policy, tmp_path, monkeypatch, scopes):
    log = _with_scopes(tmp_path, scopes)
    assert comparable(analyze(policy, log).to_dict()) == comparable(analyze_plain(policy, log, monkeypatch))


FIELDS = [tuple(line.split("\t")) for line in
          (Path(__file__).parent / "data" / "usage-fields-hostile.txt").read_text(encoding="utf-8").splitlines()]
"""Values a usage record's keys may hold (key TAB JSON text a line): at the edges of what the JSON reader's first
pass takes as a record written the usual way (fast_lines.sql), and past them."""


def _with_field(tmp_path: Path, key: str, value: str) -> Path:
    good = native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, 15000,
                         {"global": 3000, "agent_recent": 12000})
    odd = json.dumps(dict(good, **{key: "@@"})).replace('"@@"', value)
    log = tmp_path / "u.jsonl"
    log.write_text(f"{json.dumps(good)}\n{odd}\n{json.dumps(good)}\n")
    return log


@pytest.mark.parametrize("period", [False, True], ids=["all", "period"])
@pytest.mark.parametrize("key, value", FIELDS)
def test_record_values_are_read_alike_by_both_readers(policy, tmp_path, monkeypatch, key, value, period):
    """Each value gives the same answer from the two-pass JSON reader as from the line-by-line reader and from
    a plain json loop: the first pass takes only what the careful checks would take, with the same values."""
    log = _with_field(tmp_path, key, value)
    options = {"since": START - timedelta(days=1), "until": START + timedelta(days=1)} if period else {}
    fast = analyze(policy, log, **options).to_dict()
    reader = duck.last_reader
    monkeypatch.setattr(duck, "FAST", False)
    assert analyze(policy, log, **options).to_dict() == fast
    assert comparable(fast) == comparable(analyze_plain(policy, log, monkeypatch, **options))
    if key not in ("budget_allocated", "success"):  # a null the JSON reader cannot tell from a missing key
        assert reader == "json"


def _every_reader(policy, log: Path, monkeypatch) -> list[tuple[int, list[tuple[int, str]]]]:  # noqa: ANN001
    """(runs, [(line, reason) of the skipped lines]) from the JSON reader, the text reader and read_log, after
    checking the engine's answer against the json-loop oracle's."""
    from engine.usage import read_log

    answers = []
    for fast in (True, False):
        monkeypatch.setattr(duck, "FAST", fast)
        data = analyze(policy, log).to_dict()
        answers.append((data["runs"], [(s["line"], s["reason"]) for s in data["skipped"]]))
    assert comparable(data) == comparable(analyze_plain(policy, log, monkeypatch))
    reader = read_log(log)
    answers.append((len(list(reader)), [(s.line, s.reason) for s in reader.skipped]))
    return answers


_GOOD = json.dumps(native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, 15000,
                                 {"global": 15000})).encode()


def _odd(field: str, raw: bytes) -> bytes:
    return _GOOD.replace(b'"' + field.encode() + b'": ', b'"' + field.encode() + b'": "@@", "_": ', 1) \
        .replace(b'"@@"', b'"' + raw + b'"')


@pytest.mark.parametrize("lines, skipped", [
    ([_GOOD, _odd("error", b"\xff"), _GOOD], [(2, "not UTF-8 text")]),  # in a value no reader reads
    ([_GOOD, _odd("agent", b"dbt\xed\xa0\x80"), _GOOD], [(2, "not UTF-8 text")]),  # the UTF-8-like bytes of U+D800
    ([b'{"a": "\xc3"}', _GOOD, b'{"b": 1}'], [(1, "not UTF-8 text"), (3, "missing key 'budget'")]),  # not a record
    ([_GOOD, _odd("agent", b"ab\xc3")[:-2]], [(2, "torn line (the file ends in the middle of it)")]),  # cut in a char
    ([b"\xef\xbb\xbf" + _GOOD, _GOOD], []),  # a byte order mark that starts the file is not the line's
    ([_GOOD, b"\xef\xbb\xbf" + _GOOD], [(2, "not JSON (Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 "
                                           "(char 0))")]),
], ids=["ignored-value", "surrogate-bytes", "not-a-record", "torn", "bom-first", "bom-later"])
def test_a_line_that_is_not_utf8_is_skipped_alike_by_every_reader(policy, tmp_path, monkeypatch, lines, skipped):
    """Bytes that are not UTF-8 make a line not a record, for the JSON reader, the text reader and the Python
    reader alike, with the same reason (the text reader called every line it rejected overlong; the Python reader
    took the bytes of a surrogate and a byte order mark anywhere, as json.loads does)."""
    log = tmp_path / "u.jsonl"
    torn = any("torn" in reason for _, reason in skipped)  # the file ends in the middle of its last line
    log.write_bytes(b"\n".join(lines) + (b"" if torn else b"\n"))
    runs = len(lines) - len(skipped)
    assert _every_reader(policy, log, monkeypatch) == [(runs, skipped)] * 3


def test_the_hostile_encodings_log_gives_its_expected_answer_in_every_reader(policy, monkeypatch):
    """tests/data/usage-not-utf8.jsonl (a byte order mark at the start and later, bytes that are not UTF-8 in a
    value no reader reads and in an agent, a surrogate's UTF-8-like bytes, a last line cut inside a character):
    the runs and skipped lines its .expected.json names, from every reader."""
    data = Path(__file__).parent / "data"
    expected = json.loads((data / "usage-not-utf8.expected.json").read_text(encoding="utf-8"))
    answer = (expected["runs"], [tuple(skip) for skip in expected["skipped"]])
    assert _every_reader(policy, data / "usage-not-utf8.jsonl", monkeypatch) == [answer] * 3


@pytest.mark.parametrize("pct", ["true", "false", '"50"', "-1", "1e400", "1" + "0" * 400, "[50]"])
def test_a_seed_records_usage_pct_that_is_not_a_number_is_skipped_by_every_reader(policy, tmp_path, monkeypatch,
                                                                                    pct):
    """The seed's `usage_pct` is a number, as `usage` is: true is not 1 (Python's bool is an int: read_log took
    it as 1 %), and an integer past a double is not a usage (read_log raised OverflowError dividing it)."""
    from usage_synth import seed_record

    good = json.dumps(seed_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, 15000,
                                  {"global": 15000}))
    odd = json.dumps(dict(json.loads(good), usage_pct="@@")).replace('"@@"', pct)
    log = tmp_path / "u.jsonl"
    log.write_text(f"{good}\n{odd}\n{good}\n")
    assert _every_reader(policy, log, monkeypatch) == [(2, [(2, "usage must be a non-negative number")])] * 3


DUPLICATES = (Path(__file__).parent / "data" / "usage-duplicate-keys.txt").read_text(encoding="utf-8").splitlines()
"""Keys written twice in a usage record (one line: the pairs added to a record; the last holds a lone surrogate,
which makes the line not JSON)."""


@pytest.mark.parametrize("pair", DUPLICATES)
def test_a_key_written_twice_counts_with_its_first_value_in_every_reader(policy, tmp_path, monkeypatch, pair):
    """DuckDB's JSON reader takes a key's first value (json.loads the last): the line-by-line reader, the Python
    reader's decoding (engine.usage.log.loads_line) and the json loop take it too: the same answers."""
    good = native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, 15000, {"global": 15000})
    text = json.dumps({k: v for k, v in good.items() if k not in ("success", "usage", "exceeded", "scopes")})
    odd = text[:-1] + ", " + pair + "}"
    log = tmp_path / "u.jsonl"
    log.write_text(f"{json.dumps(good)}\n{odd}\n{json.dumps(good)}\n")
    fast = _alike_in_every_reader(policy, log, monkeypatch)
    if "\\ud800" in pair:
        assert fast["skipped_lines"] == 1
        with pytest.raises(ValueError, match="lone UTF-16 surrogate"):
            loads_line(odd)
    else:
        first = json.loads("{" + pair + "}", object_pairs_hook=lambda pairs: dict(reversed(pairs)))
        assert loads_line(odd).items() >= first.items()  # read_log's decoding: the first value of each key


@pytest.mark.parametrize("daily", [False, True])
def test_the_first_pass_takes_the_usual_records_and_rechecks_only_the_others(policy, tmp_path, monkeypatch, daily):
    """The first pass sums the usual records as it reads them (fast_sums.sql: no row per run), the report's runs
    per day too (a run's day is then part of the key); the torn line alone is read again."""
    log = write_known_log(tmp_path / "k.jsonl", "native")
    with log.open("a") as out:
        out.write('{"torn')
    calls = []
    recheck = duck._recheck
    monkeypatch.setattr(duck, "_recheck", lambda con, *a: calls.append(con.execute(
        "SELECT (SELECT count(*) FILTER (WHERE reason IS NULL) FROM all_runs), "
        "(SELECT count(*) FILTER (WHERE reason = 'unchecked') FROM all_runs), "
        "(SELECT coalesce(sum(runs) FILTER (WHERE unchecked_hash IS NULL), 0) FROM fast_sums), "
        "(SELECT coalesce(sum(runs) FILTER (WHERE unchecked_hash IS NOT NULL), 0) FROM fast_sums)").fetchone())
        or recheck(con, *a))
    data = analyze(policy, log, daily=daily).to_dict()
    # every record in the first pass; the torn line alone read again
    assert calls == [(0, 0, 295, 1)]
    assert (data["runs"], data["skipped_lines"], data["skipped"][0]["line"]) == (295, 1, 296)


def test_unweighted_scopes_keep_the_order_the_log_first_has_them(policy, tmp_path, monkeypatch):
    """Scopes an agent's profile does not weigh come in the order the log first has them, which the parallel
    first pass does not know: the runs are read again numbered when (and only when) that order decides."""
    records = [native_record(START + timedelta(minutes=i), "specialists/dbt-expert", "specialist-narrow", 20000,
                             9000, scopes) for i, scopes in enumerate(
        [{"global": 1000}] * 50 + [{"zeta": 1000, "global": 1000}] + [{"alpha": 1000, "zeta": 500}] * 30)]
    log = tmp_path / "u.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    numbered = []
    number_runs = duck.DuckScan._number_runs
    monkeypatch.setattr(duck.DuckScan, "_number_runs", lambda self: numbered.append(1) or number_runs(self))
    fast = analyze(policy, log).to_dict()
    scopes = list(fast["agents"]["specialists/dbt-expert"]["scopes"])
    weighted = list(policy.profiles["specialist-narrow"].weights)
    assert scopes == weighted + ["zeta", "alpha"] and numbered == [1]
    monkeypatch.setattr(duck, "FAST", False)
    assert analyze(policy, log).to_dict() == fast
    log.write_text("".join(json.dumps(r) + "\n" for r in records[:51]))  # one unweighted scope: no order to keep
    numbered.clear()
    analyze(policy, log)
    assert numbered == []


def test_the_runs_per_day_are_read_only_for_the_report(policy, tmp_path, monkeypatch):
    log = write_known_log(tmp_path / "k.jsonl", "native")
    assert analyze(policy, log).daily is None
    daily = analyze(policy, log, daily=True).daily
    assert sum(runs for _day, _agent, runs, _exceeded in daily) == 295
    # runs the first pass sums (their day part of the key) and runs it leaves to records.sql (nine scopes; a
    # timestamp without a zone, UTC), in and out of a period: the same days as a row per run gives
    with log.open("a") as out:
        for i in range(40):
            record = native_record(START + timedelta(hours=7 * i), "specialists/dbt-expert", "specialist-narrow",
                                   1000, 700 + 20 * i, {f"s{k}": 10 for k in range(9 if i % 3 == 0 else 2)})
            if i % 5 == 0:
                record["timestamp"] = record["timestamp"].rstrip("Z")
            out.write(json.dumps(record) + "\n")
    for period in ({}, {"since": START + timedelta(days=2, hours=5), "until": START + timedelta(days=9)}):
        monkeypatch.setattr(duck, "FAST", True)
        summed = analyze(policy, log, daily=True, **period).daily
        assert duck.last_reader == "json"
        monkeypatch.setattr(duck, "FAST", False)
        assert analyze(policy, log, daily=True, **period).daily == summed  # records.sql and daily.sql alone
        assert len({day for day, *_ in summed}) > 3 and any(exceeded for *_, exceeded in summed)


def test_a_log_of_the_seeds_records_is_read_once(policy, tmp_path, monkeypatch):
    """The seed's records are never taken by the first pass: a file that starts with one is read numbered, by
    records.sql, at once — not twice."""
    log = write_known_log(tmp_path / "k.jsonl", "seed")
    unchecked = []
    recheck = duck._recheck
    monkeypatch.setattr(duck, "_recheck", lambda con, *a: unchecked.append(con.execute(
        "SELECT count(*) FILTER (WHERE reason = 'unchecked'), count(*) FILTER (WHERE n IS NULL) FROM all_runs"
    ).fetchone()) or recheck(con, *a))
    assert analyze(policy, log).runs == 295
    assert unchecked == [(0, 0)] and duck.last_reader == "json"


# -- Parquet logs from many hands -------------------------------------------------------------------------------

PARQUET_ROWS = [tuple(line.split("\t")) for line in
                (Path(__file__).parent / "data" / "usage-parquet-hostile.txt").read_text(encoding="utf-8").splitlines()
                if line and not line.startswith("#")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The known log as one Parquet file, as `ctxbudget export` writes its rows (row order kept)."""
    import duckdb

    folder = tmp_path_factory.mktemp("exported")
    duck.export([str(write_known_log(folder / "k.jsonl"))], folder / "out")
    one = folder / "one.parquet"
    duckdb.connect().execute(f"COPY (SELECT * FROM read_parquet('{folder}/out/*/*.parquet', hive_partitioning = false) "
                             f"ORDER BY ran_at, agent) TO '{one}' (FORMAT parquet)")
    return one


def _rewritten(source: Path, target: Path, select: str, where: str = "true") -> Path:
    import duckdb

    duckdb.connect().execute(f"COPY (SELECT {select} FROM read_parquet('{source}', file_row_number = true) "
                             f"WHERE {where} ORDER BY file_row_number) TO '{target}' (FORMAT parquet)")
    return target


@pytest.mark.parametrize("column, value, reason", PARQUET_ROWS, ids=[f"{c}={v}"[:60] for c, v, _ in PARQUET_ROWS])
def test_a_parquet_row_that_is_not_a_run_is_skipped_counted_and_located(policy, exported, tmp_path, column, value,
                                                                        reason):
    """Each hostile row value: the row is skipped, counted and reported with its file and row number (or taken
    as a run, with the values a log line would give), and the other rows give what they give alone."""
    odd = _rewritten(exported, tmp_path / "odd.parquet", f"* EXCLUDE (file_row_number) REPLACE ("
                     f"CASE WHEN file_row_number = 1 THEN {value} ELSE {column} END AS {column})")
    data = analyze(policy, odd).to_dict()
    good = analyze(policy, exported).to_dict()
    if reason == "run":
        assert (data["runs"], data["skipped_lines"]) == (good["runs"], 0)
        if column in ("total", "ran_at", "confidence", "tier_source"):  # not trusted, or not read by analyze
            assert data["agents"] == good["agents"]
        return
    assert (data["runs"], data["skipped_lines"]) == (good["runs"] - 1, 1)
    assert data["skipped"] == [{"line": 2, "reason": f"{odd}: Parquet row 2: {reason}"}]
    rest = analyze(policy, _rewritten(exported, tmp_path / "rest.parquet",
                                      "* EXCLUDE (file_row_number)", "file_row_number <> 1")).to_dict()
    assert data["agents"] == rest["agents"] and data["overall"] == rest["overall"]


def test_many_bad_parquet_rows_after_bad_log_lines(policy, exported, tmp_path):
    """Bad rows are counted exactly; the first few are reported after the log's bad lines."""
    folder = tmp_path / "log"
    folder.mkdir()
    _rewritten(exported, folder / "b.parquet", "* EXCLUDE (file_row_number) REPLACE ("
               "CASE WHEN file_row_number % 2 = 0 THEN -1 ELSE budget END AS budget)")
    good = json.dumps(native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, 10000,
                                    {"global": 10000}))
    (folder / "a.jsonl").write_text(f"{good}\noops\n{good}\n")
    data = analyze(policy, folder).to_dict()
    rows = analyze(policy, exported).to_dict()["runs"]
    assert data["skipped_lines"] == 1 + (rows + 1) // 2
    assert data["runs"] == 2 + rows // 2
    assert data["skipped"][0] == {"line": 2, "reason": f"{folder / 'a.jsonl'}: not JSON (Expecting value: line 1 "
                                                       f"column 1 (char 0))"}
    assert data["skipped"][1] == {"line": 1, "reason": f"{folder / 'b.parquet'}: Parquet row 1: budget and tokens "
                                                       f"loaded must be non-negative integers"}
    assert len(data["skipped"]) == 20 and [s["line"] for s in data["skipped"][1:4]] == [1, 3, 5]


def _damaged(data: bytes) -> bytes:
    """A Parquet file's bytes with its first pages garbled and its footer left as it was."""
    garbled = bytearray(data)
    for i in range(8, min(400, len(data) // 2), 3):
        garbled[i] ^= 0xFF
    return bytes(garbled)


def _foreign(tmp_path: Path, name: str, select: str) -> Path:
    import duckdb

    path = tmp_path / name
    duckdb.connect().execute(f"COPY (SELECT {select}) TO '{path}' (FORMAT parquet)")
    return path


@pytest.mark.parametrize("make, message", [
    (lambda t, e: _foreign(t, "f.parquet", "1 AS a, 'x' AS b"),
     "f.parquet: not a usage log written by `ctxbudget export`: no column 'agent'"),
    (lambda t, e: _rewritten(e, t / "f.parquet", "* EXCLUDE (file_row_number) REPLACE (budget::VARCHAR AS budget)"),
     "f.parquet: not a usage log written by `ctxbudget export`: column 'budget' is VARCHAR, not BIGINT or "),
    (lambda t, e: _rewritten(e, t / "f.parquet", "* EXCLUDE (file_row_number, ran_at)"),
     "f.parquet: not a usage log written by `ctxbudget export`: no column 'ran_at'"),
    (lambda t, e: _rewritten(e, t / "f.parquet", "* EXCLUDE (file_row_number) REPLACE (confidence::VARCHAR AS "
                                                 "confidence)"),
     "f.parquet: not a usage log written by `ctxbudget export`: column 'confidence' is VARCHAR, not DOUBLE or FLOAT"),
    (lambda t, e: (t / "f.parquet").write_bytes(b"PAR1" + bytes(range(256)) * 2 + b"PAR1") or t / "f.parquet",
     "f.parquet: cannot read it as Parquet: "),
    (lambda t, e: (t / "f.parquet").write_bytes(b"") or t / "f.parquet", "f.parquet: cannot read it as Parquet: "),
    (lambda t, e: (t / "f.parquet").write_bytes(_damaged(e.read_bytes())) or t / "f.parquet",
     "f.parquet: cannot read it as Parquet: "),  # pages damaged, the footer sound: the error comes mid-read
])
def test_a_parquet_file_that_is_not_a_usage_log_is_an_error_naming_it(policy, exported, tmp_path, capsys, make,
                                                                       message):
    """A foreign or damaged Parquet file among a log's files: `ctxbudget: error: FILE: …`, exit 2, no traceback."""
    from engine.cli import main

    folder = tmp_path / "log"
    folder.mkdir()
    _rewritten(exported, folder / "a.parquet", "* EXCLUDE (file_row_number)")
    make(folder, exported)
    assert main(["analyze", "--log", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ctxbudget: error: {folder / message}") and "Traceback" not in err
    with pytest.raises(ValueError, match="f.parquet"):
        analyze(policy, folder)


def test_an_older_export_without_the_provenance_columns_is_read(policy, exported, tmp_path):
    old = _rewritten(exported, tmp_path / "old.parquet",
                     "* EXCLUDE (file_row_number, host, tier_source, confidence)")
    data, now = analyze(policy, old).to_dict(), analyze(policy, exported).to_dict()
    assert data["agents"] == now["agents"] and data["skipped_lines"] == 0
    assert all(t["sources"]["unknown"] == t["runs"] for t in data["tiers"].values())


def test_a_log_file_whose_name_is_not_utf8_is_an_error_naming_it(tmp_path, capsys):
    """DuckDB takes file names as UTF-8, so a name from other bytes cannot be opened: an error says which and
    what to do (exit 2), for a folder, the file itself and export's target."""
    from engine.cli import main

    folder = tmp_path / "log"
    folder.mkdir()
    good = json.dumps(native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, 10000,
                                    {"global": 10000}))
    (folder / "a.jsonl").write_text(good + "\n")
    odd = os.path.join(os.fsencode(folder), b"b\xff.jsonl")
    with open(odd, "w") as handle:
        handle.write(good + "\n")
    for argv in (["analyze", "--log", str(folder)], ["recommend", "--log", os.fsdecode(odd)],
                 ["export", "--log", str(folder / "a.jsonl"), "--to", os.fsdecode(os.path.join(os.fsencode(tmp_path),
                                                                                              b"out\xfe"))]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "\\xff.jsonl: the name is not UTF-8 text" in err or "out\\xfe: the name is not UTF-8 text" in err
        assert "Traceback" not in err
    assert not os.path.exists(os.path.join(os.fsencode(tmp_path), b"out\xfe"))


@pytest.mark.parametrize("limit, message", [
    ("abc", "CTXBUDGET_DUCKDB_MEMORY='abc' is not a memory size DuckDB takes (such as 1GB or 512MB)"),
    ("1e400GB", "CTXBUDGET_DUCKDB_MEMORY='1e400GB' is not a memory size DuckDB takes"),
    ("1KB", "DuckDB needed more memory than its limit, 1KB (set CTXBUDGET_DUCKDB_MEMORY higher)"),
])
def test_a_memory_limit_duckdb_cannot_take_or_keep_is_an_error(tmp_path, monkeypatch, capsys, limit, message):
    """$CTXBUDGET_DUCKDB_MEMORY comes from the environment: a value DuckDB refuses, or one too small for the log,
    is `ctxbudget: error: …` with what to do (exit 2), for the analytics commands and export alike."""
    from engine.cli import main

    monkeypatch.setattr(duck, "MEMORY_LIMIT", limit)
    log = write_known_log(tmp_path / "k.jsonl")
    for argv in (["analyze", "--log", str(log)], ["recommend", "--log", str(log), "--json"],
                 ["export", "--log", str(log), "--to", str(tmp_path / "out")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_export_that_cannot_write_its_files_is_an_error(tmp_path, monkeypatch, capsys):
    """DuckDB failing to write the Parquet files (a full disk; here a folder no one can write) is `ctxbudget:
    error: cannot export …` (exit 2), and the earlier export in the folder stays as it was."""
    import tempfile

    from engine.cli import main

    log = write_known_log(tmp_path / "k.jsonl")
    assert main(["export", "--log", str(log), "--to", str(tmp_path / "out")]) == 0
    before = _tree(tmp_path / "out")
    capsys.readouterr()
    monkeypatch.setattr(tempfile, "mkdtemp", lambda **options: "/proc/ctxbudget-cannot-write-here")
    assert main(["export", "--log", str(log), "--to", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"cannot export {log} to {tmp_path / 'out'}: cannot write the Parquet files: " in err
    assert "Traceback" not in err and _tree(tmp_path / "out") == before


def test_the_parquet_column_check_reads_types_as_any_engine_version_writes_them():
    """A type's spelling (DuckDB quotes `"name"` inside a STRUCT today; another version may not) decides
    nothing; the type does."""
    columns = {name: kinds[0] for name, kinds in duck.PARQUET_COLUMNS.items()}
    assert duck.schema_problem(columns, duck.PARQUET_COLUMNS, duck.PARQUET_OPTIONAL) is None
    columns["scope_list"] = "STRUCT(place BIGINT, name VARCHAR, tokens BIGINT)[]"
    assert duck.schema_problem(columns, duck.PARQUET_COLUMNS, duck.PARQUET_OPTIONAL) is None
    columns["scope_list"] = "STRUCT(place INTEGER, name VARCHAR, tokens INTEGER)[]"
    assert "column 'scope_list' is STRUCT(place INTEGER" in duck.schema_problem(columns, duck.PARQUET_COLUMNS,
                                                                               duck.PARQUET_OPTIONAL)
    columns = dict({name: kinds[0] for name, kinds in duck.PARQUET_COLUMNS.items()}, confidence="VARCHAR")
    assert duck.schema_problem(columns, duck.PARQUET_COLUMNS, duck.PARQUET_OPTIONAL) == \
        "column 'confidence' is VARCHAR, not DOUBLE or FLOAT"


# -- a log read twice: a log and its export, or two exports of one log, read together -------------------------

def _two_logs(tmp_path: Path) -> Path:
    logs = tmp_path / "logs"
    logs.mkdir()
    lines = write_known_log(tmp_path / "k.jsonl").read_text().splitlines(keepends=True)
    (logs / "a.jsonl").write_text("".join(lines[::2]))
    (logs / "b.jsonl").write_text("".join(lines[1::2]))
    return logs


def test_export_refuses_a_folder_that_holds_what_it_exports(tmp_path, capsys):
    from engine.cli import main

    logs = _two_logs(tmp_path)
    before = _tree(logs)
    assert main(["export", "--log", str(logs / "a.jsonl"), "--to", str(logs)]) == 2
    err = capsys.readouterr().err
    assert "a.jsonl is inside" in err and "count every run twice" in err and "Traceback" not in err
    assert _tree(logs) == before  # nothing written
    assert main(["export", "--log", str(logs / "a.jsonl"), "--to", str(tmp_path / "pq")]) == 0
    capsys.readouterr()
    before = _tree(tmp_path / "pq")  # Parquet compacted again into its own folder: the same trap
    assert main(["export", "--log", str(tmp_path / "pq"), "--to", str(tmp_path / "pq")]) == 2
    assert "is inside" in capsys.readouterr().err and _tree(tmp_path / "pq") == before


def test_a_log_read_with_its_export_is_an_error_naming_both(policy, tmp_path, capsys):
    from engine.cli import main

    logs = _two_logs(tmp_path)
    alone = analyze(policy, logs).to_dict()
    duck.export([str(logs / "a.jsonl")], logs / "parquet")  # below the logs' folder: allowed, read apart
    assert main(["analyze", "--log", str(logs)]) == 2
    err = capsys.readouterr().err
    assert "was exported from" in err and str(logs / "a.jsonl") in err and "count twice" in err
    assert analyze(policy, logs / "parquet").runs + analyze(policy, logs / "b.jsonl").runs == alone["runs"]
    both = analyze(policy, f"{logs}/parquet/*/*.parquet").to_dict()  # the export alone: no JSONL, one export
    assert both["runs"] == analyze(policy, logs / "a.jsonl").runs


def test_two_exports_of_one_log_read_together_are_an_error(policy, tmp_path, capsys):
    from engine.cli import main

    logs = _two_logs(tmp_path)
    duck.export([str(logs / "a.jsonl")], tmp_path / "one")
    duck.export([str(logs / "a.jsonl")], tmp_path / "again")  # the same log to another folder: same names
    duck.export(duck.log_files(f"{logs}/*.jsonl"), tmp_path / "glob")  # a set of logs that holds it
    duck.export([str(logs / "b.jsonl")], tmp_path / "other")
    for first, second, said in (("one", "again", "exports of the same log on the same machine"),
                                ("one", "glob", "were exported from the same log"),
                                ("glob", "other", "were exported from the same log")):
        location = f"{tmp_path}/[{first[0]}{second[0]}]*/*/*.parquet"
        assert main(["analyze", "--log", location]) == 2, (first, second)
        assert said in capsys.readouterr().err
    total = analyze(policy, f"{tmp_path}/[o]*/*/*.parquet")  # one + other: two logs, each once
    assert total.runs == analyze(policy, logs).runs


def test_exports_of_the_same_path_on_other_machines_are_a_fleet(policy, tmp_path, monkeypatch):
    import socket

    logs = _two_logs(tmp_path)
    for host in ("runner-1", "runner-2"):
        monkeypatch.setattr(socket, "gethostname", lambda host=host: host)
        duck.export([str(logs / "a.jsonl")], tmp_path / "fleet" / host)
    monkeypatch.setattr(socket, "gethostname", lambda: "runner-1")
    assert analyze(policy, tmp_path / "fleet").runs == 2 * analyze(policy, logs / "a.jsonl").runs
    runner_1 = duck.log_files(tmp_path / "fleet" / "runner-1")
    assert "was exported from" in duck.read_twice([str(logs / "a.jsonl"), *runner_1])  # its own log, on runner-1
    assert duck.read_twice([str(logs / "a.jsonl"), *duck.log_files(tmp_path / "fleet" / "runner-2")]) is None


HOSTILE_METADATA = [json.loads(line) for line in
                    (Path(__file__).parent / "data" / "usage-export-metadata-hostile.txt").read_text().splitlines()
                    if line and not line.startswith("#")] + ["[" * 100_000 + "]" * 100_000, '"' + "x" * 2_000_000 + '"']


@pytest.mark.parametrize("value", HOSTILE_METADATA, ids=range(len(HOSTILE_METADATA)))
def test_export_metadata_from_many_hands_is_taken_as_it_is(policy, tmp_path, value):
    import duckdb

    logs = _two_logs(tmp_path)
    out = duck.export([str(logs / "a.jsonl")], tmp_path / "pq")["files"]
    for i, file in enumerate(out):  # each file of the export again, under the same name, with the value
        again = tmp_path / "copy" / Path(file).relative_to(tmp_path / "pq")
        again.parent.mkdir(parents=True, exist_ok=True)
        duckdb.connect().execute(f"COPY (SELECT * FROM read_parquet(?)) TO '{again}' (FORMAT parquet, "
                                 f"KV_METADATA {{{duck.SOURCES_KEY}: {duck._quoted(value)}}})", [file])
    runs = analyze(policy, logs / "a.jsonl").runs
    assert analyze(policy, f"{tmp_path}/copy").runs == runs
    assert duck.read_twice([str(logs / "a.jsonl"), *duck.log_files(tmp_path / "copy")]) is None
    assert "was exported from" in duck.read_twice([str(logs / "a.jsonl"), *out])  # the export's own metadata


def test_only_json_columns_keep_a_values_kind(tmp_path):
    """Why the engine reads every key as JSON (sql/fast_lines.sql, records.sql), though a typed read of the scalar
    keys is faster (0.28 against 0.35 s for 1M records, read alone; bench_usage.py's floors): a typed column casts a value of the wrong JSON kind
    instead of rejecting it, and a VARCHAR column drops a string's quotes, so neither can tell a record from one
    the exact readers skip. If DuckDB ever rejects these, a faster exact reader may be possible: revisit."""
    import duckdb

    log = tmp_path / "kinds.jsonl"
    log.write_text('{"agent": "a", "budget": 12, "exceeded": true, "usage": 0.5}\n'
                   '{"agent": "b", "budget": "12", "exceeded": "true", "usage": "0.5"}\n'
                   '{"agent": "c", "budget": 1.6, "exceeded": 1, "usage": true}\n', encoding="utf-8")
    con = duckdb.connect()

    def read(kind: dict) -> list[tuple]:
        columns = "{" + ", ".join(f"'{key}': '{kind.get(key, 'VARCHAR')}'" for key in
                                  ("agent", "budget", "exceeded", "usage")) + "}"
        return con.execute(f"SELECT * FROM read_json(?, format = 'newline_delimited', columns = {columns}, "
                           "ignore_errors = true) ORDER BY agent", [str(log)]).fetchall()

    assert read({"budget": "BIGINT", "exceeded": "BOOLEAN", "usage": "DOUBLE"}) == [
        ("a", 12, True, 0.5), ("b", 12, True, 0.5), ("c", 2, True, 1.0)]  # all three read as records
    assert read({})[:2] == [("a", "12", "true", "0.5"), ("b", "12", "true", "0.5")]  # 12 and "12" alike
    assert read({"budget": "JSON", "exceeded": "JSON", "usage": "JSON"}) == [
        ("a", "12", "true", "0.5"), ("b", '"12"', '"true"', '"0.5"'), ("c", "1.6", "1", "true")]
    con.close()
    # and the engine, reading every key as JSON, takes a record whose values have the wrong kinds for none
    good = native_record(START, "dbt-expert", "specialist-narrow", 1000, 500, {"global": 500})
    bad = [dict(good, budget="1000"), dict(good, budget=1000.4), dict(good, exceeded=0), dict(good, usage=True)]
    log.write_text("".join(json.dumps(r) + "\n" for r in [good, *bad]), encoding="utf-8")
    found = analyze(engine.load_policy(), log)
    assert (found.runs, found.skipped_lines) == (1, 4)


def test_the_runs_table_has_the_columns_of_the_queries_that_fill_it():
    """``all_runs`` is made from a list of columns (no query to plan when every run was summed as the log was
    read): they are records.sql's, and fast_runs.sql's, in name and type."""
    con = duck.connect()
    try:
        con.execute(f"CREATE TEMP TABLE declared ({duck.RUN_COLUMNS})")
        declared = con.execute("DESCRIBE declared").fetchall()
        period = {"since": None, "until": None}
        con.execute("CREATE TEMP TABLE careful AS " + duck._with(duck.sql("records"), "fields", duck.NO_FIELDS), period)
        con.execute("CREATE TEMP TABLE usual AS " + duck._fast_runs(duck.NO_FIELDS), {**period, "times": True})
        careful, usual = con.execute("DESCRIBE careful").fetchall(), con.execute("DESCRIBE usual").fetchall()
    finally:
        con.close()
    assert [row[:2] for row in usual] == [row[:2] for row in declared]
    assert [row[:2] for row in careful] == [row[:2] for row in declared if row[0] != "unchecked_hash"]


@pytest.mark.parametrize("weighed", [True, False])
def test_runs_summed_as_they_are_read_answer_as_runs_kept_a_row_each(policy, tmp_path, monkeypatch, weighed):
    """The usual records are summed straight from the reader (fast_sums.sql): per group key, bin and list of
    scope names, the scope figures per place (up to 8; a record with more takes the careful path). Records of 1
    to 10 scopes in varied orders, runs that name no profile or loaded nothing, every tier source and
    confidence, several files: the same answer as with a row per run (the report's path) and as the line reader.
    With scopes the profiles weigh (and one more) the scope figures come from the sums per place; with ten
    scopes no profile weighs, the order they first appear in decides, and the runs are read again numbered."""
    import random

    rng = random.Random(5)
    names = ["global", "agent_recent", "agent_patterns", "extra"] if weighed else [f"s{i}" for i in range(10)]
    agents = [("specialists/dbt-expert", "specialist-narrow", 20000), ("roles/data-architect-role", "role-architect",
                                                                       90000), ("dbt-expert", "", 30000)]
    if not weighed:
        agents.append(("unknown/agent", "", 30000))
    numbered = []
    number_runs = duck.DuckScan._number_runs
    monkeypatch.setattr(duck.DuckScan, "_number_runs", lambda self: numbered.append(1) or number_runs(self))
    files = []
    for f in range(2):
        lines = []
        for i in range(400):
            agent, profile, budget = agents[i % len(agents)]
            count = min(len(names), rng.choice([1, 2, 3, 3, 3, 4, 8, 9, 10]))
            picked = rng.sample(names, count) if i % 5 else names[:count]
            loaded = 0 if i % 17 == 0 else rng.randrange(1, budget * 2)
            scopes = dict(zip(picked, [0] * count if loaded == 0 else [rng.randrange(0, 5000) for _ in picked]))
            record = native_record(START + timedelta(minutes=i + 1000 * f), agent, profile, budget, loaded, scopes,
                                   tier=rng.choice(["simple", "medium", "complex", "multi-system", ""]))
            if not profile:
                del record["profile"]
            if i % 4:
                record["tier_source"] = rng.choice(["detected", "given", "default", "other"])
                record["confidence"] = rng.choice([0.0, 0.35, 0.9, 1.0, 1.5, -0.2])
            if i % 11 == 0:
                record["success"] = False
            lines.append(json.dumps(record) + "\n")
        files.append(tmp_path / f"u{f}.jsonl")
        files[-1].write_text("".join(lines))
    summed = analyze(policy, tmp_path).to_dict()
    assert duck.last_reader == "json" and summed["runs"] == 800 and numbered == ([] if weighed else [1])
    per_run = analyze(policy, tmp_path, daily=True).to_dict()
    assert per_run == summed
    monkeypatch.setattr(duck, "FAST", False)
    assert analyze(policy, tmp_path).to_dict() == summed
    scopes = summed["agents"]["specialists/dbt-expert"]["scopes"]
    assert set(scopes) >= set(names) and sum(s["tokens"] for s in scopes.values()) > 0
    assert {t for t in summed["tiers"]} == {"simple", "medium", "complex", "multi-system", "(none)"}


@pytest.mark.parametrize("bounds", ["since", "until", "both"])
def test_runs_outside_the_period_are_counted_not_summed(policy, tmp_path, monkeypatch, bounds):
    """With a period, fast_sums.sql only counts the usual records outside it (the line checks need their
    number, and whether they say `success`): one row of NULL keys per file, with no bins and no scope names,
    rather than their values read and summed per group for nothing. The answers are those of a row per run
    and of the line reader; the torn lines are still found and counted."""
    import random

    rng = random.Random(7)
    agents = [("specialists/dbt-expert", "specialist-narrow", 20000), ("dbt-expert", "", 30000)]
    for f in range(2):
        lines = []
        for i in range(120):
            agent, profile, budget = agents[i % 2]
            record = native_record(START + timedelta(hours=i), agent, profile, budget, rng.randrange(0, budget * 2),
                                   {"global": rng.randrange(0, 9000), "agent_recent": rng.randrange(0, 9000)})
            if not profile:
                del record["profile"]
            if f == 1:  # a file that never says `success` (else the line reader would read it: see _checked)
                del record["success"]
            lines.append(json.dumps(record) + "\n")
        lines.insert(50, '{"torn"\n')
        (tmp_path / f"u{f}.jsonl").write_text("".join(lines))
    period = {"since": START + timedelta(hours=30), "until": START + timedelta(hours=90)}
    if bounds != "both":
        period = {bounds: period[bounds]}
    seen = []
    recheck = duck._recheck
    monkeypatch.setattr(duck, "_recheck", lambda con, *a: seen.append(con.execute(
        "SELECT in_period, count(*), sum(runs), count(agent_json), count(key_budget), sum(len(scope_names)), "
        "sum(coalesce(len(bins), 0) + coalesce(len(big_bins), 0)), sum(success_unsaid) FROM fast_sums "
        "WHERE unchecked_hash IS NULL GROUP BY ALL ORDER BY ALL").fetchall()) or recheck(con, *a))
    summed = analyze(policy, tmp_path, **period).to_dict()
    assert duck.last_reader == "json"
    inside = summed["runs"]
    outside = 240 - inside
    assert 0 < inside < 240 and summed["skipped_lines"] == 2
    (out_rows, in_rows), = [sorted(rows) for rows in seen]
    assert out_rows[:7] == (False, 2, outside, 0, 0, 0, 0)  # one row a file; nothing read but the count
    assert in_rows[0] is True and in_rows[2] == inside and in_rows[6] == inside
    assert out_rows[7] + in_rows[7] == 120  # success not said: counted inside and outside the period
    assert analyze(policy, tmp_path, daily=True, **period).to_dict() == summed
    monkeypatch.setattr(duck, "FAST", False)
    assert analyze(policy, tmp_path, **period).to_dict() == summed

def test_the_usage_bins_are_listed_per_group_not_a_key_of_the_sums(policy, tmp_path, monkeypatch):
    """fast_sums.sql sums a group's runs in one row whatever their usage (a usage bin per key would make ~80,000
    rows of sums out of ~100 on a million runs): each row lists its runs' bins as USMALLINT, and the bins past
    one (usage beyond 65.535) apart, exactly. The median, p90, quartiles and lowest bin come out as the
    nearest rank over the bins, as with a row per run and as the line reader reads them."""
    import math

    usages = [0.1, 0.2, 0.0005, 0.0004, 65.5344, 65.535, 65.5354, 65.5355, 65.536, 2147483.6474, 2147483.6475, 3e6,
              5e12, 1e14, 1e14, 999999999999999.9] + [round(i / 997, 6) for i in range(60)]
    lines = []
    for i, usage in enumerate(usages):
        record = native_record(START + timedelta(minutes=i), "specialists/dbt-expert", "specialist-narrow", 20000,
                               9000, {"global": 9000})
        record["usage"] = usage
        lines.append(json.dumps(record) + "\n")
    # usage not given: loaded / budget, a big bin too
    record = native_record(START, "specialists/dbt-expert", "specialist-narrow", 1, 10 ** 14, {"global": 1})
    del record["usage"]
    lines.append(json.dumps(record) + "\n")
    usages.append(10 ** 14 / 1)
    # and a record the careful checks read (nine scopes): its bin is counted by bins.sql
    record = native_record(START, "specialists/dbt-expert", "specialist-narrow", 20000, 9000,
                           {f"s{i}": 1000 for i in range(9)})
    record["usage"] = 2.5
    lines.append(json.dumps(record) + "\n")
    usages.append(2.5)
    log = tmp_path / "u.jsonl"
    log.write_text("".join(lines))
    seen = []
    recheck = duck._recheck
    monkeypatch.setattr(duck, "_recheck", lambda con, *a: seen.append(
        (con.execute("SELECT * FROM fast_sums LIMIT 0").description, con.execute(
            "SELECT count(*), sum(len(bins)), sum(coalesce(len(big_bins), 0)) FROM fast_sums "
            "WHERE unchecked_hash IS NULL").fetchone()))
        or recheck(con, *a))
    analysis = analyze(policy, log)
    summed = analysis.to_dict()
    (columns, counts), = seen
    names = [c[0] for c in columns]
    assert "bin" not in names and {"bins", "big_bins"} <= set(names)
    bins = sorted(math.floor(u * 1000 + 0.5) for u in usages)
    big = [b for b in bins if b > 65535]
    assert counts == (1, len(bins) - 1 - len(big), len(big)) and 6 <= len(big) < len(bins)
    stats = analysis.overall
    n = len(bins)
    assert stats.runs == n and stats.max_usage == 999999999999999.9 and stats.min_usage == bins[0] / 1000
    for got, q in ((stats.q1_usage, 0.25), (stats.median_usage, 0.5), (stats.q3_usage, 0.75),
                   (stats.p90_usage, 0.9)):
        assert got == bins[math.ceil(q * n) - 1] / 1000, q
    assert stats.median_usage < 65.535 < stats.p90_usage  # the p90 is a big bin
    assert analyze(policy, log, daily=True).to_dict() == summed  # a row per run: bins.sql
    monkeypatch.setattr(duck, "FAST", False)
    assert analyze(policy, log).to_dict() == summed
