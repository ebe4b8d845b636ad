-- daily.sql's counts from fast_sums.sql's: per UTC day and agent, the runs and the runs over budget, with the
-- agent read from its JSON text once per group (as fast_groups.sql reads it). Input: the table `fast_sums`
-- (summed with $daily: its runs in the period have a day).
SELECT day, agent_json ->> '$' AS agent,
       sum(runs) AS runs,
       sum(exceeded) AS exceeded
FROM fast_sums
WHERE in_period AND unchecked_hash IS NULL AND day IS NOT NULL
GROUP BY ALL
