-- groups.sql's sums from fast_sums.sql's: the same columns, with the agent, profile and tier read from their
-- JSON text once per group (as records.sql reads them). Input: the table `fast_sums` (its runs in the period).
WITH decoded AS (
    SELECT *, agent_json ->> '$' AS agent, coalesce(profile_json ->> '$', '') AS profile,
           coalesce(tier_json ->> '$', '') AS tier
    FROM fast_sums
    WHERE in_period AND unchecked_hash IS NULL
)
SELECT agent, profile,
       CASE WHEN profile = '' THEN tier ELSE '' END AS key_tier,
       key_budget, tier, tier_source,
       sum(runs) AS runs,
       sum(usage_sum) AS usage_sum,
       sum(usage_sq) AS usage_sq,
       max(usage_max) AS usage_max,
       sum(exceeded) AS exceeded,
       sum(failed) AS failed,
       sum(tokens) AS tokens,
       sum(share_runs) AS share_runs,
       sum(confidence_sum) AS confidence_sum,
       sum(confidence_runs) AS confidence_runs
FROM decoded
GROUP BY ALL
