-- Per group of runs (as in groups.sql) and scope: tokens loaded, and the sum and sum of squares of the
-- scope's share of each run's load (runs that loaded nothing are left out), from which the mean share and
-- its spread follow. Input: the table `runs` (records.sql, usage records only).
-- Scopes come in the order they first appear (file, line, place in the record), as a reader meets them.
-- (Written so that sqlglot transpiles it for Spark: one unnest, struct fields by name.)
SELECT agent, profile, key_tier, key_budget, scope.name AS scope,
       sum(scope.tokens) AS tokens,
       sum(CAST(scope.tokens AS DOUBLE) / CAST(total AS DOUBLE)) AS share_sum,
       sum((CAST(scope.tokens AS DOUBLE) / CAST(total AS DOUBLE)) * (CAST(scope.tokens AS DOUBLE) / CAST(total AS DOUBLE))) AS share_sq,
       min({'file': file, 'n': n, 'place': scope.place}) AS first_seen
FROM (
    SELECT agent, profile,
           CASE WHEN profile = '' THEN tier ELSE '' END AS key_tier,
           CASE WHEN profile = '' THEN budget ELSE 0 END AS key_budget,
           total, file, n,
           unnest(scope_list) AS scope
    FROM runs
    WHERE total > 0
) AS scopes
GROUP BY agent, profile, key_tier, key_budget, scope.name
ORDER BY agent, profile, key_tier, key_budget, first_seen, scope
