-- Per group of runs (as in groups.sql, without the tier) and usage bin: the runs. A bin is 0.1 percentage
-- point of usage (the usage times 1000, rounded half up, as a DOUBLE holding a whole number: a usage far beyond
-- any budget still has one); figures.sql reads the median and p90 from these counts, so they are exact to that
-- step however many runs there are. Input: the table `runs` (records.sql, usage records only). DuckDB counts
-- the usual records of a JSONL log from the bins fast_sums.sql lists per group (fast_bins.sql).
SELECT agent, profile,
       CASE WHEN profile = '' THEN tier ELSE '' END AS key_tier,
       CASE WHEN profile = '' THEN budget ELSE 0 END AS key_budget,
       floor(usage * 1000 + 0.5) AS bin,
       count(*) AS runs
FROM runs
GROUP BY ALL
ORDER BY ALL
