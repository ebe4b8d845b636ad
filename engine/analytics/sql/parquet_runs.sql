-- The runs of Parquet files written by `ctxbudget export` (records.sql's columns, already checked), in the
-- shape records.sql gives. Parameters: $files (a list of paths or URLs), $since, $until.
SELECT filename AS file, NULL::BIGINT AS n, NULL::VARCHAR AS line, NULL::VARCHAR AS reason,
       agent, profile, tier, budget, tokens_loaded, usage, exceeded, success,
       list_transform(scope_list, lambda s: s.name) AS scope_names,
       list_transform(scope_list, lambda s: s.tokens) AS scope_values, total, host, tier_source, confidence, ran_at, true AS in_period,
       false AS success_unsaid
FROM read_parquet($files, hive_partitioning = true, union_by_name = true, filename = true)
WHERE ($since IS NULL OR ran_at >= $since) AND ($until IS NULL OR ran_at < $until)
