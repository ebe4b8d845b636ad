"""Options of the commands that read or write the usage log: ``--log``, ``--days`` / ``--since``, and the
reading itself (with a progress bar on a terminal)."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any


def add_log(parser: argparse.ArgumentParser, engine: bool = False) -> None:
    """``--log``, and with ``engine`` (the commands that analyse) ``--engine``."""
    parser.add_argument("--log", metavar="PATH",
                        help="usage log: a file, a folder of *.jsonl / *.parquet, a glob, or a URL DuckDB's httpfs "
                             "reads (default: $CTXBUDGET_LOG, else the policy's usage_log, else "
                             "~/.local/state/ctxbudget/usage.jsonl)")
    if engine:
        parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb",
                            help="duckdb (default; every location) or spark (Parquet, e.g. from `ctxbudget export`; "
                                 "the [spark] extra)")
        parser.add_argument("--spark-master", metavar="URL",
                            help="with --engine spark: the cluster (default: $CTXBUDGET_SPARK_MASTER, else local[*])")


def add_period(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--days", type=_positive_int, metavar="N", help="only the runs of the last N days")
    group.add_argument("--since", type=_date, metavar="DATE",
                       help="only the runs since DATE (2025-10-01 or an ISO 8601 time; UTC unless it says)")
    parser.add_argument("--until", type=_date, metavar="DATE",
                        help="only the runs before DATE (same forms as --since)")


def add_agent(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--agent", metavar="A", help="only this agent (full or short name)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _date(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD) or ISO 8601 time: {text!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


parse_date = _date


def since_from(args: argparse.Namespace, now: datetime | None = None) -> datetime | None:
    """The start of the period ``--days`` / ``--since`` ask for (None: everything)."""
    if getattr(args, "days", None):
        try:
            return (now or datetime.now(timezone.utc)) - timedelta(days=args.days)
        except OverflowError:  # more days than the calendar holds before now: every run
            return None
    return getattr(args, "since", None)


def log_location(args: argparse.Namespace, policy: Any) -> Path | str:
    """What ``--log`` names for the analytics commands: a file, a folder, a glob or a remote URL (checked when
    read); the default log when it names nothing."""
    from engine.analytics.duck import GLOB, is_remote

    given = getattr(args, "log", None)
    if given and (is_remote(given) or os.path.isdir(given) or any(c in given for c in GLOB)):
        return given
    return log_path(args, policy)


def log_path(args: argparse.Namespace, policy: Any, must_exist: bool = True) -> Path:
    """The usage log the command uses; UsageError when it must exist and does not."""
    from engine.diagnostics import UsageError
    from engine.usage import resolve_log_path

    path = resolve_log_path(getattr(args, "log", None), policy)
    if must_exist and not path.is_file():
        where = "is not a file" if path.exists() else "does not exist"
        raise UsageError(f"the usage log {path} {where} (record runs with `ctxbudget log` or policy.monitor, "
                         f"or name a log with --log)")
    return path


def show_progress(args: argparse.Namespace) -> bool:
    """A progress bar only on a terminal, never with --format json or when output is piped."""
    from engine.cli.output import fancy

    return getattr(args, "format", None) != "json" and fancy() and sys.stderr.isatty()


def analyze_log(args: argparse.Namespace, policy: Any, since: datetime | None = None,
                until: datetime | None = None, agent: str | None = None) -> Any:
    """Analyze the log ``args`` name (a rich progress bar on a terminal); reports skipped lines on stderr."""
    from engine.analytics import analyze
    from engine.cli.progress import progress_bar
    from engine.diagnostics import UsageError

    path = log_location(args, policy)
    try:
        with progress_bar(show_progress(args), f"reading {Path(path).name}") as advance:
            analysis = analyze(policy, path, since=since, until=until, agent=agent, progress=advance,
                               engine=getattr(args, "engine", "duckdb"), spark_master=getattr(args, "spark_master", None))
    except OSError as exc:
        raise UsageError(f"cannot read the usage log {path}: {exc.strerror or exc}") from None
    except ImportError as exc:
        raise UsageError(f"--engine {args.engine} needs {exc.name}: pip install 'ctxbudget[spark]'") from None
    except ValueError as exc:  # a location the engine cannot read (Spark: not Parquet)
        raise UsageError(str(exc)) from None
    report_skipped(analysis)
    return analysis


def report_skipped(analysis: Any) -> None:
    """``path:line: warning: skipped: reason`` on stderr for the first skipped lines, and how many more."""
    report_skipped_lines(analysis.log, analysis.skipped_lines, analysis.skipped)


def report_skipped_lines(log: str, count: int, skipped: Any) -> None:
    from engine.cli.output import printable

    for line in skipped:
        print(printable(f"{log}:{line.line}: warning: skipped: {line.reason}"), file=sys.stderr)
    more = count - len(skipped)
    if more > 0:
        print(f"{log}: warning: {more:,} more line{'s' if more > 1 else ''} skipped", file=sys.stderr)
