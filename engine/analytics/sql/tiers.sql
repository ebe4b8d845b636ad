-- Per tier, across agents: how the runs at that tier used their budget, and where their tier came from
-- (tier_source: detected from the task, given by the caller, or the policy's default; absent in older logs)
-- with the detector's mean confidence. Input: the table `groups` (groups.sql).
SELECT CASE WHEN tier = '' THEN '(none)' ELSE tier END AS tier,
       sum(runs) AS runs,
       sum(usage_sum) / sum(runs) AS mean_usage,
       sum(exceeded) AS exceeded,
       coalesce(sum(runs) FILTER (WHERE tier_source = 'detected'), 0) AS detected,
       coalesce(sum(runs) FILTER (WHERE tier_source = 'given'), 0) AS given,
       coalesce(sum(runs) FILTER (WHERE tier_source = 'default'), 0) AS "default",
       coalesce(sum(runs) FILTER (WHERE tier_source IS NULL), 0) AS unknown,
       sum(confidence_sum) / sum(confidence_runs) AS mean_confidence
FROM groups
GROUP BY 1
ORDER BY 1
