-- Per group of runs (as in groups.sql) and scope: tokens loaded, and the sum and sum of squares of the
-- scope's share of each run's load (runs that loaded nothing are left out), from which the mean share and
-- its spread follow. Input: the table `runs` (records.sql, usage records only).
-- Scopes come in the order they first appear (file, line, place in the record), as a reader meets them.
SELECT agent, profile, key_tier, key_budget, scope,
       sum(tokens) AS tokens,
       sum(tokens / total) AS share_sum,
       sum((tokens / total) * (tokens / total)) AS share_sq,
       min({'file': file, 'n': n, 'place': place}) AS first_seen
FROM (
    SELECT agent, profile,
           CASE WHEN profile = '' THEN tier ELSE '' END AS key_tier,
           CASE WHEN profile = '' THEN budget ELSE 0 END AS key_budget,
           total, file, n,
           unnest(scope_names) AS scope,
           unnest(scope_values) AS tokens,
           unnest(generate_series(1, len(scope_names))) AS place
    FROM runs
    WHERE total > 0
)
GROUP BY agent, profile, key_tier, key_budget, scope
ORDER BY agent, profile, key_tier, key_budget, first_seen, scope
