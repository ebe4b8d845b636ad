-- Per group of runs and tier: the sums every figure of `analyze` is derived from (the quantiles come from
-- bins.sql's counts). A group is an agent and profile as logged; runs that name no profile are also kept apart
-- by their tier and budget (by which the profile they ran under is told). Runs are kept apart by where their
-- tier came from too (tier_source: 'detected', 'given', 'default', else NULL), for tiers.sql.
-- Input: the table `runs` (records.sql, usage records only). DuckDB sums the usual records of a JSONL log
-- straight from its reader into the same columns (fast_sums.sql, fast_groups.sql). The rows are in order, so
-- that figures.sql adds a group's rows up in one order (floating-point sums depend on it).
SELECT agent, profile,
       CASE WHEN profile = '' THEN tier ELSE '' END AS key_tier,
       CASE WHEN profile = '' THEN budget ELSE 0 END AS key_budget,
       tier,
       CASE WHEN tier_source IN ('detected', 'given', 'default') THEN tier_source END AS tier_source,
       count(*) AS runs,
       sum(usage) AS usage_sum,
       sum(usage * usage) AS usage_sq,
       max(usage) AS usage_max,
       count(*) FILTER (WHERE exceeded) AS exceeded,
       count(*) FILTER (WHERE NOT success) AS failed,
       coalesce(sum(total) FILTER (WHERE total > 0), 0) AS tokens,
       count(*) FILTER (WHERE total > 0) AS share_runs,
       sum(confidence) FILTER (WHERE confidence BETWEEN 0 AND 1) AS confidence_sum,
       count(*) FILTER (WHERE confidence BETWEEN 0 AND 1) AS confidence_runs
FROM runs
GROUP BY ALL
ORDER BY ALL
