"""ctxbudget export --to DIR [--log P] [--days N | --since DATE] [--until DATE] [--json]"""

from __future__ import annotations

from engine.cli.log_options import add_log, add_period
from engine.cli.options import add_format, add_policy

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "compact usage logs into Parquet partitioned by date (and host), for object storage or a warehouse"
DESCRIPTION = """\
Write the runs of the usage log (a file, a folder of *.jsonl, or a glob) as Parquet under DIR, partitioned by
UTC date (DIR/date=2025-10-14/) and, when records carry a `host`, by host too. Running it again over the same
logs replaces the files it wrote before (other logs' files stay), so it is safe to schedule. Lines that are not
usage records are skipped, counted and reported, as `analyze` does. `analyze --log DIR` (or DIR/**/*.parquet,
or the same folder in object storage) reads the result. DIR must not hold the logs it exports, and reading a
log together with its export (or two exports of it) is an error: each run would count twice.

  ctxbudget export --to /srv/usage-parquet
  ctxbudget export --log '/var/log/agents/*.jsonl' --to /srv/usage-parquet --days 1"""
ORDER = 55


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, metavar="DIR", help="the folder to write Parquet under")
    add_log(parser)
    add_period(parser)
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> Result:
    from engine.analytics import duck
    from engine.cli.log_options import log_location, report_skipped_lines, since_from
    from engine.cli.options import policy_from
    from engine.cli.render import Result
    from engine.diagnostics import UsageError

    policy = policy_from(args)
    location = log_location(args, policy)
    try:
        files = duck.log_files(location)
        result = duck.export(files, args.to, since=since_from(args), until=args.until)
    except OSError as exc:
        raise UsageError(f"cannot export {location} to {args.to}: {exc.strerror or exc}") from None
    except ValueError as exc:  # a Parquet file among the log's that is not a usage log
        raise UsageError(f"cannot export {location}: {exc}") from None
    report_skipped_lines(str(location), result["skipped_lines"], result["skipped"])
    return Result({k: v for k, v in result.items() if k != "skipped"} | {"log": str(location), "to": args.to})


def render_text(result: Result, args: argparse.Namespace) -> None:
    from engine.cli.output import say

    result, location = result.data, result.data["log"]
    say(f"{location}: {result['runs']:,} run{'s' if result['runs'] != 1 else ''} → {len(result['files'])} Parquet "
        f"file{'s' if len(result['files']) != 1 else ''} in {result['partitions']} partition"
        f"{'s' if result['partitions'] != 1 else ''} of {args.to}")
