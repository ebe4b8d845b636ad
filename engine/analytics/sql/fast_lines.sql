-- Which lines of a usage log are records of ours written the usual way: `fast` when the line's values pass the
-- cheap tests of `plain_record` (macros.sql) and its scopes, if any, are an object of at most 8 whole numbers
-- below 10^15 with distinct keys free of escapes (`scope_keys`, their names; fast_sums.sql sums 8 places). Every such line records.sql reads as a usage
-- record, with the values fast_runs.sql gives it; every other line takes records.sql's careful checks.
--
-- Input: the relation `fields` (duck.py: DuckDB's JSON reader; `n` is NULL when the lines are read unnumbered,
-- which lets the reader run in parallel). Output: `fields`' columns, scope_keys, line_time and fast.
-- Parameters: $since, $until (as records.sql).
WITH keyed AS (
    SELECT *,
           CASE WHEN regexp_full_match(j_scopes::VARCHAR,
                                       '\{"[^"\\]*":(0|[1-9][0-9]{0,14})(,"[^"\\]*":(0|[1-9][0-9]{0,14}))*\}')
                THEN json_keys(j_scopes) END AS scope_keys,
           -- the line's time when a period is given (NULL else): plain_record and fast_sums.sql / fast_runs.sql
           -- take it from here, so that it is read once (parsing and casting it took 0.13 CPU-seconds a time
           -- on 1M lines)
           CASE WHEN $since IS NOT NULL OR $until IS NOT NULL
                THEN try_cast(j_timestamp ->> '$' AS TIMESTAMPTZ) END AS line_time
    FROM fields
)
SELECT *,
       coalesce(plain_record(j_budget_allocated, j_timestamp, j_agent, j_profile, j_tier, j_budget,
                             j_tokens_loaded, j_usage, j_exceeded, j_success, $since, $until, line_time)
                AND (j_scopes IS NULL OR CASE len(scope_keys)  -- distinct keys (few: compared directly)
                         WHEN 1 THEN true
                         WHEN 2 THEN scope_keys[1] <> scope_keys[2]
                         WHEN 3 THEN scope_keys[1] <> scope_keys[2] AND scope_keys[1] <> scope_keys[3]
                                     AND scope_keys[2] <> scope_keys[3]
                         ELSE len(scope_keys) <= 8 AND list_unique(scope_keys) = len(scope_keys) END), false) AS fast
FROM keyed
