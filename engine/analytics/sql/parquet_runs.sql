-- The runs of Parquet files written by `ctxbudget export`, in the shape records.sql gives: each row as
-- parquet_checks.sql finds it (a row that is not a usage record keeps its reason and row number, `n`, and is
-- skipped, counted and reported), its total worked out again from its scopes, as for a log line.
--
-- Input: the relation `checked` (parquet_checks.sql over duck.py's read of the files, with file_row_number and
-- the optional columns no file has as NULL). Parameters: $since, $until.
WITH in_period AS (
    SELECT * FROM checked WHERE ($since IS NULL OR ran_at >= $since) AND ($until IS NULL OR ran_at < $until)
)
SELECT filename AS file, CASE WHEN reason IS NOT NULL THEN file_row_number + 1 END AS n, NULL::VARCHAR AS line,
       reason, agent, profile, tier, CAST(budget AS BIGINT) AS budget,
       CAST(tokens_loaded AS BIGINT) AS tokens_loaded, CAST(usage AS DOUBLE) AS usage, exceeded, success,
       CASE WHEN reason IS NULL THEN list_transform(scope_list, lambda s: s.name) ELSE [] END AS scope_names,
       CASE WHEN reason IS NULL THEN list_transform(scope_list, lambda s: s.tokens) ELSE [] END AS scope_values,
       CASE WHEN reason IS NULL  -- a file's own total is not trusted
            THEN CAST(coalesce(list_sum(list_transform(scope_list, lambda s: s.tokens)), 0) AS DECIMAL(38, 0))
       END AS total,
       host, tier_source, CAST(confidence AS DOUBLE) AS confidence, ran_at, true AS in_period,
       false AS success_unsaid
FROM in_period
