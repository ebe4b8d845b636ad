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
