"""The same SQL on Spark, for fleets: ``analyze --engine spark`` (the ``[spark]`` extra, pyspark; Java 17).

Spark reads Parquet — what ``ctxbudget export`` writes, locally or in object storage a cluster reaches — and
runs ``sql/groups.sql``, ``scopes.sql``, ``tiers.sql`` and ``daily.sql`` transpiled from DuckDB's dialect to
Spark's by sqlglot, so the figures have one definition. Reading JSONL lines (``records.sql``) stays with DuckDB:
export first. Local mode (``local[*]``) unless ``--spark-master URL`` names a cluster.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache
from typing import Any, Sequence

from engine.analytics.duck import fold, is_parquet, sql, tier_rows

DEFAULT_MASTER = "local[*]"


@lru_cache(maxsize=None)
def spark_sql(name: str) -> str:
    """``sql/NAME.sql`` in Spark's dialect (sqlglot)."""
    import sqlglot

    return sqlglot.transpile(sql(name), read="duckdb", write="spark")[0]


def session(master: str | None = None) -> Any:
    """The SparkSession (one per process; created on first use)."""
    from pyspark.sql import SparkSession

    return (SparkSession.builder.master(master or os.environ.get("CTXBUDGET_SPARK_MASTER") or DEFAULT_MASTER)
            .appName("ctxbudget")
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.ui.enabled", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.ui.showConsoleProgress", "false")  # progress bars would land in --json output
            .getOrCreate())


def scan_files(files: Sequence[str], since: datetime | None, until: datetime | None,
               master: str | None = None) -> Any:
    """Fold the runs of the Parquet ``files`` into a :class:`~engine.analytics.scan.LogScan` with Spark."""
    from pyspark.sql import functions as F

    from engine.analytics.scan import LogScan

    others = [f for f in files if not is_parquet(f)]
    if others:
        raise ValueError(f"the Spark engine reads Parquet; {others[0]} is not (`ctxbudget export --to DIR` writes "
                         f"it, or use --engine duckdb)")
    result = LogScan()
    if not files:
        return result
    spark = session(master)
    spark.sparkContext.setLogLevel("ERROR")
    runs = (spark.read.option("mergeSchema", "true").parquet(*files)
            .withColumn("file", F.input_file_name()).withColumn("n", F.lit(None).cast("bigint")))
    if since is not None:
        runs = runs.where(F.col("ran_at") >= F.lit(since))
    if until is not None:
        runs = runs.where(F.col("ran_at") < F.lit(until))
    runs.createOrReplaceTempView("runs")
    fold(result, [tuple(r) for r in spark.sql(spark_sql("groups")).collect()],
         [tuple(r) for r in spark.sql(spark_sql("scopes")).collect()])
    result.tiers = tier_rows([tuple(r) for r in spark.sql(spark_sql("tiers")).collect()])
    result.daily = [tuple(r) for r in spark.sql(spark_sql("daily")).collect()]
    return result
