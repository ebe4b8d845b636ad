-- Per agent, the runs under each profile they were recorded under (runs that name none: the profile their
-- budget tells, '' when that is the agent's current one). Input: `groups`, `agent_keys` (figures.sql).
SELECT k.name, k.run_profile, sum(g.runs) AS runs
FROM groups AS g
JOIN agent_keys AS k
  ON g.agent = k.agent AND g.profile = k.profile AND g.key_tier = k.key_tier AND g.key_budget = k.key_budget
GROUP BY k.name, k.run_profile
ORDER BY k.name, k.run_profile
