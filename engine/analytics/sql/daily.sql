-- Per UTC day and agent: runs and runs over budget (the report's exceedance over time; runs whose timestamp
-- is not a time are left out). Input: the table `runs` (records.sql, usage records only).
SELECT strftime(ran_at::TIMESTAMP, '%Y-%m-%d') AS day, agent,
       count(*) AS runs,
       count(*) FILTER (WHERE exceeded) AS exceeded
FROM runs
WHERE ran_at IS NOT NULL
GROUP BY ALL
ORDER BY ALL
