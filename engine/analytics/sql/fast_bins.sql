-- bins.sql's counts from fast_sums.sql's lists of bins: per group key and usage bin, the runs, with the agent,
-- profile and tier read from their JSON text once per group (as fast_groups.sql). The bins listed as INTEGER
-- are read back as the DOUBLE they were (exactly: whole numbers below 2^31), those listed apart as they are.
-- Input: the table `fast_sums` (its runs in the period).
WITH decoded AS (
    SELECT agent_json ->> '$' AS agent, coalesce(profile_json ->> '$', '') AS profile,
           coalesce(tier_json ->> '$', '') AS tier, key_budget, bins, big_bins
    FROM fast_sums
    WHERE in_period AND unchecked_hash IS NULL
), keyed AS (
    SELECT agent, profile, CASE WHEN profile = '' THEN tier ELSE '' END AS key_tier, key_budget, bins, big_bins
    FROM decoded
), binned AS (
    -- (each list unnested as it is: a list cast or concatenated whole would be copied whole, 8 bytes a run)
    SELECT agent, profile, key_tier, key_budget, CAST(unnest(bins) AS DOUBLE) AS bin FROM keyed
    UNION ALL
    SELECT agent, profile, key_tier, key_budget, unnest(big_bins) AS bin FROM keyed
)
SELECT agent, profile, key_tier, key_budget, bin, count(*) AS runs
FROM binned
GROUP BY ALL
