-- Per tier, across agents: how the runs at that tier used their budget, and where their tier came from
-- (tier_source: detected from the task, given by the caller, or the policy's default; absent in older logs)
-- with the detector's mean confidence. Input: the table `runs` (records.sql, usage records only).
SELECT CASE WHEN tier = '' THEN '(none)' ELSE tier END AS tier,
       count(*) AS runs,
       avg(usage) AS mean_usage,
       count(*) FILTER (WHERE exceeded) AS exceeded,
       count(*) FILTER (WHERE tier_source = 'detected') AS detected,
       count(*) FILTER (WHERE tier_source = 'given') AS given,
       count(*) FILTER (WHERE tier_source = 'default') AS "default",
       count(*) FILTER (WHERE tier_source IS NULL OR tier_source NOT IN ('detected', 'given', 'default')) AS unknown,
       avg(confidence) FILTER (WHERE confidence BETWEEN 0 AND 1) AS mean_confidence
FROM runs
GROUP BY 1
ORDER BY 1
