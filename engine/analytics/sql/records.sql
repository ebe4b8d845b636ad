-- One row per line of the usage log: the record's analytic fields in one shape, whichever format wrote it
-- (ours: budget, usage as a fraction, scopes; the seed's: budget_allocated, usage_pct, scopes_loaded or
-- scope_breakdown, task_complexity, exceeded_budget), and `reason`, NULL when the line is a usage record.
--
-- Input: a relation `lines(file, n, line)` — the file, the 1-based line number, the line's text (NULL for a
-- blank line). Parameters: $since, $until (TIMESTAMPTZ or NULL; a run counts when since <= timestamp < until).
WITH parsed AS (
    SELECT file, n, line, json_valid(line) AS is_json
    FROM lines
    WHERE line IS NOT NULL AND trim(line, E' \t\r\n') <> ''
), extracted AS (
    SELECT file, n, line, is_json,
           CASE WHEN is_json THEN json_type(line) = 'OBJECT' ELSE false END AS is_object,
           CASE WHEN is_json THEN json_extract(line, [
               '$.timestamp', '$.agent', '$.profile', '$.tier', '$.budget', '$.usage', '$.scopes',
               '$.exceeded', '$.success', '$.tokens_loaded', '$.budget_allocated', '$.usage_pct',
               '$.scopes_loaded', '$.scope_breakdown', '$.task_complexity', '$.exceeded_budget', '$.host',
               '$.tier_source', '$.confidence'])
           END AS v
    FROM parsed
), picked AS (
    -- both formats in one shape (JSON values; NULL when the key is missing)
    SELECT file, n, line, is_json, is_object,
           v[11] IS NOT NULL AS seed,
           v[1] AS timestamp, v[2] AS agent, v[3] AS profile, v[10] AS loaded,
           CASE WHEN v[11] IS NOT NULL THEN v[11] ELSE v[5] END AS budget,
           CASE WHEN v[11] IS NOT NULL THEN v[12] ELSE v[6] END AS usage,
           CASE WHEN v[11] IS NOT NULL THEN v[16] ELSE v[8] END AS exceeded,
           v[9] AS success, v[17] AS host, v[18] AS tier_source, v[19] AS confidence,
           v[11] IS NULL AND v[5] IS NULL AS no_budget,
           -- the first that is not "falsy" (missing, null, false, 0, "", {} or [])
           CASE WHEN v[11] IS NOT NULL THEN coalesce(falsy_or_null(v[13]), falsy_or_null(v[14]))
                ELSE falsy_or_null(v[7]) END AS scopes,
           CASE WHEN v[11] IS NOT NULL THEN coalesce(falsy_or_null(v[15]), falsy_or_null(v[4]))
                ELSE falsy_or_null(v[4]) END AS tier
    FROM extracted
), fields AS (
    SELECT *,
           json_type(timestamp) AS t_timestamp, json_type(agent) AS t_agent, json_type(budget) AS t_budget,
           json_type(loaded) AS t_loaded, json_type(usage) AS t_usage, json_type(exceeded) AS t_exceeded,
           json_type(success) AS t_success, json_type(scopes) AS t_scopes, json_type(tier) AS t_tier,
           falsy_or_null(profile) AS given_profile
    FROM picked
), mapped AS (
    SELECT *,
           CASE WHEN t_scopes = 'OBJECT' THEN json_transform(scopes, '"MAP(VARCHAR, JSON)"') END AS scope_map
    FROM fields
), checked AS (
    SELECT *,
           coalesce(map_keys(scope_map), []) AS scope_names,
           coalesce(list_transform(map_values(scope_map), lambda t: scope_tokens(t, seed)), []) AS scope_values,
        CASE
            WHEN NOT is_object THEN CASE WHEN is_json THEN 'not a JSON object' ELSE 'not JSON' END
            WHEN no_budget THEN 'missing key ''budget'''
            WHEN timestamp IS NULL THEN 'missing key ''timestamp'''
            WHEN agent IS NULL THEN 'missing key ''agent'''
            WHEN loaded IS NULL THEN 'missing key ''tokens_loaded'''
            WHEN t_agent <> 'VARCHAR' OR agent = '""' THEN '''agent'' must be a non-empty string'
            WHEN t_timestamp <> 'VARCHAR' THEN '''timestamp'' must be a string'
            WHEN t_budget NOT IN ('UBIGINT', 'BIGINT') OR t_loaded NOT IN ('UBIGINT', 'BIGINT')
                 OR try_cast(budget AS BIGINT) < 0 OR try_cast(loaded AS BIGINT) < 0
                THEN 'budget and tokens loaded must be non-negative integers'
            WHEN t_usage IS NOT NULL AND t_usage <> 'NULL'
                 AND (t_usage NOT IN ('UBIGINT', 'BIGINT', 'DOUBLE') OR NOT (try_cast(usage AS DOUBLE) >= 0)
                      OR isinf(try_cast(usage AS DOUBLE)))
                THEN 'usage must be a non-negative number'
            WHEN scopes IS NOT NULL AND t_scopes <> 'OBJECT' THEN 'per-scope tokens must be a mapping'
            WHEN t_exceeded IS NOT NULL AND t_exceeded <> 'NULL'
                 AND (t_exceeded <> 'BOOLEAN' OR (t_success IS NOT NULL AND t_success <> 'BOOLEAN'))
                THEN '''exceeded'' and ''success'' must be true or false'
            WHEN (tier IS NOT NULL AND t_tier <> 'VARCHAR')
                 OR (given_profile IS NOT NULL AND json_type(given_profile) <> 'VARCHAR')
                THEN '''tier'' and ''profile'' must be strings'
            WHEN list_count(scope_values) <> len(scope_values)
                THEN 'per-scope tokens must be numbers'
            WHEN len(list_filter(scope_values, lambda t: isinf(t) OR isnan(t))) > 0
                THEN 'per-scope tokens must be finite numbers'
            WHEN ($since IS NOT NULL OR $until IS NOT NULL)
                 AND try_cast(timestamp ->> '$' AS TIMESTAMPTZ) IS NULL
                THEN '''timestamp'' is not an ISO 8601 time'
        END AS reason
    FROM mapped
)
SELECT file, n, CASE WHEN reason IS NOT NULL THEN line END AS line, reason,
       agent ->> '$' AS agent,
       coalesce(given_profile ->> '$', '') AS profile,
       coalesce(tier ->> '$', '') AS tier,
       try_cast(budget AS BIGINT) AS budget,
       try_cast(loaded AS BIGINT) AS tokens_loaded,
       CASE WHEN t_usage IS NULL OR t_usage = 'NULL'
            THEN CASE WHEN try_cast(budget AS BIGINT) > 0
                      THEN try_cast(loaded AS BIGINT) / try_cast(budget AS BIGINT) ELSE 0.0 END
            ELSE try_cast(usage AS DOUBLE) / CASE WHEN seed THEN 100.0 ELSE 1.0 END END AS usage,
       CASE WHEN t_exceeded IS NULL OR t_exceeded = 'NULL' THEN try_cast(loaded AS BIGINT) > try_cast(budget AS BIGINT)
            ELSE exceeded = 'true' END AS exceeded,
       CASE WHEN success IS NULL THEN TRUE ELSE truthy(success) END AS success,  -- missing: it succeeded
       -- the scopes in the record's order: [{place, name, tokens}]
       list_transform(range(len(scope_names)), lambda i: {'place': i + 1, 'name': scope_names[i + 1],
                                                          'tokens': scope_values[i + 1]}) AS scope_list,
       coalesce(list_sum(scope_values), 0.0) AS total,
       -- optional: the host that wrote the run, and where its tier came from (absent in older logs)
       CASE WHEN json_type(host) = 'VARCHAR' THEN host ->> '$' END AS host,
       CASE WHEN json_type(tier_source) = 'VARCHAR' THEN tier_source ->> '$' END AS tier_source,
       CASE WHEN json_type(confidence) IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN try_cast(confidence AS DOUBLE)
            END AS confidence,
       try_cast(timestamp ->> '$' AS TIMESTAMPTZ) AS ran_at
FROM checked
WHERE reason IS NOT NULL
   OR (($since IS NULL OR try_cast(timestamp ->> '$' AS TIMESTAMPTZ) >= $since)
       AND ($until IS NULL OR try_cast(timestamp ->> '$' AS TIMESTAMPTZ) < $until))
