-- Per agent (all its runs, and those under its current profile) and scope: tokens loaded, the scope's mean
-- share of a run's load and the share's sample standard deviation (runs that loaded nothing are left out, runs
-- without the scope count as 0), the profile's weight, and the drift (share - weight; NULL when the agent's
-- profile has no weights). A weighted scope no run loaded is there too, with share 0.
--
-- Input: the tables `scope_sums` (scopes.sql), `groups` (groups.sql), `agent_keys` (as in figures.sql) and
-- `weights` (name, scope, weight, place: the scope weights of each agent's profile, in the profile's order).
-- Output: weighted scopes first, in the profile's order, then the others in the order the log first has them.
WITH keyed_scopes AS (
    SELECT k.name, k.is_current, s.scope, s.tokens, s.share_sum, s.share_sq, s.first_seen
    FROM scope_sums AS s
    JOIN agent_keys AS k
      ON s.agent = k.agent AND s.profile = k.profile AND s.key_tier = k.key_tier AND s.key_budget = k.key_budget
), scope_parts AS (
    SELECT name, 'all' AS part, scope, tokens, share_sum, share_sq, first_seen FROM keyed_scopes
    UNION ALL
    SELECT name, 'current' AS part, scope, tokens, share_sum, share_sq, first_seen FROM keyed_scopes WHERE is_current
), scope_totals AS (
    SELECT name, part, scope, sum(tokens) AS tokens, sum(share_sum) AS share_sum, sum(share_sq) AS share_sq,
           min(first_seen) AS first_seen
    FROM scope_parts
    GROUP BY name, part, scope
), keyed_runs AS (
    SELECT k.name, k.is_current, g.runs, g.share_runs
    FROM groups AS g
    JOIN agent_keys AS k
      ON g.agent = k.agent AND g.profile = k.profile AND g.key_tier = k.key_tier AND g.key_budget = k.key_budget
), run_parts AS (
    SELECT name, 'all' AS part, share_runs FROM keyed_runs
    UNION ALL
    SELECT name, 'current' AS part, share_runs FROM keyed_runs WHERE is_current
), loaded AS (
    SELECT name, part, sum(share_runs) AS n FROM run_parts GROUP BY name, part
), weighted AS (
    SELECT l.name, l.part, w.scope, w.weight, w.place
    FROM loaded AS l JOIN weights AS w ON w.name = l.name
), merged AS (
    SELECT coalesce(t.name, w.name) AS name, coalesce(t.part, w.part) AS part, coalesce(t.scope, w.scope) AS scope,
           coalesce(t.tokens, 0) AS tokens, coalesce(t.share_sum, CAST(0 AS DOUBLE)) AS share_sum,
           coalesce(t.share_sq, CAST(0 AS DOUBLE)) AS share_sq, t.first_seen, w.weight, w.place, t.scope IS NOT NULL AS seen
    FROM scope_totals AS t
    FULL OUTER JOIN weighted AS w ON t.name = w.name AND t.part = w.part AND t.scope = w.scope
), weighing AS (
    SELECT DISTINCT name FROM weights
), shares AS (
    SELECT m.*, l.n,
           CASE WHEN l.n > 0 THEN m.share_sum / l.n ELSE CAST(0 AS DOUBLE) END AS share,
           x.name IS NOT NULL AS has_weights
    FROM merged AS m
    JOIN loaded AS l ON l.name = m.name AND l.part = m.part
    LEFT JOIN weighing AS x ON x.name = m.name
)
SELECT name, part, scope, tokens, share,
       CASE WHEN n > 1 THEN sqrt(greatest((share_sq - share_sum * share_sum / n) / (n - 1), CAST(0 AS DOUBLE)))
            ELSE CAST(0 AS DOUBLE) END AS share_stdev,
       weight,
       CASE WHEN has_weights THEN share - coalesce(weight, CAST(0 AS DOUBLE)) END AS drift,
       seen
FROM shares
ORDER BY name, part, place IS NULL, place, first_seen, scope
