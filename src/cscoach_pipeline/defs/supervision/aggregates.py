"""What a supervisor reads per day: agent scorecards, team and centre trends with rolling
means, and the review queue, computed from a span of days' consultation facts
(AggregateStore.day_facts). Plain functions over pandas frames; rows as the tables take them.

A consultation's day is the day of its `recorded_at` (when the conversation happened), else
of its upload, in the centre's timezone. Each consultation counts with its newest
quality_metrics row, so a reanalysis replaces its scores in every aggregate.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    import pandas as pd

    frame = facts.consultations.copy()
    moment = pd.to_datetime(frame["recorded_at"], utc=True).fillna(
        pd.to_datetime(frame["uploaded_at"], utc=True)
    )
    frame["day"] = moment.dt.tz_convert(timezone).dt.date
    # Columns of NULLs come back as objects: as floats, the group means stay vectorized.
    for column in (c for c in _NUMERIC if c in frame.columns):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    frame["agent_id"] = frame["agent_id"].fillna(UNASSIGNED).replace("", UNASSIGNED)
    frame["team"] = frame["team"].fillna("")
    # A chat's customer may not speak in the first or last quarter: the nearest one counts.
    frame["sentiment_start"] = frame["customer_sentiment_q1"].fillna(frame["customer_sentiment_q2"])
    frame["sentiment_end"] = frame["customer_sentiment_q4"].fillna(frame["customer_sentiment_q3"])
    return frame


_QUESTION = "question:"
_NUMERIC = (
    "overall_score", "agent_talk_share", "agent_words_per_minute", "non_talk_share",
    "interruptions_by_agent", "agent_response_latency_median_s", "duration_s", "cost_usd",
    "customer_sentiment_q1", "customer_sentiment_q2", "customer_sentiment_q3",
    "customer_sentiment_q4",
)  # fmt: skip


def _with_questions(frame: pd.DataFrame, answers: pd.DataFrame) -> pd.DataFrame:
    """One column per scorecard question: the consultation's answer as 0-100 (N/A: NaN)."""
    chosen = answers[~answers["na"].astype(bool) & (answers["max_score"] > 0)]
    if chosen.empty:
        return frame
    percent = chosen.assign(percent=chosen["score"] / chosen["max_score"] * 100)
    wide = percent.pivot_table(
        index="consultation_id", columns="question_id", values="percent", aggfunc="mean"
    )
    wide.columns = [f"{_QUESTION}{q}" for q in wide.columns]
    return frame.merge(wide, left_on="consultation_id", right_index=True, how="left")


def _group_metrics(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The aggregate columns per group of `keys`, in one pass (scored-only figures: the
    quality columns are empty for consultations without a score)."""
    scored = frame["overall_score"].notna()
    flags = frame.assign(
        _scored=scored,
        _failed=frame["status"].eq("failed"),
        _passed=scored & frame["pass_state"].eq("passed"),
        _resolved=scored & frame["resolution_status"].eq("resolved"),
        _escalated=scored & frame["resolution_status"].eq("escalated"),
        _unresolved=scored & frame["resolution_status"].eq("unresolved"),
    )
    grouped = flags.groupby(keys, sort=True)
    questions = [c for c in frame.columns if c.startswith(_QUESTION)]
    out = grouped.agg(
        consultations=("consultation_id", "size"),
        scored=("_scored", "sum"),
        failed=("_failed", "sum"),
        mean_score=("overall_score", "mean"),
        median_score=("overall_score", "median"),
        passed=("_passed", "sum"),
        resolved=("_resolved", "sum"),
        escalated=("_escalated", "sum"),
        unresolved=("_unresolved", "sum"),
        mean_agent_talk_share=("agent_talk_share", "mean"),
        mean_agent_words_per_minute=("agent_words_per_minute", "mean"),
        mean_non_talk_share=("non_talk_share", "mean"),
        interruptions_by_agent=("interruptions_by_agent", "sum"),
        interruptions_known=("interruptions_by_agent", "count"),
        mean_response_latency_s=("agent_response_latency_median_s", "mean"),
        mean_handle_time_s=("duration_s", "mean"),
        customer_sentiment_start=("sentiment_start", "mean"),
        customer_sentiment_end=("sentiment_end", "mean"),
        llm_cost_usd=("cost_usd", "sum"),
        agents=("agent_id", "nunique"),
    )
    if questions:
        out = out.join(grouped[questions].mean())
    return out


def _rate(part: Any, whole: Any) -> float | None:
    return round(float(part) / float(whole), 3) if whole else None


def _num(value: Any, digits: int = 3) -> float | None:
    return None if value is None or value != value else round(float(value), digits)


def _figures(row: Any, questions: Sequence[str]) -> dict[str, Any]:
    interruptions = row["interruptions_by_agent"] if row["interruptions_known"] else None
    return {
        "consultations": int(row["consultations"]),
        "scored": int(row["scored"]),
        "failed": int(row["failed"]),
        "mean_score": _num(row["mean_score"]),
        "median_score": _num(row["median_score"]),
        "pass_rate": _rate(row["passed"], row["scored"]),
        "question_scores": {
            q[len(_QUESTION) :]: round(float(row[q]), 1) for q in questions if row[q] == row[q]
        },
        "mean_agent_talk_share": _num(row["mean_agent_talk_share"]),
        "mean_agent_words_per_minute": _num(row["mean_agent_words_per_minute"]),
        "mean_non_talk_share": _num(row["mean_non_talk_share"]),
        "interruptions_by_agent": None if interruptions is None else int(interruptions),
        "mean_response_latency_s": _num(row["mean_response_latency_s"]),
        "mean_handle_time_s": _num(row["mean_handle_time_s"]),
        "customer_sentiment_start": _num(row["customer_sentiment_start"]),
        "customer_sentiment_end": _num(row["customer_sentiment_end"]),
        "resolved_rate": _rate(row["resolved"], row["scored"]),
        "escalated_rate": _rate(row["escalated"], row["scored"]),
        "unresolved_rate": _rate(row["unresolved"], row["scored"]),
        "llm_cost_usd": round(float(row["llm_cost_usd"] or 0.0), 6),
    }


def agent_daily_rows(
    facts: DayFacts, days: Sequence[date], timezone: str, computed_at: datetime
) -> list[dict[str, Any]]:
    frame = _with_days(facts, timezone)
    frame = _with_questions(frame[frame["day"].isin(days)], facts.answers)
    if frame.empty:
        return []
    metrics = _group_metrics(frame, ["day", "agent_id"])
    questions = [c for c in metrics.columns if c.startswith(_QUESTION)]
    names = frame.dropna(subset=["agent_name"]).groupby(["day", "agent_id"])["agent_name"].last()
    # An agent who moved team mid-day counts with the team most of it was in.
    counted = frame[frame["team"] != ""].groupby(["day", "agent_id", "team"]).size()
    teams = (
        counted.sort_values(ascending=False, kind="stable")
        .reset_index()
        .drop_duplicates(["day", "agent_id"])
        .set_index(["day", "agent_id"])["team"]
    )
    rows = []
    for row in metrics.reset_index().to_dict("records"):
        day, agent_id = row["day"], row["agent_id"]
        rows.append(
            {
                "day": day,
                "agent_id": agent_id,
                "agent_name": names.get((day, agent_id)),
                "team": teams.get((day, agent_id), ""),
                **_figures(row, questions),
                "computed_at": computed_at,
            }
        )
    return rows


def _rolling(frame: pd.DataFrame, keys: list[str], days: Sequence[date]) -> pd.DataFrame:
    """Per group and day: consultation-weighted mean score, pass rate and volume over the 7
    and 28 days to that day."""
    import pandas as pd

    scored = frame["overall_score"].notna()
    daily = (
        frame.assign(
            _score=frame["overall_score"].fillna(0.0),
            _scored=scored,
            _passed=scored & frame["pass_state"].eq("passed"),
        )
        .groupby([*keys, "day"])
        .agg(
            score=("_score", "sum"),
            scored=("_scored", "sum"),
            passed=("_passed", "sum"),
            consultations=("consultation_id", "size"),
        )
    )
    calendar = pd.Index(
        [min(days) - timedelta(days=n) for n in range(max(ROLLING_DAYS) - 1, 0, -1)] + sorted(days),
        name="day",
    )
    parts = []
    for group, sub in daily.groupby(level=list(range(len(keys)))):
        sub = sub.droplevel(list(range(len(keys)))).reindex(calendar, fill_value=0)
        out = pd.DataFrame(index=sub.index)
        for length in ROLLING_DAYS:
            window = sub.rolling(length, min_periods=1).sum()
            out[f"rolling_{length}d_mean_score"] = (window["score"] / window["scored"]).where(
                window["scored"] > 0
            )
            out[f"rolling_{length}d_pass_rate"] = (window["passed"] / window["scored"]).where(
                window["scored"] > 0
            )
            out[f"rolling_{length}d_consultations"] = window["consultations"]
        for key, value in zip(keys, group if isinstance(group, tuple) else (group,), strict=True):
            out[key] = value
        parts.append(out.reset_index())
    return pd.concat(parts).set_index([*keys, "day"]) if parts else pd.DataFrame()


def team_daily_rows(
    facts: DayFacts,
    days: Sequence[date],
    timezone: str,
    computed_at: datetime,
    earlier: DayFacts | None = None,
) -> list[dict[str, Any]]:
    """Per team and for the whole centre. The rolling means are consultation-weighted over
    the 7 and 28 days to each day: `earlier` holds the 27 days before the first (scores
    only; their answers are not needed)."""
    frames = [_with_days(facts, timezone)]
    if earlier is not None:
        frames.append(_with_days(earlier, timezone))
    frame = _concat(frames).assign(scope="team")
    both = _concat([frame, frame.assign(scope="centre", team="")])
    chosen = both[both["day"].isin(days)]
    if chosen.empty:
        return []
    chosen = _with_questions(chosen, facts.answers)
    keys = ["scope", "team"]
    metrics = _group_metrics(chosen, [*keys, "day"])
    rolling = _rolling(both, keys, days)
    questions = [c for c in metrics.columns if c.startswith(_QUESTION)]
    rows = []
    windows_of = rolling.to_dict("index")
    for row in metrics.reset_index().to_dict("records"):
        scope, team, day = row["scope"], row["team"], row["day"]
        windows = windows_of[(scope, team, day)]
        rows.append(
            {
                "day": day,
                "scope": scope,
                "team": team,
                "agents": int(row["agents"]),
                **_figures(row, questions),
                **{
                    name: (int(v) if name.endswith("consultations") else _num(v))
                    for name, v in windows.items()
                },
                "computed_at": computed_at,
            }
        )
    return rows


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    return pd.concat(frames, ignore_index=True)


def _with_categories(frame: pd.DataFrame, categories: pd.DataFrame) -> pd.DataFrame:
    """One 0/1 column per queue category."""
    import pandas as pd

    chosen = categories[categories["category_id"].isin(list(QUEUE_CATEGORIES))]
    flags = (
        pd.crosstab(chosen["consultation_id"], chosen["category_id"]).clip(upper=1)
        if not chosen.empty
        else pd.DataFrame()
    )
    flags = flags.reindex(columns=list(QUEUE_CATEGORIES), fill_value=0)
    out = frame.join(flags, on="consultation_id")
    out[list(QUEUE_CATEGORIES)] = out[list(QUEUE_CATEGORIES)].fillna(0).astype(int)
    return out


def _priorities(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Each consultation's priority, and whether it has any reason to be reviewed."""
    failed = frame["pass_state"].eq("failed")
    below = frame["pass_state"].eq("below_pass_mark")
    escalated = frame["resolution_status"].eq("escalated")
    end = frame["sentiment_end"]
    negative = end.lt(_NEGATIVE_END)
    priority = failed * _FAILED_CRITICAL + escalated * 15.0 + below * 10.0
    priority = priority + negative * (10.0 + 20.0 * (-end).clip(upper=1.0)).fillna(0.0)
    reason = failed | below | escalated | negative
    for category, weight in QUEUE_CATEGORIES.items():
        priority = priority + frame[category] * weight
        reason = reason | frame[category].astype(bool)
    # Lower scores first among equals.
    priority = priority + (100.0 - frame["overall_score"]) / 10.0
    return priority.round(2), reason


def _reasons(row: Any) -> list[str]:
    reasons = []
    if row["pass_state"] == "failed":
        # The pass reason names the question: "critical question failed: compliance (no)".
        reasons.append(row["pass_reason"] or "critical question failed")
    reasons += [c.replace("_", " ") for c in QUEUE_CATEGORIES if row[c]]
    if row["resolution_status"] == "escalated":
        reasons.append("escalated")
    end = row["sentiment_end"]
    if end == end and end is not None and end < _NEGATIVE_END:
        reasons.append(f"customer negative at the end ({end:+.2f})")
    if row["pass_state"] == "below_pass_mark":
        reasons.append("below the pass mark")
    return reasons


def review_queue_rows(
    facts: DayFacts, days: Sequence[date], timezone: str, size: int, computed_at: datetime
) -> list[dict[str, Any]]:
    """Per day, up to `size` consultations to listen to first, with why: a failed critical
    question first, then legal threats, escalations, cancellations, an unhappy end,
    complaints, low scores."""
    frame = _with_days(facts, timezone)
    frame = frame[frame["day"].isin(days) & frame["overall_score"].notna()]
    if frame.empty:
        return []
    frame = _with_categories(frame, facts.categories)
    priority, has_reason = _priorities(frame)
    frame = frame.assign(priority=priority)[has_reason]
    frame = frame.sort_values(["day", "priority", "consultation_id"],
                              ascending=[True, False, True])  # fmt: skip
    chosen = frame.groupby("day", sort=True).head(size)
    rows = []
    rank, previous = 0, None
    for _, row in chosen.iterrows():
        rank = rank + 1 if row["day"] == previous else 1
        previous = row["day"]
        fired = [c for c in QUEUE_CATEGORIES if row[c]]
        rows.append(
            {
                "day": row["day"],
                "consultation_id": row["consultation_id"],
                "rank": rank,
                "priority": float(row["priority"]),
                "reasons": "; ".join(_reasons(row)),
                "failed_critical": row["pass_state"] == "failed",
                "overall_score": float(row["overall_score"]),
                "pass_state": row["pass_state"],
                "customer_sentiment_end": _none(row["sentiment_end"]),
                "categories": ", ".join(sorted(fired)) or None,
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
