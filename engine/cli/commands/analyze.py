"""ctxbudget analyze [--log P] [--days N | --since DATE] [--agent A] [--json]"""

from __future__ import annotations

from engine.cli.log_options import add_agent, add_log, add_period
from engine.cli.options import add_format, add_policy

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    import argparse

    from engine.cli.render import Result

HELP = "usage statistics from the usage log, overall and per agent"
DESCRIPTION = """\
What agents actually loaded: overall and per agent — runs, mean / median / p90 / max usage (tokens loaded as
a share of the budget), how often the budget was exceeded, usage per tier, and each scope's share of the
loaded tokens against the profile's weight. Lines of the log that are torn or corrupt are skipped and
reported on stderr.

  ctxbudget analyze --days 7
  ctxbudget analyze --agent dbt-expert --json"""
ORDER = 51


def configure(parser: argparse.ArgumentParser) -> None:
    add_log(parser, engine=True)
    add_period(parser)
    add_agent(parser)
    add_policy(parser)
    add_format(parser)


def run(args: argparse.Namespace) -> Result:
    from engine.cli.log_options import analyze_log, since_from
    from engine.cli.options import policy_from
    from engine.cli.render import Result

    policy = policy_from(args)
    return Result(analyze_log(args, policy, since=since_from(args), until=args.until, agent=args.agent))


def render_text(result: Result, args: argparse.Namespace) -> None:
    print_analysis(result.data)


def pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def print_analysis(analysis) -> None:  # noqa: ANN001 - an engine.analytics.Analysis
    """The human rendering: a summary line, then agents, tiers and scopes tables."""
    from engine.cli.output import say, table

    data = analysis.to_dict()
    overall = data["overall"]
    from datetime import timezone

    period = f" since {analysis.since.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if analysis.since else ""
    if analysis.until:
        period += f" until {analysis.until.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC"
    skipped = f"; {analysis.skipped_lines:,} line{'s' if analysis.skipped_lines != 1 else ''} skipped" \
        if analysis.skipped_lines else ""
    agents = len(data["agents"])
    say(f"{analysis.log}: {analysis.runs:,} run{'s' if analysis.runs != 1 else ''} of {agents} "
        f"agent{'s' if agents != 1 else ''}{period}{skipped}")
    if not analysis.runs:
        return
    say(f"usage: mean {pct(overall['mean_usage'])}, median {pct(overall['median_usage'])}, "
        f"p90 {pct(overall['p90_usage'])}, max {pct(overall['max_usage'])}; over budget in "
        f"{overall['exceeded']:,} run{'s' if overall['exceeded'] != 1 else ''} "
        f"({pct(overall['exceedance_rate'])}); {overall['failed']:,} failed")
    say()
    agents = data["agents"]
    table(["agent", "profile", "runs", "mean", "median", "p90", "max", "over budget"],
          [(name, a["profile"], a["runs"], pct(a["mean_usage"]), pct(a["median_usage"]), pct(a["p90_usage"]),
            pct(a["max_usage"]), pct(a["exceedance_rate"])) for name, a in agents.items()],
          title="agents", right=(2, 3, 4, 5, 6, 7))
    say()
    table(["agent", "tier", "runs", "mean", "over budget"],
          [(name, tier, t["runs"], pct(t["mean_usage"]), pct(t["exceedance_rate"]))
           for name, a in agents.items() for tier, t in a["tiers"].items()],
          title="usage per tier", right=(2, 3, 4))
    tiers = data.get("tiers") or {}
    if any(t["sources"]["detected"] + t["sources"]["given"] + t["sources"]["default"] for t in tiers.values()):
        say()
        table(["tier", "runs", "mean", "over budget", "detected", "given", "mean confidence"],
              [(tier, t["runs"], pct(t["mean_usage"]), pct(t["exceedance_rate"]), pct(t["detected_share"]),
                pct(t["given_share"]), "" if t["mean_confidence"] is None else f"{t['mean_confidence']:.2f}")
               for tier, t in tiers.items()],
              title="tiers: where each run's tier came from", right=(1, 2, 3, 4, 5, 6))
    say()
    table(["agent", "scope", "tokens", "share", "weight", "drift"],
          [(name, scope, s["tokens"], pct(s["share"]), "" if s["weight"] is None else pct(s["weight"]),
            "" if s["drift"] is None else f"{s['drift'] * 100:+.1f}")
           for name, a in agents.items() for scope, s in a["scopes"].items()],
          title="scopes: share of loaded tokens against the profile's weight (drift in points)",
          right=(2, 3, 4, 5))
