-- The runs `ctxbudget export` writes to Parquet: records.sql's columns, and the UTC date each ran on (the
-- partition; 'unknown' for a run whose timestamp is not a time). Input: the table `runs`.
SELECT agent, profile, tier, budget, tokens_loaded, usage, exceeded, success, scope_list, total,
       host, tier_source, confidence, ran_at,
       coalesce(strftime(ran_at::TIMESTAMP, '%Y-%m-%d'), 'unknown') AS date
FROM runs
ORDER BY ran_at, agent
