"""Scheduled reports: the weekly usage summary and the monthly recommendations, as Markdown or JSON.

    report = build_report(policy, log, "month")
    report.to_dict(); report.markdown()

A week covers the 7 days before ``until`` (default: now) and summarises usage, with a watch list of agents
with enough runs past the policy's upgrade or downgrade thresholds; a month covers 30 days and adds one
recommendation per agent.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

TYPE_CHECKING = False  # not typing's: importing typing costs every start
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

from engine.analytics import Analysis, analyze
from engine.analytics.stats import Progress
from engine.analytics.stats import percent as _pct
from engine.recommend import Recommendation, recommend
from engine.records import Record, to_dict
from engine.text import markdown_text, printable

PERIODS = {"week": 7, "month": 30}


class Watch(Record):
    """An agent on a report's watch list, and why."""

    agent: str
    why: str


class Report(Record):
    """A week's or a month's usage (and, monthly, recommendations); its JSON form is ``report --format json``."""

    period: str
    since: datetime
    until: datetime
    policy: str
    analysis: Analysis
    watch: tuple[Watch, ...]
    recommendations: tuple[Recommendation, ...] | None  # monthly only
    min_confidence: float
    min_samples: int
    apply_command: str = ""  # the `ctxbudget apply --dry-run` line that plans the recommendations
    upgrade_exceedance_rate: float = 0.2  # the policy's threshold (a line in the HTML chart)

    @property
    def log(self) -> str:
        """The usage log the report read."""
        return self.analysis.log

    _json_fields = ("period", "since", "until", "policy", "log", "analysis", "watch", "recommendations")
    _json_convert = {"since": datetime.isoformat, "until": datetime.isoformat}
    _json_skip_none = ("recommendations",)
    to_dict = to_dict

    def markdown(self) -> str:
        return render_markdown(self)

    def html(self) -> str:
        return render_html(self)


def build_report(policy: Any, log: str | os.PathLike, period: str, until: datetime | None = None,
                 progress: Progress | None = None, engine: str = "duckdb", spark_master: str | None = None) -> Report:
    """The report of ``period`` (week or month) ending at ``until``."""
    until = until or datetime.now(timezone.utc)
    try:
        since = until - timedelta(days=PERIODS[period])
    except OverflowError:  # a period ending in the calendar's first days starts on its first day
        since = datetime.min.replace(tzinfo=timezone.utc)
    analysis = analyze(policy, log, since=since, until=until, progress=progress, engine=engine,
                       spark_master=spark_master, daily=True)
    settings = policy.recommendations
    watch = []
    for name, item in analysis.agents.items():
        stats = item.stats
        if stats.runs < settings.min_samples:
            continue
        if stats.exceedance_rate > settings.upgrade_exceedance_rate:
            watch.append((name, f"over budget in {stats.exceeded} of {stats.runs} runs "
                                f"({_pct(stats.exceedance_rate)})"))
        elif stats.mean_usage < settings.downgrade_mean_usage:
            watch.append((name, f"mean usage {_pct(stats.mean_usage)} over {stats.runs} runs"))
    recommendations = recommend(policy, analysis) if period == "month" else None
    from engine.apply import plan_changes, suggested_command

    command = ""
    if recommendations and plan_changes(policy, recommendations).changes:
        command = suggested_command(policy, log, since, until)
    return Report(period, since, until, policy.source, analysis, tuple(Watch(*w) for w in watch),
                  None if recommendations is None else tuple(recommendations), settings.min_confidence,
                  settings.min_samples, command, settings.upgrade_exceedance_rate)


def _runs(count: int) -> str:
    return f"{count:,} run{'s' if count != 1 else ''}"


def _cell(value: Any) -> str:
    return markdown_text(str(value))  # names from a usage log: shown as they are, never read as Markdown or HTML


def _code(text: str) -> str:
    """``text`` as a Markdown code span (a longer fence when it holds a backtick)."""
    text = printable(text.replace("\n", " "))
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _table(headers: list[str], rows: list[list[Any]], right: tuple[int, ...] = ()) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if i in right else "---" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def render_markdown(report: Report) -> str:
    a = report.analysis
    title = {"week": "Weekly usage report", "month": "Monthly usage report and recommendations"}[report.period]
    out = [f"# ctxbudget: {title}", "",
           f"{PERIODS[report.period]} days, {report.since.astimezone(timezone.utc):%Y-%m-%d %H:%M} to "
           f"{report.until.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC · "
           f"policy {_code(str(report.policy))} · log {_code(str(a.log))}", ""]
    o = a.overall
    skipped = ""
    if a.skipped_lines:
        skipped = f" · {a.skipped_lines:,} log line{'s' if a.skipped_lines != 1 else ''} skipped"
    if not a.runs:
        out += [f"No runs in this period{skipped}.", ""]
    else:
        agents = len(a.agents)
        out += [f"**{_runs(a.runs)}** of {agents:,} agent{'s' if agents != 1 else ''} · mean usage {_pct(o.mean_usage)} · median "
                f"{_pct(o.median_usage)} · p90 {_pct(o.p90_usage)} · over budget in {_runs(o.exceeded)} "
                f"({_pct(o.exceedance_rate)}) · {o.failed:,} failed{skipped}", "", "## Agents", ""]
        out += _table(["Agent", "Profile", "Runs", "Mean", "Median", "P90", "Max", "Over budget"],
                      [[name, i.profile, f"{i.stats.runs:,}", _pct(i.stats.mean_usage), _pct(i.stats.median_usage),
                        _pct(i.stats.p90_usage), _pct(i.stats.max_usage), _pct(i.stats.exceedance_rate)]
                       for name, i in a.agents.items()], right=(2, 3, 4, 5, 6, 7))
        tiers = a.to_dict()["overall"]["tiers"]
        out += ["", "## Usage per tier", ""]
        out += _table(["Tier", "Runs", "Mean", "Over budget"],
                      [[t, f"{v['runs']:,}", _pct(v["mean_usage"]), _pct(v["exceedance_rate"])]
                       for t, v in tiers.items()], right=(1, 2, 3))
        out += ["", "## Watch list", ""]
        out += [f"- **{markdown_text(agent)}**: {markdown_text(why)}" for agent, why in report.watch] or [
            f"No agent with {report.min_samples} runs or more past the policy's thresholds."]
    if report.recommendations is not None:
        out += ["", "## Recommendations", ""]
        if report.recommendations:
            out += _table(["Agent", "Profile", "Action", "Confidence", "Reason"],
                          [[r.agent, r.profile, r.action, f"{r.confidence:.2f}", r.reason]
                           for r in report.recommendations], right=(3,))
            if report.apply_command:
                out += ["", f"To see the changes at confidence ≥ {report.min_confidence:g} as an edit of the "
                            f"policy: `{report.apply_command}`; to write them, run it with `--yes` for "
                            f"`--dry-run`."]
            else:
                out += ["", f"No recommendation at confidence ≥ {report.min_confidence:g} changes the policy."]
        else:
            out += ["No runs to recommend from."]
    return "\n".join(out) + "\n"


# -- HTML: one self-contained page (plotly's JavaScript inlined; nothing is fetched when it is viewed) --------

def render_html(report: Report) -> str:
    """The report as one HTML page: per-agent usage distribution, exceedance over time, scope shares against
    weights, and (monthly) the recommendations with their evidence. Charts are plotly figures whose library is
    inlined once, so the page needs no network."""
    import html

    import plotly.graph_objects as go

    a = report.analysis
    charts: list[str] = []

    def label(name: str) -> str:
        """A name from the usage log as plotly shows it: as it is. Plotly reads a label's text as HTML (``<a
        href>`` makes a link, ``<b>`` bold, ``&amp;`` an ampersand), so its markup characters are written as the
        entities plotly turns back into them, and control characters as escapes (as the Markdown report)."""
        return html.escape(printable(name), quote=False)

    def add(fig: Any) -> None:
        fig.update_layout(template="plotly_white", margin={"l": 60, "r": 20, "t": 50, "b": 60}, height=420)
        charts.append(fig.to_html(full_html=False, include_plotlyjs=not charts, config={"displaylogo": False}))

    if a.runs:
        box = go.Figure()
        for name, item in a.agents.items():
            s = item.stats
            shown = label(name)
            box.add_trace(go.Box(name=shown, x=[shown], q1=[100 * s.q1_usage], median=[100 * s.median_usage],
                                 q3=[100 * s.q3_usage], lowerfence=[100 * s.min_usage],
                                 upperfence=[100 * s.max_usage], mean=[100 * s.mean_usage], boxpoints=False))
        box.add_hline(y=100, line_dash="dot", annotation_text="budget")
        box.update_layout(title="Usage per agent (% of budget: quartiles, mean, min to max)", showlegend=False,
                          yaxis_title="% of budget")
        add(box)
        if a.daily:
            days: dict[str, list[int]] = {}
            for day, _agent, runs, exceeded in a.daily:
                total = days.setdefault(day, [0, 0])
                total[0] += runs
                total[1] += exceeded
            over = go.Figure(go.Scatter(x=list(days), y=[100 * e / r for r, e in days.values()],
                                        mode="lines+markers", name="over budget",
                                        text=[f"{e} of {r} runs" for r, e in days.values()]))
            over.add_hline(y=100 * report.upgrade_exceedance_rate, line_dash="dot",
                           annotation_text="upgrade threshold")
            over.update_layout(title="Runs over budget per day (%)", yaxis_title="% of runs", xaxis_title="day (UTC)")
            add(over)
        scopes = go.Figure()
        names, shares, weights, labels = [], [], [], []
        for name, item in a.agents.items():
            found = item.stats.scope_shares()
            for scope in dict.fromkeys([*item.weights, *found]):
                names.append(label(name))
                labels.append(label(scope))
                shares.append(100 * found.get(scope, 0.0))
                weights.append(100 * float(item.weights.get(scope, 0.0)))
        scopes.add_trace(go.Bar(x=[names, labels], y=shares, name="share of loaded tokens"))
        scopes.add_trace(go.Bar(x=[names, labels], y=weights, name="profile weight"))
        scopes.update_layout(title="Scope shares against the profile's weights (%)", barmode="group",
                             yaxis_title="%", height=480)
        add(scopes)
    rows = ""
    for rec in report.recommendations or []:
        evidence = ", ".join(f"{k}: {v}" for k, v in rec.evidence.items() if k not in ("weights", "rule"))
        rows += (f"<tr><td>{html.escape(rec.agent)}</td><td>{html.escape(rec.profile)}</td>"
                 f"<td>{html.escape(rec.action)}</td><td class=n>{rec.confidence:.2f}</td>"
                 f"<td>{html.escape(rec.reason)}</td><td class=e>{html.escape(evidence)}</td></tr>\n")
    recommendations = ""
    if report.recommendations is not None:
        recommendations = ("<h2>Recommendations</h2>\n" + (
            "<table><tr><th>Agent</th><th>Profile</th><th>Action</th><th>Confidence</th><th>Reason</th>"
            f"<th>Evidence</th></tr>\n{rows}</table>\n" if rows else "<p>No runs to recommend from.</p>\n"))
        if report.apply_command:
            recommendations += f"<p>To see the changes as an edit: <code>{html.escape(report.apply_command)}</code></p>\n"
    title = {"week": "Weekly usage report", "month": "Monthly usage report and recommendations"}[report.period]
    summary = render_markdown(report).split("\n")[2]  # the period, policy and log line
    skipped = f" · {a.skipped_lines:,} log lines skipped" if a.skipped_lines else ""
    head = (f"{_runs(a.runs)} of {len(a.agents):,} agent{'s' if len(a.agents) != 1 else ''} · mean usage "
            f"{_pct(a.overall.mean_usage)} · over budget in {_runs(a.overall.exceeded)}{skipped}") if a.runs else \
        "No runs in this period."
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>ctxbudget: {html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; width: 100%; font-size: 0.9rem; }}
td, th {{ border-bottom: 1px solid #ddd; padding: 0.35rem 0.5rem; text-align: left; vertical-align: top; }}
td.n {{ text-align: right; }} td.e {{ font-size: 0.8rem; color: #555; }}
code {{ background: #f4f4f4; padding: 0.1rem 0.3rem; }}
</style></head>
<body>
<h1>ctxbudget: {html.escape(title)}</h1>
<p>{html.escape(summary.replace('`', ''))}</p>
<p><strong>{html.escape(head)}</strong></p>
{''.join(charts)}
{recommendations}</body></html>
"""


