-- Per group of runs (as in groups.sql) and scope: tokens loaded, and the sum and sum of squares of the
-- scope's share of each run's load (runs that loaded nothing are left out), from which the mean share and
-- its spread follow. Input: the table `runs` (records.sql, usage records only).
SELECT agent, profile, key_tier, key_budget, scope,
       sum(tokens) AS tokens,
       sum(tokens / total) AS share_sum,
       sum((tokens / total) * (tokens / total)) AS share_sq
FROM (
    SELECT agent, profile,
           CASE WHEN profile = '' THEN tier ELSE '' END AS key_tier,
           CASE WHEN profile = '' THEN budget ELSE 0 END AS key_budget,
           total,
           unnest(scope_names) AS scope,
           unnest(scope_values) AS tokens
    FROM runs
    WHERE total > 0
)
GROUP BY ALL
ORDER BY ALL
