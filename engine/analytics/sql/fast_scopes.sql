-- scopes.sql's sums from fast_sums.sql's: per group key and scope, the tokens and the sum and sum of squares of
-- the scope's share of each run's load, from the sums per place in the scopes (a group's runs have the same
-- scope names in the same order). The place a scope first appears at is known; its line is not (the first
-- pass does not number lines: duck.py reads them again numbered when that order decides).
-- Input: the table `fast_sums` (its runs in the period that loaded something).
WITH decoded AS (
    SELECT *, agent_json ->> '$' AS agent, coalesce(profile_json ->> '$', '') AS profile,
           coalesce(tier_json ->> '$', '') AS tier
    FROM fast_sums
    WHERE in_period AND unchecked_hash IS NULL AND share_runs > 0
), places AS (
    SELECT agent, profile,
           CASE WHEN profile = '' THEN tier ELSE '' END AS key_tier,
           key_budget, file,
           unnest(list_slice([
               {'place': 1, 'name': scope_names[1], 'tokens': tokens_1, 'share': share_1, 'share_sq': share_sq_1},
               {'place': 2, 'name': scope_names[2], 'tokens': tokens_2, 'share': share_2, 'share_sq': share_sq_2},
               {'place': 3, 'name': scope_names[3], 'tokens': tokens_3, 'share': share_3, 'share_sq': share_sq_3},
               {'place': 4, 'name': scope_names[4], 'tokens': tokens_4, 'share': share_4, 'share_sq': share_sq_4},
               {'place': 5, 'name': scope_names[5], 'tokens': tokens_5, 'share': share_5, 'share_sq': share_sq_5},
               {'place': 6, 'name': scope_names[6], 'tokens': tokens_6, 'share': share_6, 'share_sq': share_sq_6},
               {'place': 7, 'name': scope_names[7], 'tokens': tokens_7, 'share': share_7, 'share_sq': share_sq_7},
               {'place': 8, 'name': scope_names[8], 'tokens': tokens_8, 'share': share_8, 'share_sq': share_sq_8}
           ], 1, len(scope_names))) AS scope
    FROM decoded
)
SELECT agent, profile, key_tier, key_budget, scope.name AS scope,
       sum(scope.tokens) AS tokens,
       sum(scope.share) AS share_sum,
       sum(scope.share_sq) AS share_sq,
       min({'file': file, 'n': NULL::BIGINT, 'place': CAST(scope.place AS BIGINT)}) AS first_seen
FROM places
GROUP BY agent, profile, key_tier, key_budget, scope.name
