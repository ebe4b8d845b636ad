"""The same SQL on Spark: a known-answer log, exported to Parquet, gives identical answers on both engines."""

from __future__ import annotations

import shutil
import subprocess

import pytest

import engine
from engine.analytics import analyze, duck
from usage_synth import write_known_log

pytestmark = pytest.mark.slow

pytest.importorskip("pyspark", reason="the Spark engine needs the [spark] extra (pyspark)")
pytest.importorskip("sqlglot", reason="the Spark engine needs the [spark] extra (sqlglot)")
if shutil.which("java") is None or subprocess.run(["java", "-version"], capture_output=True).returncode != 0:
    pytest.skip("Spark needs Java 17 (.ci/run installs openjdk-17-jre-headless with apt-get)", allow_module_level=True)


@pytest.fixture(scope="module")
def spark():
    """One SparkSession (local mode) for the module: starting one takes seconds."""
    from engine.analytics import spark as spark_engine

    session = spark_engine.session("local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark")
    for fmt in ("native", "seed"):
        log = write_known_log(folder / f"{fmt}.jsonl", fmt)
        duck.export([str(log)], folder / fmt)
    return folder


@pytest.mark.parametrize("fmt", ["native", "seed"])
def test_spark_gives_the_answers_duckdb_gives(spark, parquet, fmt):
    policy = engine.load_policy()
    on_duckdb = analyze(policy, parquet / fmt).to_dict()
    on_spark = analyze(policy, parquet / fmt, engine="spark").to_dict()
    assert on_spark == on_duckdb
    assert on_duckdb["agents"] == analyze(policy, parquet / f"{fmt}.jsonl").to_dict()["agents"]
    assert on_spark["agents"]["specialists/dbt-expert"]["exceeded"] == 30


def test_spark_reads_parquet_only(spark, parquet, capsys):
    from engine.cli import main

    assert main(["analyze", "--log", str(parquet / "native.jsonl"), "--engine", "spark"]) == 2
    assert "the Spark engine reads Parquet" in capsys.readouterr().err


def test_spark_refuses_two_exports_of_one_log(spark, parquet, tmp_path, capsys):
    from engine.cli import main

    shutil.copytree(parquet / "native", tmp_path / "one" / "native")
    shutil.copytree(parquet / "native", tmp_path / "two" / "native")
    assert main(["analyze", "--log", str(tmp_path), "--engine", "spark"]) == 2
    assert "exports of the same log on the same machine" in capsys.readouterr().err


def _hostile(parquet, target):
    """The native export as one Parquet file with a hostile value in every seventh row (each kind in turn)."""
    import duckdb

    values = {  # column: the value put in (rows parquet_checks.sql skips, and a total that is not trusted)
        "agent": "''", "budget": "-1", "usage": "'nan'::DOUBLE", "scope_list": "[{'place': 1, 'name': 'g', "
        "'tokens': -5}]", "exceeded": "NULL", "tier": "NULL", "total": "-99"}
    replace = ", ".join(f"CASE WHEN file_row_number % 7 = 0 AND (file_row_number / 7) % {len(values)} = {i} "
                        f"THEN {value} ELSE {column} END AS {column}" for i, (column, value) in enumerate(values.items()))
    duckdb.connect().execute(
        f"COPY (SELECT * EXCLUDE (file_row_number) REPLACE ({replace}) FROM read_parquet('{parquet}/native/*/*.parquet', "
        f"hive_partitioning = false, file_row_number = true) ORDER BY ran_at, agent) TO '{target}' (FORMAT parquet)")
    return target


def test_spark_skips_the_rows_duckdb_skips(spark, parquet, tmp_path):
    """A Parquet file from many hands: both engines skip the same rows (parquet_checks.sql) and give the same
    figures for the others; DuckDB also says where they are."""
    policy = engine.load_policy()
    log = _hostile(parquet, tmp_path / "hostile.parquet")
    on_duckdb = analyze(policy, log).to_dict()
    on_spark = analyze(policy, log, engine="spark").to_dict()
    assert on_duckdb["skipped_lines"] > 10 and on_duckdb["skipped"][0]["reason"].startswith(f"{log}: Parquet row ")
    assert on_spark["skipped_lines"] == on_duckdb["skipped_lines"] and on_spark["skipped"] == []
    for key in ("skipped",):
        del on_duckdb[key], on_spark[key]
    assert on_spark == on_duckdb


def test_spark_refuses_a_parquet_file_that_is_not_a_usage_log(spark, tmp_path, capsys):
    import duckdb

    from engine.cli import main

    duckdb.connect().execute(f"COPY (SELECT 1 AS a) TO '{tmp_path / 'f.parquet'}' (FORMAT parquet)")
    (tmp_path / "g.parquet").write_bytes(b"PAR1" + bytes(range(256)) + b"PAR1")
    for name, message in (("f.parquet", "not a usage log written by `ctxbudget export`: no column 'agent'"),
                          ("g.parquet", "cannot read the Parquet files of the log: ")):
        assert main(["analyze", "--log", str(tmp_path / name), "--engine", "spark"]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
