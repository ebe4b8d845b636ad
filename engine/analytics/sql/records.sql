-- One row per (non-blank) line of the usage log: the record's analytic fields in one shape, whichever format wrote it
-- (ours: budget, usage as a fraction, scopes; the seed's: budget_allocated, usage_pct, scopes_loaded or
-- scope_breakdown, task_complexity, exceeded_budget), and `reason`, NULL when the line is a usage record;
-- `in_period` says whether a run falls in the period.
--
-- Input: a relation `fields` (line_fields.sql, or DuckDB's JSON reader in duck.py): file, n (the line number),
-- line (its text, or NULL), is_json, is_object, and the JSON value of each key a record may carry (j_KEY).
-- Parameters: $since, $until (TIMESTAMPTZ or NULL; a run counts when since <= timestamp < until).
WITH picked AS (
    -- both formats in one shape (JSON values; NULL when the key is missing)
    SELECT file, n, line, is_json, is_object,
           j_budget_allocated IS NOT NULL AS seed,
           j_timestamp AS timestamp, j_agent AS agent, j_profile AS profile, j_tokens_loaded AS loaded,
           CASE WHEN j_budget_allocated IS NOT NULL THEN j_budget_allocated ELSE j_budget END AS budget,
           CASE WHEN j_budget_allocated IS NOT NULL THEN j_usage_pct ELSE j_usage END AS usage,
           CASE WHEN j_budget_allocated IS NOT NULL THEN j_exceeded_budget ELSE j_exceeded END AS exceeded,
           j_success AS success, j_host AS host, j_tier_source AS tier_source, j_confidence AS confidence,
           j_budget_allocated IS NULL AND j_budget IS NULL AS no_budget,
           -- the first that is not "falsy" (missing, null, false, 0, "", {} or [])
           CASE WHEN j_budget_allocated IS NOT NULL THEN coalesce(falsy_or_null(j_scopes_loaded), falsy_or_null(j_scope_breakdown))
                ELSE falsy_or_null(j_scopes) END AS scopes,
           CASE WHEN j_budget_allocated IS NOT NULL THEN coalesce(falsy_or_null(j_task_complexity), falsy_or_null(j_tier))
                ELSE falsy_or_null(j_tier) END AS tier
    FROM fields
), sorted AS (
    SELECT *,
           falsy_or_null(profile) AS given_profile,
           -- scopes written the usual way: an object of plain whole numbers under 10^15, keys without escapes
           coalesce(regexp_full_match(scopes::VARCHAR,
                    '\{"[^"\\]*":(0|[1-9][0-9]{0,14})(,"[^"\\]*":(0|[1-9][0-9]{0,14}))*\}'), false) AS plain_scopes,
           starts_with(scopes::VARCHAR, '{') AS scopes_object,
           try_cast(timestamp ->> '$' AS TIMESTAMPTZ) AS ran_at
    FROM picked
), flagged AS (
    SELECT *,
           -- a record written the usual way, told by cheap tests of its values' text, is a usage record; every
           -- other line takes the careful checks of `reasoned` below (only those lines: the checks are written
           -- inside its CASE, so they run for them alone)
           coalesce(is_object AND NOT no_budget
                    AND starts_with(timestamp::VARCHAR, '"') AND starts_with(agent::VARCHAR, '"')
                    AND agent::VARCHAR <> '""'
                    AND is_count(budget) AND is_count(loaded)
                    AND try_cast(budget::VARCHAR AS BIGINT) IS NOT NULL  -- MAX_READ_BUDGET: 2^63 - 1
                    AND try_cast(loaded::VARCHAR AS UBIGINT) <= 9007199254740991
                    AND (usage IS NULL OR (left(usage::VARCHAR, 1) BETWEEN '0' AND '9'
                                           AND try_cast(usage::VARCHAR AS DOUBLE) < 'inf'::DOUBLE))
                    AND (exceeded IS NULL OR exceeded::VARCHAR IN ('true', 'false'))
                    AND (success IS NULL OR success::VARCHAR IN ('true', 'false'))
                    AND (tier IS NULL OR starts_with(tier::VARCHAR, '"'))
                    AND (given_profile IS NULL OR starts_with(given_profile::VARCHAR, '"'))
                    AND (scopes IS NULL OR plain_scopes)
                    AND (($since IS NULL AND $until IS NULL) OR ran_at IS NOT NULL), false) AS plain
    FROM sorted
), listed AS (
    SELECT *,
           CASE WHEN scopes_object THEN json_keys(scopes) END AS scope_keys,
           CASE WHEN scopes_object THEN json_extract(scopes, '$.*') END AS scope_texts
    FROM flagged
), mapped AS (
    SELECT *,
           -- a key given twice counts once, with its first value (as DuckDB reads a record's own keys):
           -- scope_entries reads such scopes (few scopes are compared directly: cheaper than list_unique)
           CASE WHEN NOT plain_scopes THEN false
                WHEN len(scope_keys) = 1 THEN true
                WHEN len(scope_keys) = 2 THEN scope_keys[1] <> scope_keys[2]
                WHEN len(scope_keys) = 3
                    THEN scope_keys[1] <> scope_keys[2] AND scope_keys[1] <> scope_keys[3]
                         AND scope_keys[2] <> scope_keys[3]
                ELSE list_unique(scope_keys) = len(scope_keys) END AS plain_list
    FROM listed
), entered AS (
    SELECT *,
           CASE WHEN NOT plain_list AND scopes_object THEN scope_entries(scope_keys, scope_texts, seed) END AS entries
    FROM mapped
), checked AS (
    SELECT *,
           -- the scopes in the record's order: their names, and their tokens (NULL when not a token count)
           CASE WHEN NOT scopes_object OR scopes_object IS NULL THEN []
                WHEN plain_list THEN scope_keys
                ELSE list_transform(entries, lambda s: s.name) END AS scope_names,
           CASE WHEN NOT scopes_object OR scopes_object IS NULL THEN []
                WHEN plain_list THEN scope_texts::BIGINT[]
                ELSE list_transform(entries, lambda s: s.tokens) END AS scope_values
    FROM entered
), reasoned AS (
    SELECT *,
        CASE
            WHEN plain THEN NULL
            WHEN NOT is_object THEN CASE WHEN is_json THEN 'not a JSON object' ELSE 'not JSON' END
            WHEN no_budget THEN 'missing key ''budget'''
            WHEN timestamp IS NULL THEN 'missing key ''timestamp'''
            WHEN agent IS NULL THEN 'missing key ''agent'''
            WHEN loaded IS NULL THEN 'missing key ''tokens_loaded'''
            WHEN json_kind(agent) <> 'VARCHAR' OR agent = '""' THEN '''agent'' must be a non-empty string'
            WHEN json_kind(timestamp) <> 'VARCHAR' THEN '''timestamp'' must be a string'
            WHEN json_kind(budget) NOT IN ('UBIGINT', 'BIGINT') OR json_kind(loaded) NOT IN ('UBIGINT', 'BIGINT')
                 OR coalesce(try_cast(budget AS BIGINT) < 0, true)  -- past a BIGINT (2^63 - 1): MAX_READ_BUDGET
                 -- (past a BIGINT the cast is NULL: a count from 2^63 is refused, not taken as unknown)
                 OR coalesce(try_cast(loaded AS BIGINT) NOT BETWEEN 0 AND 9007199254740991, true)  -- MAX_TOKENS
                THEN 'budget and tokens loaded must be non-negative integers'
            WHEN usage IS NOT NULL AND json_kind(usage) <> 'NULL'
                 AND (json_kind(usage) NOT IN ('UBIGINT', 'BIGINT', 'DOUBLE') OR NOT (try_cast(usage AS DOUBLE) >= 0)
                      OR isinf(try_cast(usage AS DOUBLE)))
                THEN 'usage must be a non-negative number'
            WHEN scopes IS NOT NULL AND NOT scopes_object THEN 'per-scope tokens must be a mapping'
            WHEN (exceeded IS NOT NULL AND json_kind(exceeded) NOT IN ('NULL', 'BOOLEAN'))  -- null: not given
                 OR (success IS NOT NULL AND json_kind(success) <> 'BOOLEAN')  -- null: not a run's outcome
                THEN '''exceeded'' and ''success'' must be true or false'
            WHEN (tier IS NOT NULL AND json_kind(tier) <> 'VARCHAR')
                 OR (given_profile IS NOT NULL AND json_kind(given_profile) <> 'VARCHAR')
                THEN '''tier'' and ''profile'' must be strings'
            WHEN list_count(scope_values) <> len(scope_values)
                THEN 'per-scope tokens must be non-negative integers'
            WHEN ($since IS NOT NULL OR $until IS NOT NULL) AND ran_at IS NULL
                THEN '''timestamp'' is not an ISO 8601 time'
        END AS reason
    FROM checked
)
SELECT file, n, CASE WHEN reason IS NOT NULL THEN line END AS line, reason,
       agent ->> '$' AS agent,
       coalesce(given_profile ->> '$', '') AS profile,
       coalesce(tier ->> '$', '') AS tier,
       try_cast(budget AS BIGINT) AS budget,
       try_cast(loaded AS BIGINT) AS tokens_loaded,
       CASE WHEN usage IS NULL OR usage::VARCHAR = 'null'  -- missing: loaded / budget
            THEN CASE WHEN try_cast(budget AS BIGINT) > 0
                      THEN try_cast(loaded AS BIGINT) / try_cast(budget AS BIGINT) ELSE 0.0 END
            ELSE try_cast(usage AS DOUBLE) / CASE WHEN seed THEN 100.0 ELSE 1.0 END END AS usage,
       CASE WHEN exceeded IS NULL OR exceeded::VARCHAR = 'null'  -- missing: loaded more than the budget
            THEN try_cast(loaded AS BIGINT) > try_cast(budget AS BIGINT)
            ELSE exceeded::VARCHAR = 'true' END AS exceeded,
       CASE WHEN success IS NULL THEN TRUE ELSE truthy(success) END AS success,  -- missing: it succeeded
       scope_names, scope_values,
       CAST(coalesce(list_sum(scope_values), 0) AS DECIMAL(38, 0)) AS total,  -- exact: tokens are whole numbers
       -- optional: the host that wrote the run, and where its tier came from (absent in older logs)
       string_or_null(host) AS host, string_or_null(tier_source) AS tier_source,
       number_or_null(confidence) AS confidence,
       ran_at,
       ($since IS NULL OR ran_at >= $since) AND ($until IS NULL OR ran_at < $until) AS in_period,
       -- DuckDB's JSON reader reads a key whose value is null as if it were missing, which changes the answer
       -- for 'success' (missing: it succeeded; null: the line is not a record) and 'budget_allocated' (present: the seed's
       -- format): duck.py reads a log line by line where these could differ
       success IS NULL AS success_unsaid, NOT seed AS native
FROM reasoned
