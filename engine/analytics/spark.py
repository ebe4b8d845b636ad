"""The same SQL on Spark, for fleets: ``analyze --engine spark`` (the ``[spark]`` extra, pyspark; Java 17).

Spark reads Parquet — what ``ctxbudget export`` writes, locally or in object storage a cluster reaches — and
runs ``sql/groups.sql``, ``scopes.sql``, ``figures.sql``, ``scope_figures.sql``, ``profile_runs.sql``,
``tiers.sql`` and ``daily.sql`` transpiled from DuckDB's dialect to Spark's by sqlglot, so the figures have one
definition. Reading JSONL lines (``records.sql``) stays with DuckDB: export first. Local mode (``local[*]``)
unless ``--spark-master URL`` names a cluster.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache
from typing import Any, Sequence

from engine.analytics.duck import figures_from_rows, is_parquet, sql, tier_rows

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


AGENT_KEYS = ("agent STRING, profile STRING, key_tier STRING, key_budget BIGINT, name STRING, run_profile STRING, "
              "is_current BOOLEAN")
WEIGHTS = "name STRING, scope STRING, weight DOUBLE, place BIGINT"


class SparkScan:
    """The runs of the Parquet ``files``, summed per group key by Spark (the interface of ``duck.DuckScan``)."""

    skipped_lines = 0  # Parquet written by `ctxbudget export` holds runs only
    skipped: list = []

    def __init__(self, files: Sequence[str], since: datetime | None, until: datetime | None,
                 master: str | None = None) -> None:
        from pyspark.sql import functions as F

        others = [f for f in files if not is_parquet(f)]
        if others:
            raise ValueError(f"the Spark engine reads Parquet; {others[0]} is not (`ctxbudget export --to DIR` "
                             f"writes it, or use --engine duckdb)")
        self.spark = spark = session(master)
        spark.sparkContext.setLogLevel("ERROR")
        runs = (spark.read.option("mergeSchema", "true").parquet(*files)
                .withColumn("file", F.input_file_name()).withColumn("n", F.lit(None).cast("bigint")))
        if since is not None:
            runs = runs.where(F.col("ran_at") >= F.lit(since))
        if until is not None:
            runs = runs.where(F.col("ran_at") < F.lit(until))
        runs.createOrReplaceTempView("runs")
        spark.sql(spark_sql("groups")).cache().createOrReplaceTempView("groups")
        spark.sql(spark_sql("scopes")).cache().createOrReplaceTempView("scope_sums")

    def __enter__(self) -> "SparkScan":
        return self

    def __exit__(self, *exc: object) -> None:
        for view in ("groups", "scope_sums"):
            self.spark.catalog.dropTempView(view)

    def _rows(self, name: str) -> list[tuple]:
        return [tuple(row) for row in self.spark.sql(spark_sql(name)).collect()]

    def keys(self) -> list[tuple]:
        return [tuple(row) for row in self.spark.sql(
            "SELECT DISTINCT agent, profile, key_tier, key_budget FROM groups").collect()]

    def figures(self, agent_keys: Sequence[Any], weights: Sequence[Any]) -> Any:
        spark = self.spark
        spark.createDataFrame([tuple(k) for k in agent_keys], AGENT_KEYS).createOrReplaceTempView("agent_keys")
        spark.createDataFrame([tuple(w) for w in weights], WEIGHTS).createOrReplaceTempView("weights")
        return figures_from_rows(self._rows("figures"), self._rows("scope_figures"), self._rows("profile_runs"))

    def tiers(self) -> dict[str, dict]:
        return tier_rows(self._rows("tiers"))

    def daily(self) -> list[tuple[str, str, int, int]]:
        return self._rows("daily")
