"""The usage log: one JSONL record per agent run (see ``schemas/usage-record.schema.json``).

    append_record(path, record)          # safe with many writers at once; LogRefused: not a regular .jsonl
    reader = read_log(path)
    for record in reader: ...            # reader.skipped_lines: torn or corrupt lines, skipped
"""

from engine.usage.location import ENV_VAR, default_log_path, resolve_log_path
from engine.usage.log import LogReader, LogRefused, SkippedLine, append_record, read_log
from engine.usage.record import RECORD_FIELDS, CorruptRecord, UsageRecord

__all__ = ["ENV_VAR", "RECORD_FIELDS", "CorruptRecord", "LogReader", "LogRefused", "SkippedLine", "UsageRecord",
           "append_record", "default_log_path", "read_log", "resolve_log_path"]
