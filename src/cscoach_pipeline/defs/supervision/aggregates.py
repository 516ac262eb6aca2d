"""What a supervisor reads per day: agent scorecards, team and centre trends with rolling
means, and the review queue, computed from a span of days' consultation facts
(AggregateStore.day_facts). Plain functions over pandas frames; rows as the tables take them.

A consultation's day is the day of its `recorded_at` (when the conversation happened), else
of its upload, in the centre's timezone. Each consultation counts with its newest
quality_metrics row, so a reanalysis replaces its scores in every aggregate.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    import pandas as pd

    from cscoach_pipeline.defs.warehouse.stores import DayFacts

UNASSIGNED = "unassigned"
ROLLING_DAYS = (7, 28)
# Categories that put a consultation in the review queue, with their weight.
QUEUE_CATEGORIES = {
    "legal_threat": 40.0,
    "escalation_request": 25.0,
    "cancellation_intent": 20.0,
    "unhappy_ending": 15.0,
    "complaint": 10.0,
}
_FAILED_CRITICAL = 100.0
_NEGATIVE_END = -0.25


def day_span(days: Sequence[date], timezone: str) -> tuple[datetime, datetime]:
    """[start, end) in UTC covering these local days."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(min(days), time(), zone).astimezone(UTC)
    end = datetime.combine(max(days) + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def consultation_day(
    recorded_at: datetime | None, uploaded_at: datetime | None, timezone: str
) -> date | None:
    moment = recorded_at if recorded_at is not None else uploaded_at
    if moment is None:
        return None
    if moment.tzinfo is None:  # SQLite returns naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(timezone)).date()


def _with_days(facts: DayFacts, timezone: str) -> pd.DataFrame:
    frame = facts.consultations.copy()
    frame["day"] = [
        consultation_day(_py(r), _py(u), timezone)
        for r, u in zip(frame["recorded_at"], frame["uploaded_at"], strict=True)
    ]
    frame["agent_id"] = frame["agent_id"].fillna(UNASSIGNED).replace("", UNASSIGNED)
    frame["team"] = frame["team"].fillna("")
    # A chat's customer may not speak in the first or last quarter: the nearest one counts.
    frame["sentiment_start"] = frame["customer_sentiment_q1"].fillna(frame["customer_sentiment_q2"])
    frame["sentiment_end"] = frame["customer_sentiment_q4"].fillna(frame["customer_sentiment_q3"])
    return frame


def _py(value: Any) -> datetime | None:
    import pandas as pd

    if value is None or pd.isna(value):
        return None
    return value.to_pydatetime() if hasattr(value, "to_pydatetime") else value


def _mean(series: pd.Series) -> float | None:
    value = series.mean()
    return None if value != value else round(float(value), 3)  # NaN: nothing to average


def _question_scores(answers: pd.DataFrame, ids: Iterable[str]) -> dict[str, float]:
    chosen = answers[answers["consultation_id"].isin(list(ids)) & ~answers["na"].astype(bool)]
    chosen = chosen[chosen["max_score"] > 0]
    if chosen.empty:
        return {}
    percent = chosen["score"] / chosen["max_score"] * 100
    means = percent.groupby(chosen["question_id"]).mean()
    return {str(q): round(float(v), 1) for q, v in sorted(means.items())}


def _metrics(group: pd.DataFrame, answers: pd.DataFrame) -> dict[str, Any]:
    scored = group[group["overall_score"].notna()]
    resolution = scored["resolution_status"]
    count = len(scored)

    def rate(status: str) -> float | None:
        return round(float((resolution == status).sum()) / count, 3) if count else None

    interruptions = scored["interruptions_by_agent"].dropna()
    return {
        "consultations": len(group),
        "scored": count,
        "failed": int((group["status"] == "failed").sum()),
        "mean_score": _mean(scored["overall_score"]),
        "median_score": (round(float(scored["overall_score"].median()), 3) if count else None),
        "pass_rate": round(float((scored["pass_state"] == "passed").sum()) / count, 3)
        if count
        else None,
        "question_scores": _question_scores(answers, scored["consultation_id"]),
        "mean_agent_talk_share": _mean(scored["agent_talk_share"]),
        "mean_agent_words_per_minute": _mean(scored["agent_words_per_minute"]),
        "mean_non_talk_share": _mean(scored["non_talk_share"]),
        "interruptions_by_agent": int(interruptions.sum()) if len(interruptions) else None,
        "mean_response_latency_s": _mean(scored["agent_response_latency_median_s"]),
        "mean_handle_time_s": _mean(scored["duration_s"]),
        "customer_sentiment_start": _mean(scored["sentiment_start"]),
        "customer_sentiment_end": _mean(scored["sentiment_end"]),
        "resolved_rate": rate("resolved"),
        "escalated_rate": rate("escalated"),
        "unresolved_rate": rate("unresolved"),
        "llm_cost_usd": round(float(group["cost_usd"].sum()), 6)
        if group["cost_usd"].notna().any()
        else 0.0,
    }


def agent_daily_rows(
    facts: DayFacts, days: Sequence[date], timezone: str, computed_at: datetime
) -> list[dict[str, Any]]:
    frame = _with_days(facts, timezone)
    rows = []
    for (day, agent_id), group in frame[frame["day"].isin(days)].groupby(["day", "agent_id"]):
        names = group["agent_name"].dropna()
        teams = group["team"][group["team"] != ""]
        rows.append(
            {
                "day": day,
                "agent_id": agent_id,
                "agent_name": names.iloc[-1] if len(names) else None,
                # An agent who moved team mid-day counts with the team most of it was in.
                "team": teams.mode().iloc[0] if len(teams) else "",
                **_metrics(group, facts.answers),
                "computed_at": computed_at,
            }
        )
    return rows


def _rolling(frame: pd.DataFrame, day: date) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for length in ROLLING_DAYS:
        window = frame[(frame["day"] > day - timedelta(days=length)) & (frame["day"] <= day)]
        scored = window[window["overall_score"].notna()]
        out[f"rolling_{length}d_mean_score"] = _mean(scored["overall_score"])
        out[f"rolling_{length}d_pass_rate"] = (
            round(float((scored["pass_state"] == "passed").sum()) / len(scored), 3)
            if len(scored)
            else None
        )
        out[f"rolling_{length}d_consultations"] = len(window)
    return out


def team_daily_rows(
    facts: DayFacts, days: Sequence[date], timezone: str, computed_at: datetime
) -> list[dict[str, Any]]:
    """Per team and for the whole centre; `facts` must reach 27 days before the first day
    (the rolling means are consultation-weighted over the 7 and 28 days to each day)."""
    frame = _with_days(facts, timezone)
    rows = []
    scopes: list[tuple[str, str, pd.DataFrame]] = [("centre", "", frame)]
    scopes += [("team", team, group) for team, group in frame.groupby("team")]
    for scope, team, scoped in scopes:
        for day in days:
            group = scoped[scoped["day"] == day]
            if group.empty:
                continue
            rows.append(
                {
                    "day": day,
                    "scope": scope,
                    "team": team,
                    "agents": int(group["agent_id"].nunique()),
                    **_metrics(group, facts.answers),
                    **_rolling(scoped, day),
                    "computed_at": computed_at,
                }
            )
    return rows


@dataclass(frozen=True)
class _Candidate:
    priority: float
    reasons: list[str]


def _why(row: Any, categories: set[str]) -> _Candidate:
    priority, reasons = 0.0, []
    if row["pass_state"] == "failed":
        priority += _FAILED_CRITICAL
        reasons.append(f"failed critical question: {row['pass_reason']}")
    for category, weight in QUEUE_CATEGORIES.items():
        if category in categories:
            priority += weight
            reasons.append(category.replace("_", " "))
    if row["resolution_status"] == "escalated":
        priority += 15.0
        reasons.append("escalated")
    end = row["sentiment_end"]
    if end == end and end is not None and end < _NEGATIVE_END:  # not NaN
        priority += 10.0 + 20.0 * min(1.0, -end)
        reasons.append(f"customer negative at the end ({end:+.2f})")
    score = row["overall_score"]
    if row["pass_state"] == "below_pass_mark":
        priority += 10.0
        reasons.append("below the pass mark")
    if score == score and score is not None:
        priority += (100.0 - float(score)) / 10.0  # lower scores first among equals
    return _Candidate(round(priority, 2), reasons)


def review_queue_rows(
    facts: DayFacts, days: Sequence[date], timezone: str, size: int, computed_at: datetime
) -> list[dict[str, Any]]:
    """Per day, up to `size` consultations to listen to first, with why: a failed critical
    question first, then legal threats, escalations, cancellations, an unhappy end,
    complaints, low scores."""
    frame = _with_days(facts, timezone)
    frame = frame[frame["day"].isin(days) & frame["overall_score"].notna()]
    fired: dict[str, set[str]] = {}
    for consultation_id, category_id in zip(
        facts.categories["consultation_id"], facts.categories["category_id"], strict=True
    ):
        fired.setdefault(consultation_id, set()).add(category_id)
    rows = []
    for day, group in frame.groupby("day"):
        ranked = []
        for _, row in group.iterrows():
            categories = fired.get(row["consultation_id"], set())
            why = _why(row, categories)
            if why.reasons:
                ranked.append((why, row, categories))
        ranked.sort(key=lambda item: (-item[0].priority, item[1]["consultation_id"]))
        for rank, (why, row, categories) in enumerate(ranked[:size], start=1):
            rows.append(
                {
                    "day": day,
                    "consultation_id": row["consultation_id"],
                    "rank": rank,
                    "priority": why.priority,
                    "reasons": "; ".join(why.reasons),
                    "failed_critical": row["pass_state"] == "failed",
                    "overall_score": float(row["overall_score"]),
                    "pass_state": row["pass_state"],
                    "customer_sentiment_end": _none(row["sentiment_end"]),
                    "categories": ", ".join(sorted(categories & set(QUEUE_CATEGORIES))) or None,
                    "agent_id": row["agent_id"],
                    "team": row["team"] or None,
                    "source_key": row["source_key"],
                    "report_location": _none(row["report_location"]),
                    "computed_at": computed_at,
                }
            )
    return rows


def _none(value: Any) -> Any:
    return None if value is None or value != value else value
