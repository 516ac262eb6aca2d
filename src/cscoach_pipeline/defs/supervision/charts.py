"""The daily and weekly team reports: Markdown with three charts (score trend, agent
ranking, scorecard heat map) rendered to PNG with matplotlib, from the day aggregates' rows."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

_DPI = 80


@dataclass(frozen=True)
class TeamReport:
    team: str  # "" for the whole centre
    markdown: str  # with relative links to the charts
    charts: dict[str, bytes]  # file name -> PNG

    @property
    def name(self) -> str:
        return self.team or "centre"

    def inline_markdown(self) -> str:
        """The same Markdown with the charts embedded (the Dagster UI shows data URIs)."""
        text = self.markdown
        for file_name, png in self.charts.items():
            encoded = base64.b64encode(png).decode()
            text = text.replace(f"]({file_name})", f"](data:image/png;base64,{encoded})")
        return text


def _figure(width: float, height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=_DPI)


def _png(figure: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def score_trend_png(trend: Sequence[Mapping[str, Any]], title: str) -> bytes:
    figure, axes = _figure(6.0, 2.6)
    days = [r["day"] for r in trend]
    axes.plot(days, [r["mean_score"] for r in trend], marker="o", label="day")
    axes.plot(days, [r["rolling_7d_mean_score"] for r in trend], label="7-day mean")
    axes.set_ylim(0, 100)
    axes.set_ylabel("score")
    axes.set_title(title, fontsize=10)
    axes.legend(fontsize=8, loc="lower left")
    import matplotlib.dates as mdates

    # Whole days on the axis however few there are (the default locator shows hours).
    axes.xaxis.set_major_locator(mdates.DayLocator(interval=max(1, len(days) // 7)))
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    figure.autofmt_xdate()
    return _png(figure)


def agent_ranking_png(agents: Sequence[Mapping[str, Any]], title: str) -> bytes:
    ranked = sorted(agents, key=lambda r: r["mean_score"] or 0.0)[-15:]
    figure, axes = _figure(6.0, 0.8 + 0.3 * max(1, len(ranked)))
    axes.barh([str(r["agent_name"] or r["agent_id"]) for r in ranked],
              [r["mean_score"] or 0.0 for r in ranked])  # fmt: skip
    axes.set_xlim(0, 100)
    axes.set_xlabel("mean score")
    axes.set_title(title, fontsize=10)
    axes.tick_params(labelsize=8)
    return _png(figure)


def heat_map_png(agents: Sequence[Mapping[str, Any]], title: str) -> bytes:
    questions = sorted({q for r in agents for q in (r["question_scores"] or {})})
    ranked = sorted(agents, key=lambda r: -(r["mean_score"] or 0.0))[:15]
    grid = [[(r["question_scores"] or {}).get(q, float("nan")) for q in questions]
            for r in ranked]  # fmt: skip
    figure, axes = _figure(6.5, 1.2 + 0.3 * max(1, len(ranked)))
    image = axes.imshow(grid or [[float("nan")]], vmin=0, vmax=100, cmap="RdYlGn", aspect="auto")
    axes.set_xticks(range(len(questions)), questions, rotation=45, ha="right", fontsize=7)
    axes.set_yticks(range(len(ranked)), [str(r["agent_name"] or r["agent_id"]) for r in ranked],
                    fontsize=7)  # fmt: skip
    axes.set_title(title, fontsize=10)
    figure.colorbar(image, ax=axes, fraction=0.03)
    return _png(figure)


def _figure_of(value: Any, suffix: str = "") -> str:
    if value is None:
        return "–"
    return f"{value:.1f}{suffix}" if isinstance(value, float) else f"{value}{suffix}"


def team_report(
    team: str,
    day: date,
    trend: Sequence[Mapping[str, Any]],
    agents: Sequence[Mapping[str, Any]],
) -> TeamReport:
    """One team's (or, for team "", the centre's) report of `day`: `trend` is its
    team_daily_trends rows up to that day, `agents` the day's agent scorecards."""
    name = team or "the centre"
    today = next((r for r in trend if r["day"] == day), None)
    charts = {
        "score_trend.png": score_trend_png(trend, f"Score, {name}"),
        "agent_ranking.png": agent_ranking_png(agents, f"Agents by mean score, {day}"),
        "scorecard_heat_map.png": heat_map_png(agents, "Score per scorecard question"),
    }
    lines = [f"# Daily report: {name}, {day}", ""]
    if today is None:
        lines.append("No consultations on this day.")
    else:
        lines += [
            f"**Consultations:** {today['consultations']} ({today['scored']} scored, "
            f"{today['failed']} failed), **agents:** {today['agents']}  ",
            f"**Mean score:** {_figure_of(today['mean_score'])} "
            f"(7 days: {_figure_of(today['rolling_7d_mean_score'])}, "
            f"28 days: {_figure_of(today['rolling_28d_mean_score'])}), "
            f"**pass rate:** {_figure_of(_percent(today['pass_rate']), '%')}  ",
            f"**Resolved:** {_figure_of(_percent(today['resolved_rate']), '%')}, "
            f"**escalated:** {_figure_of(_percent(today['escalated_rate']), '%')}, "
            f"**customer sentiment at the end:** {_figure_of(today['customer_sentiment_end'])}",
        ]
    return TeamReport(team, "\n".join([*lines, *_chart_sections("Agents")]), charts)


def weekly_team_report(
    team: str,
    first: date,
    last: date,
    trend: Sequence[Mapping[str, Any]],
    week: Mapping[str, Any] | None,
    agents: Sequence[Mapping[str, Any]],
) -> TeamReport:
    """One team's (or the centre's) report of the week `first`..`last`: `trend` is its daily
    trend rows of the four weeks to the end of this one, `week` its figures over the week,
    `agents` each agent's figures over the week."""
    name = team or "the centre"
    charts = {
        "score_trend.png": score_trend_png(trend, f"Score, {name}, four weeks to {last}"),
        "agent_ranking.png": agent_ranking_png(agents, f"Agents by mean score, week of {first}"),
        "scorecard_heat_map.png": heat_map_png(agents, "Score per scorecard question, the week"),
    }
    lines = [f"# Weekly report: {name}, {first} to {last}", ""]
    if not week or not week["consultations"]:
        lines.append("No consultations in this week.")
    else:
        # The latest day of the week with figures (a centre closed on Sunday has none then).
        end = max((r for r in trend if r["day"] <= last), key=lambda r: r["day"], default=None)
        lines += [
            f"**Consultations:** {week['consultations']} ({week['scored']} scored, "
            f"{week['failed']} failed) over {week['days']} days, **agents:** {len(agents)}  ",
            f"**Mean score:** {_figure_of(week['mean_score'])} "
            f"(28 days: {_figure_of(end['rolling_28d_mean_score'] if end else None)}), "
            f"**pass rate:** {_figure_of(_percent(week['pass_rate']), '%')}  ",
            f"**Resolved:** {_figure_of(_percent(week['resolved_rate']), '%')}, "
            f"**escalated:** {_figure_of(_percent(week['escalated_rate']), '%')}, "
            f"**LLM cost:** ${week['llm_cost_usd']:.2f}",
            "",
            "| day | consultations | mean score | pass rate |",
            "|---|---|---|---|",
            *(
                f"| {r['day']} | {r['consultations']} | {_figure_of(r['mean_score'])} "
                f"| {_figure_of(_percent(r['pass_rate']), '%')} |"
                for r in trend
                if first <= r["day"] <= last
            ),
        ]
    lines += _chart_sections("Agents over the week")
    return TeamReport(team, "\n".join(lines), charts)


def _chart_sections(agents_heading: str) -> list[str]:
    """The three charts under their headings, linked by file name (inlined for the UI)."""
    return [
        "",
        "## Score trend",
        "![score trend](score_trend.png)",
        "",
        f"## {agents_heading}",
        "![agent ranking](agent_ranking.png)",
        "",
        "## Scorecard by agent",
        "![scorecard heat map](scorecard_heat_map.png)",
        "",
    ]


def _percent(value: float | None) -> float | None:
    return None if value is None else value * 100
