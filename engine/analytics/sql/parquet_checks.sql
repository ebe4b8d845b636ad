-- Why a row of a Parquet usage log is not a usage record (`reason`; NULL when it is one). Parquet written by
-- `ctxbudget export` holds only runs, but a file may come from many hands (a fleet's object storage), so each row
-- is checked as records.sql checks a log line, for the values its columns' types allow. Both engines run this
-- (Spark transpiled by sqlglot: hence array_length and list_filter, and no isnan/isinf — NaN compares above
-- every number in both engines, so `NOT (usage <= max double)` is NaN or +inf).
--
-- Input: the relation `parquet_rows` (the files' rows, with the columns duck.PARQUET_COLUMNS names).
SELECT *,
       CASE
           WHEN agent IS NULL OR agent = '' THEN '''agent'' must be a non-empty string'
           WHEN budget IS NULL OR budget < 0 OR tokens_loaded IS NULL OR tokens_loaded < 0
                OR tokens_loaded > 9007199254740991  -- MAX_TOKENS: 2^53 - 1
               THEN 'budget and tokens loaded must be non-negative integers'
           WHEN usage IS NULL OR usage < 0 OR NOT (usage <= 1.7976931348623157e308)
               THEN 'usage must be a non-negative number'
           WHEN scope_list IS NULL THEN 'per-scope tokens must be a mapping'
           WHEN array_length(list_filter(scope_list, lambda s: s IS NULL OR s.name IS NULL OR s.tokens IS NULL
                                                              OR s.tokens < 0 OR s.tokens > 9007199254740991)) > 0
               THEN 'per-scope tokens must be non-negative integers'
           WHEN array_length(list_distinct(list_transform(scope_list, lambda s: s.name))) <> array_length(scope_list)
               THEN 'a scope is named twice'
           WHEN exceeded IS NULL OR success IS NULL THEN '''exceeded'' and ''success'' must be true or false'
           WHEN tier IS NULL OR profile IS NULL THEN '''tier'' and ''profile'' must be strings'
       END AS reason
FROM parquet_rows
