"""The same SQL on Spark, for fleets: ``analyze --engine spark`` (the ``[spark]`` extra, pyspark; Java 17).

Spark reads Parquet — what ``ctxbudget export`` writes, locally or in object storage a cluster reaches — and
runs ``sql/groups.sql``, ``bins.sql``, ``scopes.sql``, ``figures.sql``, ``scope_figures.sql``, ``profile_runs.sql``,
``tiers.sql`` and ``daily.sql`` transpiled from DuckDB's dialect to Spark's by sqlglot, so the figures have one
definition. Reading JSONL lines (``records.sql``) stays with DuckDB: export first. Local mode (``local[*]``)
unless ``--spark-master URL`` names a cluster.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache
from typing import Any, Sequence

from engine.analytics.duck import (first_line, figures_from_rows, is_parquet, read_twice, schema_problem, sql,
                                   tier_rows)

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


SPARK_COLUMNS = {  # duck.PARQUET_COLUMNS in Spark's names
    "agent": ("string",), "profile": ("string",), "tier": ("string",),
    "budget": ("bigint", "int", "smallint", "tinyint"), "tokens_loaded": ("bigint", "int", "smallint", "tinyint"),
    "usage": ("double", "float"), "exceeded": ("boolean",), "success": ("boolean",),
    "scope_list": ("array<struct<place:bigint,name:string,tokens:bigint>>",), "ran_at": ("timestamp",),
}
SPARK_OPTIONAL = {"host": ("string",), "tier_source": ("string",), "confidence": ("double", "float")}


class _read_errors:
    """Spark's errors reading the files (a damaged or foreign file: pyspark and py4j exceptions) as ValueError,
    which the CLI reports as `ctxbudget: error: …` (exit 2)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: Any, tb: Any) -> bool:
        if exc is None or isinstance(exc, ValueError) or not type(exc).__module__.startswith(("pyspark", "py4j")):
            return False
        raise ValueError(f"cannot read the Parquet files of the log: {first_line(exc)}") from None


AGENT_KEYS = ("agent STRING, profile STRING, key_tier STRING, key_budget BIGINT, name STRING, run_profile STRING, "
              "is_current BOOLEAN")
WEIGHTS = "name STRING, scope STRING, weight DOUBLE, place BIGINT"


class SparkScan:
    """The runs of the Parquet ``files``, summed per group key by Spark (the interface of ``duck.DuckScan``)."""

    skipped: list = []  # the rows that are not runs are counted (skipped_lines); Spark gives no row numbers

    def __init__(self, files: Sequence[str], since: datetime | None, until: datetime | None,
                 master: str | None = None) -> None:
        from pyspark.sql import functions as F

        others = [f for f in files if not is_parquet(f)]
        if others:
            raise ValueError(f"the Spark engine reads Parquet; {others[0]} is not (`ctxbudget export --to DIR` "
                             f"writes it, or use --engine duckdb)")
        twice = read_twice(files)
        if twice is not None:
            raise ValueError(twice)
        self.spark = spark = session(master)
        spark.sparkContext.setLogLevel("ERROR")
        with _read_errors():
            rows = spark.read.option("mergeSchema", "true").parquet(*files).withColumn("filename",
                                                                                    F.input_file_name())
            problem = schema_problem({f.name: f.dataType.simpleString() for f in rows.schema.fields}, SPARK_COLUMNS,
                                     SPARK_OPTIONAL)
            if problem is not None:
                raise ValueError(f"the Parquet files of the log are not a usage log written by `ctxbudget export`: "
                                 f"{problem}")
            for name, kinds in SPARK_OPTIONAL.items():  # older exports lack them
                if name not in rows.columns:
                    rows = rows.withColumn(name, F.lit(None).cast(kinds[0]))
            if since is not None:
                rows = rows.where(F.col("ran_at") >= F.lit(since))
            if until is not None:
                rows = rows.where(F.col("ran_at") < F.lit(until))
            rows.createOrReplaceTempView("parquet_rows")
            checked = spark.sql(spark_sql("parquet_checks")).cache()
            self.skipped_lines = checked.where(F.col("reason").isNotNull()).count()
            # a file's own total is not trusted: the sum of its scopes' tokens, as DuckDB works it out
            runs = (checked.where(F.col("reason").isNull())
                    .withColumn("total", F.aggregate(F.col("scope_list"), F.lit(0).cast("decimal(38,0)"),
                                                     lambda sum_, s: sum_ + s["tokens"].cast("decimal(38,0)")))
                    .withColumn("file", F.col("filename")).withColumn("n", F.lit(None).cast("bigint")))
            runs.createOrReplaceTempView("runs")
            spark.sql(spark_sql("groups")).cache().createOrReplaceTempView("groups")
            spark.sql(spark_sql("bins")).cache().createOrReplaceTempView("group_bins")
            spark.sql(spark_sql("scopes")).cache().createOrReplaceTempView("scope_sums")

    def __enter__(self) -> "SparkScan":
        return self

    def __exit__(self, *exc: object) -> None:
        for view in ("groups", "group_bins", "scope_sums"):
            self.spark.catalog.dropTempView(view)

    def _rows(self, name: str) -> list[tuple]:
        with _read_errors():
            return [tuple(row) for row in self.spark.sql(spark_sql(name)).collect()]

    def keys(self) -> list[tuple]:
        with _read_errors():
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
