"""ctxbudget report --period week|month [--format md|json]"""

from __future__ import annotations

from engine.cli.log_options import add_log
from engine.cli.options import add_format, add_policy

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "the weekly usage summary or the monthly recommendations, as Markdown, JSON or an HTML page"
DESCRIPTION = """\
A report for a schedule: `week` summarises the last 7 days of the usage log (per agent and per tier, with a
watch list of agents past the policy's thresholds); `month` covers 30 days and adds one recommendation per
agent. Markdown by default (for a chat message, an issue or a wiki page), JSON with --format json, one
self-contained HTML page with charts with --format html.

  ctxbudget report --period week > weekly.md
  0 6 * * 0  ctxbudget report --period week --log /var/log/agents/usage.jsonl > ~/reports/week-$(date +\\%F).md

docs/usage.md has a cron line and a scheduled GitHub Actions job."""
ORDER = 54


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--period", choices=("week", "month"), required=True, help="week (7 days) or month (30)")
    add_format(parser, default="md", html="one self-contained page with charts; needs plotly")
    parser.add_argument("--until", type=_date, metavar="DATE", help="the end of the period (default: now)")
    add_log(parser, engine=True)
    add_policy(parser)


def _date(text: str):  # noqa: ANN202 - argparse type
    from engine.cli.log_options import parse_date

    return parse_date(text)


def run(args: argparse.Namespace) -> Result:
    from pathlib import Path

    from engine.cli.log_options import log_location, report_skipped, show_progress
    from engine.cli.options import policy_from
    from engine.cli.progress import progress_bar
    from engine.cli.render import Result
    from engine.diagnostics import UsageError
    from engine.report import build_report

    policy = policy_from(args)
    path = log_location(args, policy)
    try:
        with progress_bar(show_progress(args), f"reading {Path(path).name}") as advance:
            report = build_report(policy, path, args.period, until=args.until, progress=advance,
                                  engine=args.engine, spark_master=args.spark_master)
    except OSError as exc:
        raise UsageError(f"cannot read the usage log {path}: {exc.strerror or exc}") from None
    except ImportError as exc:
        raise UsageError(f"--engine {args.engine} needs {exc.name}: pip install 'ctxbudget[spark]'") from None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    report_skipped(report.analysis)
    return Result(report)


def render_md(result: Result, args: argparse.Namespace) -> None:
    import sys

    sys.stdout.write(result.data.markdown())


def render_html(result: Result, args: argparse.Namespace) -> None:
    import sys

    from engine.diagnostics import UsageError

    try:
        page = result.data.html()
    except ImportError:
        raise UsageError("report --format html needs plotly: pip install 'ctxbudget[html]'") from None
    sys.stdout.write(page)
