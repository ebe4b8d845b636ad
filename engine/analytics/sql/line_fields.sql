-- Each line of the usage log as the JSON values records.sql checks: the exact reader's first step (DuckDB's
-- own JSON reader gives the same columns faster; see duck.py). Input: a relation `lines(file, n, line)` — the
-- file, the 1-based line number, the line's text (NULL for a blank line). Output: `fields` rows — file, n, line,
-- is_json, is_object, and one JSON value per key a usage record may carry (j_KEY; NULL when it is missing).
SELECT file, n, line, is_json, is_object,
       v[1] AS j_timestamp, v[2] AS j_agent, v[3] AS j_profile, v[4] AS j_tier, v[5] AS j_budget, v[6] AS j_usage,
       v[7] AS j_scopes, v[8] AS j_exceeded, v[9] AS j_success, v[10] AS j_tokens_loaded,
       v[11] AS j_budget_allocated, v[12] AS j_usage_pct, v[13] AS j_scopes_loaded, v[14] AS j_scope_breakdown,
       v[15] AS j_task_complexity, v[16] AS j_exceeded_budget, v[17] AS j_host, v[18] AS j_tier_source,
       v[19] AS j_confidence
FROM (
    SELECT file, n, line, is_json,
           CASE WHEN is_json THEN json_type(line) = 'OBJECT' ELSE false END AS is_object,
           CASE WHEN is_json THEN json_extract(line, [
               '$.timestamp', '$.agent', '$.profile', '$.tier', '$.budget', '$.usage', '$.scopes',
               '$.exceeded', '$.success', '$.tokens_loaded', '$.budget_allocated', '$.usage_pct',
               '$.scopes_loaded', '$.scope_breakdown', '$.task_complexity', '$.exceeded_budget', '$.host',
               '$.tier_source', '$.confidence'])
           END AS v
    FROM (SELECT file, n, line, json_valid(line) AS is_json FROM lines
          WHERE line IS NOT NULL AND trim(line, E' \t\r\n') <> '') AS parsed
) AS extracted
