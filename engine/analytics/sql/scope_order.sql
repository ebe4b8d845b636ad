-- Whether the order scopes first appear in the log decides anything: some agent has two or more scopes its
-- profile does not weigh (scope_figures.sql orders weighted scopes by the profile, the others by first
-- appearance). Input: the tables `scope_sums`, `agent_keys` and `weights` (as scope_figures.sql).
SELECT count(*) > 0
FROM (
    SELECT k.name
    FROM scope_sums AS s
    JOIN agent_keys AS k
      ON s.agent = k.agent AND s.profile = k.profile AND s.key_tier = k.key_tier AND s.key_budget = k.key_budget
    LEFT JOIN weights AS w ON w.name = k.name AND w.scope = s.scope
    WHERE w.scope IS NULL
    GROUP BY k.name
    HAVING count(DISTINCT s.scope) > 1
) AS unweighed
