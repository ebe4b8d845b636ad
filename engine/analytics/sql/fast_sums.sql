-- The usual records of a JSONL log (fast_lines.sql: `fast`) summed straight from DuckDB's JSON reader, with
-- no table of one row per run: per file, period, group key (as groups.sql, with the agent, profile and tier
-- still as the JSON text the reader gives: fast_groups.sql reads them once per group), tier source and list of
-- scope names — runs, usage, exceedance, failures, tokens, confidence, and per place in the scopes (1 to 8) the
-- tokens and the sum and sum of squares of their share of the run's load (as scopes.sql; runs that loaded
-- nothing are left out of the shares). The usage bins (as bins.sql) are not part of the key: they would make
-- ~80,000 groups of these sums out of ~100 on a million runs, which cost most of the summing. Each group lists
-- its runs' bins instead (`bins`, as USMALLINT: 2 bytes a run; 10M runs peak at 240 MB, against 380 MB as
-- INTEGER), and fast_bins.sql counts them; a bin past a USMALLINT (a usage beyond 65.5, not a number or
-- infinite) is listed apart as it is (`big_bins`, DOUBLE).
-- Every other line is a row of its own kind: the file and the hash of the values that decide `fast`
-- (unchecked_hash, as fast_runs.sql), by which duck.py reads it again.
--
-- With $daily, a run's UTC day is part of the key too (`day`: fast_daily.sql counts the runs per day from it, as
-- daily.sql does from a table of one row per run, which a month of a fleet's runs would not fit in memory); else
-- it is NULL.
--
-- Input: the relation `fast_lines` (fast_lines.sql). Parameters: $since, $until (as records.sql), $daily
-- (BOOLEAN).
WITH dated AS (
    -- (line_time: NULL when no period is given; a plain record has one when a period is)
    SELECT *, fast AND ($since IS NULL OR line_time >= $since) AND ($until IS NULL OR line_time < $until) AS in_period
    FROM fast_lines
), valued AS (
    -- A usual record outside the period is only counted (runs, success_unsaid: duck.py checks the lines with
    -- them): its values are not read, and its file's such runs make one group of NULL keys, no bins, no scopes.
    SELECT file, fast, in_period,
           CASE WHEN in_period THEN j_agent END AS agent_json,
           CASE WHEN in_period THEN j_profile END AS profile_json,
           CASE WHEN in_period THEN j_tier END AS tier_json,
           -- (whole numbers of at most 18 digits, as plain_record found them: read as text, which is cheaper)
           CASE WHEN in_period THEN try_cast(j_budget::VARCHAR AS BIGINT) END AS budget,
           CASE WHEN in_period THEN try_cast(j_tokens_loaded::VARCHAR AS BIGINT) END AS tokens_loaded,
           CASE WHEN in_period THEN j_usage END AS usage,
           CASE WHEN in_period THEN j_exceeded END AS exceeded,
           CASE WHEN fast THEN j_success END AS success,
           CASE WHEN in_period THEN string_or_null(j_tier_source) END AS tier_source,
           CASE WHEN in_period THEN number_or_null(j_confidence) END AS confidence,
           -- (line_time: read once, by fast_lines.sql, when a period is given; the session's zone is UTC)
           CASE WHEN in_period AND $daily
                THEN strftime(coalesce(line_time, try_cast(j_timestamp ->> '$' AS TIMESTAMPTZ))::TIMESTAMP,
                              '%Y-%m-%d') END AS day,
           CASE WHEN in_period AND j_scopes IS NOT NULL THEN scope_keys ELSE [] END AS scope_names,
           CASE WHEN in_period AND j_scopes IS NOT NULL
                THEN try_cast(json_extract(j_scopes, '$.*')::VARCHAR[] AS BIGINT[]) ELSE [] END AS v,
           CASE WHEN NOT fast THEN unusual_line_hash(j_budget_allocated, j_timestamp, j_agent, j_profile, j_tier,
                                                     j_budget, j_tokens_loaded, j_usage, j_exceeded, j_success,
                                                     j_scopes) END AS unchecked_hash
    FROM dated
), runs AS (
    SELECT file, unchecked_hash, agent_json, profile_json, tier_json, scope_names, v, success,
           in_period, day,
           -- a run that names no profile: its budget is part of its group key (profile '' as records.sql reads it)
           CASE WHEN profile_json IS NULL OR profile_json = '""' THEN budget ELSE 0 END AS key_budget,
           CASE WHEN tier_source IN ('detected', 'given', 'default') THEN tier_source END AS tier_source,
           confidence,
           CASE WHEN NOT in_period THEN NULL  -- (no bin)
                WHEN usage IS NULL  -- missing (or null): loaded / budget
                THEN CASE WHEN budget > 0 THEN tokens_loaded / budget ELSE 0.0 END
                ELSE try_cast(usage AS DOUBLE) END AS usage,
           CASE WHEN exceeded IS NULL THEN tokens_loaded > budget  -- missing: loaded more than the budget
                ELSE exceeded::VARCHAR = 'true' END AS exceeded,
           CAST(coalesce(list_sum(v), 0) AS DECIMAL(38, 0)) AS total
    FROM valued
), loaded AS (
    -- the load a scope's share is taken of (NULL when the run loaded nothing: it has no shares)
    SELECT *, CASE WHEN total > 0 THEN CAST(total AS DOUBLE) END AS load,
           floor(usage * 1000 + 0.5) AS bin  -- as bins.sql
    FROM runs
)
SELECT file, in_period, unchecked_hash, agent_json, profile_json, tier_json, key_budget, tier_source,
       scope_names, day,
       count(*) AS runs,
       -- (a NaN is above every number: it is a big bin; try_cast: DuckDB may cast before it filters)
       list(try_cast(bin AS USMALLINT)) FILTER (WHERE bin BETWEEN 0 AND 65535) AS bins,
       list(bin) FILTER (WHERE NOT bin BETWEEN 0 AND 65535) AS big_bins,
       sum(usage) AS usage_sum,
       sum(usage * usage) AS usage_sq,
       max(usage) AS usage_max,
       count(*) FILTER (WHERE exceeded) AS exceeded,
       count(*) FILTER (WHERE success::VARCHAR = 'false') AS failed,
       coalesce(sum(total) FILTER (WHERE total > 0), 0) AS tokens,
       count(*) FILTER (WHERE total > 0) AS share_runs,
       sum(confidence) FILTER (WHERE confidence BETWEEN 0 AND 1) AS confidence_sum,
       count(*) FILTER (WHERE confidence BETWEEN 0 AND 1) AS confidence_runs,
       count(*) FILTER (WHERE unchecked_hash IS NULL AND success IS NULL) AS success_unsaid,
       sum(v[1]) AS tokens_1, sum(v[1] / load) AS share_1, sum((v[1] / load) * (v[1] / load)) AS share_sq_1,
       sum(v[2]) AS tokens_2, sum(v[2] / load) AS share_2, sum((v[2] / load) * (v[2] / load)) AS share_sq_2,
       sum(v[3]) AS tokens_3, sum(v[3] / load) AS share_3, sum((v[3] / load) * (v[3] / load)) AS share_sq_3,
       sum(v[4]) AS tokens_4, sum(v[4] / load) AS share_4, sum((v[4] / load) * (v[4] / load)) AS share_sq_4,
       sum(v[5]) AS tokens_5, sum(v[5] / load) AS share_5, sum((v[5] / load) * (v[5] / load)) AS share_sq_5,
       sum(v[6]) AS tokens_6, sum(v[6] / load) AS share_6, sum((v[6] / load) * (v[6] / load)) AS share_sq_6,
       sum(v[7]) AS tokens_7, sum(v[7] / load) AS share_7, sum((v[7] / load) * (v[7] / load)) AS share_sq_7,
       sum(v[8]) AS tokens_8, sum(v[8] / load) AS share_8, sum((v[8] / load) * (v[8] / load)) AS share_sq_8
FROM loaded
GROUP BY ALL
