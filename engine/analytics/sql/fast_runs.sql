-- The usage records written the usual way (fast_lines.sql: `fast`), read without the careful checks of
-- records.sql, in records.sql's columns. Every other line gives a row with reason 'unchecked' and no values:
-- duck.py reads those lines again, numbered, through records.sql (their reasons, and the records written some
-- other way). Such a row keeps the hash of the values that decide `fast` (unchecked_hash), so that the second
-- pass gives records.sql only the lines with that hash (and not fast).
--
-- Input: the relation `fast_lines` (fast_lines.sql). Parameters: $since, $until (as records.sql), $times
-- (BOOLEAN: whether each run's time is read when no period needs it — the runs per day and export do).
WITH valued AS (
    SELECT file, n, fast, j_host, j_tier_source, j_confidence, j_success, j_budget_allocated, j_timestamp,
           j_agent, j_profile, j_tier, j_budget, j_tokens_loaded, j_usage, j_exceeded, j_scopes,
           CASE WHEN NOT fast THEN NULL
                WHEN $since IS NOT NULL OR $until IS NOT NULL THEN line_time  -- (read once, by fast_lines.sql)
                WHEN $times THEN try_cast(j_timestamp ->> '$' AS TIMESTAMPTZ) END AS ran_at,
           CASE WHEN fast THEN j_agent ->> '$' END AS agent,
           CASE WHEN fast THEN coalesce(j_profile ->> '$', '') END AS profile,
           CASE WHEN fast THEN coalesce(j_tier ->> '$', '') END AS tier,
           CASE WHEN fast THEN try_cast(j_budget AS BIGINT) END AS budget,
           CASE WHEN fast THEN try_cast(j_tokens_loaded AS BIGINT) END AS tokens_loaded,
           CASE WHEN fast THEN j_usage END AS usage,
           CASE WHEN fast THEN j_exceeded END AS exceeded,
           CASE WHEN fast AND j_scopes IS NOT NULL THEN scope_keys ELSE [] END AS scope_names,
           CASE WHEN fast AND j_scopes IS NOT NULL THEN json_extract(j_scopes, '$.*')::BIGINT[] ELSE [] END
               AS scope_values
    FROM fast_lines
)
SELECT file, n, NULL::VARCHAR AS line, CASE WHEN fast THEN NULL ELSE 'unchecked' END AS reason,
       agent, profile, tier, budget, tokens_loaded,
       CASE WHEN usage IS NULL  -- missing (or null): loaded / budget
            THEN CASE WHEN budget > 0 THEN tokens_loaded / budget ELSE 0.0 END
            ELSE try_cast(usage AS DOUBLE) END AS usage,
       CASE WHEN exceeded IS NULL THEN tokens_loaded > budget  -- missing: loaded more than the budget
            ELSE exceeded::VARCHAR = 'true' END AS exceeded,
       CASE WHEN NOT fast THEN NULL WHEN j_success IS NULL THEN TRUE ELSE j_success::VARCHAR = 'true' END AS success,
       scope_names, scope_values,
       CAST(coalesce(list_sum(scope_values), 0) AS DECIMAL(38, 0)) AS total,
       CASE WHEN fast THEN string_or_null(j_host) END AS host,
       CASE WHEN fast THEN string_or_null(j_tier_source) END AS tier_source,
       CASE WHEN fast THEN number_or_null(j_confidence) END AS confidence,
       ran_at,
       fast AND ($since IS NULL OR ran_at >= $since) AND ($until IS NULL OR ran_at < $until) AS in_period,
       fast AND j_success IS NULL AS success_unsaid, fast AS native,
       -- a line left unchecked: the hash of the values that decide `fast`, by which the second pass finds it
       CASE WHEN NOT fast THEN unusual_line_hash(j_budget_allocated, j_timestamp, j_agent, j_profile, j_tier,
                                                 j_budget, j_tokens_loaded, j_usage, j_exceeded, j_success,
                                                 j_scopes) END AS unchecked_hash
FROM valued
