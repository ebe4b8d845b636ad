-- The runs: the usage records in the period, from the table `all_runs` (records.sql, parquet_runs.sql), with
-- their scopes as one list [{place, name, tokens}] in the record's order (the shape Parquet keeps them in).
SELECT *,
       CAST(list_zip(range(1, len(scope_names) + 1), scope_names, scope_values)
            AS STRUCT(place BIGINT, name VARCHAR, tokens BIGINT)[]) AS scope_list
FROM all_runs
WHERE reason IS NULL AND in_period
