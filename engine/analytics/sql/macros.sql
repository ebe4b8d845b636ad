-- Small helpers the queries share, named for what they mean in a usage record.

-- A JSON value, or NULL when it is missing or "falsy" (null, false, 0, "", {} or []): a record's optional
-- field that is falsy means "not given".
-- (json_extract gives minified JSON, so its text is compared.)
CREATE OR REPLACE TEMP MACRO falsy_or_null(j) AS
    CASE WHEN j IS NULL THEN NULL
         WHEN j::VARCHAR IN ('null', 'false', '""', '{}', '[]', '0') THEN NULL
         WHEN left(j::VARCHAR, 1) IN ('0', '-') AND try_cast(j AS DOUBLE) = 0 THEN NULL
         ELSE j END;

CREATE OR REPLACE TEMP MACRO truthy(j) AS falsy_or_null(j) IS NOT NULL;

-- The tokens one scope entry stands for: a number, or (the seed's scope_breakdown) {"tokens": n, "pct": p};
-- NULL when it is neither (the record is then not a usage record).
CREATE OR REPLACE TEMP MACRO scope_tokens(value, seed) AS
    CASE WHEN seed AND json_type(value) = 'OBJECT'
             THEN CASE WHEN json_extract(value, '$.tokens') IS NULL THEN 0.0
                       ELSE scope_number(json_extract(value, '$.tokens')) END
         ELSE scope_number(value) END;

CREATE OR REPLACE TEMP MACRO scope_number(value) AS
    CASE json_type(value)
        WHEN 'UBIGINT' THEN try_cast(value AS DOUBLE)
        WHEN 'BIGINT' THEN try_cast(value AS DOUBLE)
        WHEN 'DOUBLE' THEN try_cast(value AS DOUBLE)
        WHEN 'BOOLEAN' THEN try_cast(value AS BOOLEAN)::INT::DOUBLE
    END;
