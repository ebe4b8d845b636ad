-- Small helpers the queries share, named for what they mean in a usage record.

-- json_type(j) for a JSON value, read from its first characters instead of parsing it again (the readers give
-- each value as minified JSON text): 'VARCHAR', 'OBJECT', 'ARRAY', 'BOOLEAN', 'NULL', 'UBIGINT', 'BIGINT' or
-- 'DOUBLE' (an integer beyond 64 bits is a DOUBLE, as in json_type).
CREATE OR REPLACE TEMP MACRO json_kind(j) AS
    CASE left(j::VARCHAR, 1)
        WHEN '"' THEN 'VARCHAR' WHEN '{' THEN 'OBJECT' WHEN '[' THEN 'ARRAY'
        WHEN 't' THEN 'BOOLEAN' WHEN 'f' THEN 'BOOLEAN' WHEN 'n' THEN 'NULL'
        ELSE CASE WHEN j IS NULL THEN NULL
                  WHEN contains(j::VARCHAR, '.') OR contains(j::VARCHAR, 'e') OR contains(j::VARCHAR, 'E')
                      THEN 'DOUBLE'
                  WHEN left(j::VARCHAR, 1) = '-'
                      THEN CASE WHEN try_cast(j::VARCHAR AS BIGINT) IS NULL THEN 'DOUBLE' ELSE 'BIGINT' END
                  WHEN try_cast(j::VARCHAR AS UBIGINT) IS NULL THEN 'DOUBLE'
                  ELSE 'UBIGINT' END
    END;

-- A JSON value, or NULL when it is missing or "falsy" (null, false, 0, "", {} or []): a record's optional
-- field that is falsy means "not given".
-- (json_extract gives minified JSON, so its text is compared.)
CREATE OR REPLACE TEMP MACRO falsy_or_null(j) AS
    CASE WHEN j IS NULL THEN NULL
         WHEN j::VARCHAR IN ('null', 'false', '""', '{}', '[]', '0') THEN NULL
         WHEN left(j::VARCHAR, 1) IN ('0', '-') AND try_cast(j AS DOUBLE) = 0 THEN NULL
         ELSE j END;

CREATE OR REPLACE TEMP MACRO truthy(j) AS falsy_or_null(j) IS NOT NULL;

-- An optional value of a record: the string a JSON string holds, the number a JSON number is; else NULL.
CREATE OR REPLACE TEMP MACRO string_or_null(j) AS CASE WHEN starts_with(j::VARCHAR, '"') THEN j ->> '$' END;

CREATE OR REPLACE TEMP MACRO number_or_null(j) AS
    CASE WHEN json_kind(j) IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN try_cast(j AS DOUBLE) END;

-- The tokens one scope entry stands for: a whole number from 0 to MAX_TOKENS, or (the seed's scope_breakdown)
-- {"tokens": n, "pct": p}; NULL when it is neither (the record is then not a usage record).
CREATE OR REPLACE TEMP MACRO scope_tokens(value, seed) AS
    CASE WHEN seed AND json_kind(value) = 'OBJECT'
             THEN CASE WHEN json_extract(value, '$.tokens') IS NULL THEN 0::BIGINT  -- no "tokens": none
                       ELSE scope_number(json_extract(value, '$.tokens')) END
         ELSE scope_number(value) END;

CREATE OR REPLACE TEMP MACRO scope_number(value) AS
    CASE WHEN json_kind(value) IN ('UBIGINT', 'BIGINT')
              AND try_cast(value AS BIGINT) BETWEEN 0 AND 9007199254740991  -- MAX_TOKENS: 2^53 - 1
         THEN try_cast(value AS BIGINT) END;

-- A whole number from 0 (a JSON integer: no fraction, no exponent), as minified JSON text.
CREATE OR REPLACE TEMP MACRO is_count(j) AS
    try_cast(j::VARCHAR AS UBIGINT) IS NOT NULL
    AND NOT (contains(j::VARCHAR, '.') OR contains(j::VARCHAR, 'e') OR contains(j::VARCHAR, 'E'));

-- The entries of a scopes object given its keys and values in order (json_keys, json_extract '$.*'): a key given
-- twice counts once, with its first value — as DuckDB's JSON reader reads a record's own keys, so every key of a
-- line follows one rule (engine.usage.log.first_values, for the Python reader).
CREATE OR REPLACE TEMP MACRO scope_entries(keys, vals, seed) AS
    list_transform(
        list_filter(range(1, len(keys) + 1), lambda i: list_position(keys, keys[i]) = i),
        lambda i, place: {'place': place, 'name': keys[i], 'tokens': scope_tokens(vals[i], seed)});

-- Whether a line's values (JSON text, NULL when missing) are those of a usage record of ours written the usual
-- way, told by cheap tests of their text: a whole-number budget below 10^18 and tokens below 10^15, a string
-- timestamp (a time, when a period is given: since, until; ran_at is the time read from it, by fast_lines.sql),
-- a non-empty string agent, a plain decimal usage (or
-- none), true/false flags (or none), string tier and profile (or none). Such a line passes records.sql's checks
-- for these values with the same values (fast_runs.sql checks its scopes); every other line takes them.
-- (A line that gives NULL here is not plain either.)
CREATE OR REPLACE TEMP MACRO plain_record(budget_allocated, ts, agent, profile, tier, budget, loaded, usage,
                                          exceeded, success, since, until, ran_at) AS
    budget_allocated IS NULL
    AND regexp_full_match(budget::VARCHAR, '[0-9]{1,18}') AND regexp_full_match(loaded::VARCHAR, '[0-9]{1,15}')
    AND starts_with(ts::VARCHAR, '"') AND starts_with(agent::VARCHAR, '"') AND agent::VARCHAR <> '""'
    AND (usage IS NULL OR regexp_full_match(usage::VARCHAR, '[0-9]{1,15}(\.[0-9]{1,17})?'))
    AND (exceeded IS NULL OR exceeded::VARCHAR IN ('true', 'false'))
    AND (success IS NULL OR success::VARCHAR IN ('true', 'false'))
    AND (tier IS NULL OR starts_with(tier::VARCHAR, '"'))
    AND (profile IS NULL OR starts_with(profile::VARCHAR, '"'))
    AND ((since IS NULL AND until IS NULL) OR ran_at IS NOT NULL);

-- The hash of the values of a line that decide whether it is plain (fast_lines.sql): lines alike in them are alike
-- in that, so the lines the first pass left unchecked are found again by it (and checked again: hashes collide).
CREATE OR REPLACE TEMP MACRO unusual_line_hash(budget_allocated, ts, agent, profile, tier, budget, loaded, usage,
                                               exceeded, success, scopes) AS
    hash(budget_allocated, ts, agent, profile, tier, budget, loaded, usage, exceeded, success, scopes);
