-- The figures of `analyze` and `recommend`, their one definition: per agent (all its runs, and those under its
-- current profile) and for all the agents read together, over all tiers and per tier — runs, mean / median /
-- p90 / max usage, exceedance rate with its 95 % Wilson interval, failures, tokens loaded.
--
-- Input: the tables `groups` (groups.sql: sums per group key and tier), `group_bins` (bins.sql: runs per group
-- key and usage bin) and `agent_keys` (agent, profile, key_tier, key_budget: a group key; name: the agent it
-- counts for; is_current: whether its runs are the agent's current profile's). Which agent and profile a key
-- belongs to is the policy's business (names resolve, a profile is told by its budget); what the runs add up
-- to is decided here.
-- Output: one row per subject ('agent' or 'overall'), agent name ('' for overall), part ('all' or 'current')
-- and tier (NULL: all tiers; runs that name no tier count under '(none)').
--
-- Quantiles are nearest-rank over the usage bins (0.1 percentage point): the q quantile of n runs is the
-- lowest bin at which ceil(q * n) runs are counted (q * n exact: q is a decimal literal).
WITH keyed AS (
    SELECT k.name, k.is_current,
           CASE WHEN g.tier = '' THEN '(none)' ELSE g.tier END AS tier,
           g.runs, g.usage_sum, g.usage_sq, g.usage_max, g.exceeded, g.failed, g.tokens, g.share_runs
    FROM groups AS g
    JOIN agent_keys AS k
      ON g.agent = k.agent AND g.profile = k.profile AND g.key_tier = k.key_tier AND g.key_budget = k.key_budget
), parts AS (
    SELECT 'agent' AS subject, name, 'all' AS part, tier, runs, usage_sum, usage_sq, usage_max, exceeded,
           failed, tokens, share_runs
    FROM keyed
    UNION ALL
    SELECT 'agent' AS subject, name, 'current' AS part, tier, runs, usage_sum, usage_sq, usage_max, exceeded,
           failed, tokens, share_runs
    FROM keyed WHERE is_current
    UNION ALL
    SELECT 'overall' AS subject, '' AS name, 'all' AS part, tier, runs, usage_sum, usage_sq, usage_max,
           exceeded, failed, tokens, share_runs
    FROM keyed
), tiered AS (
    SELECT subject, name, part, tier, runs, usage_sum, usage_sq, usage_max, exceeded, failed, tokens,
           share_runs
    FROM parts
    UNION ALL
    SELECT subject, name, part, CAST(NULL AS VARCHAR) AS tier, runs, usage_sum, usage_sq, usage_max, exceeded,
           failed, tokens, share_runs
    FROM parts
), sums AS (
    SELECT subject, name, part, tier,
           sum(runs) AS runs, sum(usage_sum) AS usage_sum, sum(usage_sq) AS usage_sq, max(usage_max) AS max_usage,
           sum(exceeded) AS exceeded, sum(failed) AS failed, sum(tokens) AS tokens, sum(share_runs) AS share_runs,
           CAST(1.959964 AS DOUBLE) AS z  -- the normal quantile of a two-sided 95 % interval
    FROM tiered
    GROUP BY subject, name, part, tier
), keyed_bins AS (
    SELECT k.name, k.is_current, b.bin, b.runs
    FROM group_bins AS b
    JOIN agent_keys AS k
      ON b.agent = k.agent AND b.profile = k.profile AND b.key_tier = k.key_tier AND b.key_budget = k.key_budget
), bins AS (
    SELECT subject, name, part, bin, sum(runs) AS runs
    FROM (
        SELECT 'agent' AS subject, name, 'all' AS part, bin, runs FROM keyed_bins
        UNION ALL
        SELECT 'agent' AS subject, name, 'current' AS part, bin, runs FROM keyed_bins WHERE is_current
        UNION ALL
        SELECT 'overall' AS subject, '' AS name, 'all' AS part, bin, runs FROM keyed_bins
    ) AS binned
    GROUP BY subject, name, part, bin
), ranked AS (
    SELECT b.subject, b.name, b.part, b.bin, s.runs AS total,
           sum(b.runs) OVER (PARTITION BY b.subject, b.name, b.part ORDER BY b.bin
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS counted
    FROM bins AS b
    JOIN sums AS s ON s.subject = b.subject AND s.name = b.name AND s.part = b.part AND s.tier IS NULL
), quantiles AS (
    SELECT subject, name, part,
           min(bin) AS min_bin,
           min(CASE WHEN counted >= ceil(total * 0.25) THEN bin END) AS q1_bin,
           min(CASE WHEN counted >= ceil(total * 0.5) THEN bin END) AS median_bin,
           min(CASE WHEN counted >= ceil(total * 0.75) THEN bin END) AS q3_bin,
           min(CASE WHEN counted >= ceil(total * 0.9) THEN bin END) AS p90_bin
    FROM ranked
    GROUP BY subject, name, part
), rates AS (
    SELECT *, CAST(runs AS DOUBLE) AS n, CAST(exceeded AS DOUBLE) / runs AS p FROM sums
)
SELECT r.subject, r.name, r.part, r.tier, r.runs,
       r.usage_sum / r.n AS mean_usage,
       CAST(q.median_bin AS DOUBLE) / 1000 AS median_usage,
       CAST(q.p90_bin AS DOUBLE) / 1000 AS p90_usage,
       r.max_usage,
       r.exceeded,
       r.p AS exceedance_rate,
       r.failed,
       r.tokens AS tokens_loaded,
       CAST(q.q1_bin AS DOUBLE) / 1000 AS q1_usage,
       CAST(q.q3_bin AS DOUBLE) / 1000 AS q3_usage,
       CAST(q.min_bin AS DOUBLE) / 1000 AS min_usage,
       -- the sample standard deviation, from the sums
       CASE WHEN r.runs > 1
            THEN sqrt(greatest((r.usage_sq - r.usage_sum * r.usage_sum / r.n) / (r.n - 1), CAST(0 AS DOUBLE)))
            ELSE CAST(0 AS DOUBLE) END AS stdev_usage,
       -- the Wilson score interval of the exceedance rate
       greatest(CAST(0 AS DOUBLE),
                ((r.p + r.z * r.z / (2 * r.n)) - r.z * sqrt(r.p * (1 - r.p) / r.n + r.z * r.z / (4 * r.n * r.n)))
                / (1 + r.z * r.z / r.n)) AS exceedance_low,
       least(CAST(1 AS DOUBLE),
             ((r.p + r.z * r.z / (2 * r.n)) + r.z * sqrt(r.p * (1 - r.p) / r.n + r.z * r.z / (4 * r.n * r.n)))
             / (1 + r.z * r.z / r.n)) AS exceedance_high,
       r.share_runs
FROM rates AS r
LEFT JOIN quantiles AS q ON r.tier IS NULL AND q.subject = r.subject AND q.name = r.name AND q.part = r.part
ORDER BY r.subject, r.name, r.part, r.tier
