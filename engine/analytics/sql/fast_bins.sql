-- bins.sql's counts from fast_sums.sql's lists of bins: per group key and usage bin, the runs, with the agent,
-- profile and tier read from their JSON text once per key and bin (as fast_groups.sql reads them once per
-- group). The bins listed as USMALLINT are read back as the DOUBLE they were (exactly: whole numbers from 0 to
-- 65535), those listed apart as they are. Each list is unnested as it is, from the table: a list cast or
-- concatenated whole, or a relation read twice, would be copied whole (8 bytes a run).
-- Input: the table `fast_sums` (its runs in the period).
WITH listed AS (
    SELECT agent_json, profile_json, tier_json, key_budget, CAST(unnest(bins) AS DOUBLE) AS bin
    FROM fast_sums
    WHERE in_period AND unchecked_hash IS NULL
    UNION ALL
    SELECT agent_json, profile_json, tier_json, key_budget, unnest(big_bins) AS bin
    FROM fast_sums
    WHERE in_period AND unchecked_hash IS NULL
), counted AS (
    SELECT agent_json, profile_json, tier_json, key_budget, bin, count(*) AS runs
    FROM listed
    GROUP BY ALL
), decoded AS (
    SELECT agent_json ->> '$' AS agent, coalesce(profile_json ->> '$', '') AS profile,
           coalesce(tier_json ->> '$', '') AS tier, key_budget, bin, runs
    FROM counted
)
SELECT agent, profile, CASE WHEN profile = '' THEN tier ELSE '' END AS key_tier, key_budget, bin,
       sum(runs) AS runs
FROM decoded
GROUP BY ALL
