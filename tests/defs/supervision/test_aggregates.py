"""Proves the pieces of the day aggregates that need no pipeline: a consultation's day is its
recorded_at (else its upload) in the centre's timezone, the UTC span of local days, which days
a change touches within the partitions, and the review queue's order and reasons."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pandas as pd

from cscoach_pipeline.defs.supervision.aggregates import (
    consultation_day,
    day_span,
    review_queue_rows,
)
from cscoach_pipeline.defs.supervision.sensors import affected_days
from cscoach_pipeline.defs.warehouse.stores import DayFacts

LATE_EVENING = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)


def test_the_day_is_the_centres_local_day_of_the_conversation() -> None:
    assert consultation_day(LATE_EVENING, None, "UTC") == date(2026, 11, 20)
    assert consultation_day(LATE_EVENING, None, "Asia/Seoul") == date(2026, 11, 21)
    upload = datetime(2026, 11, 25, 1, 0)  # naive, as SQLite returns it: UTC
    assert consultation_day(None, upload, "UTC") == date(2026, 11, 25)
    assert consultation_day(LATE_EVENING, upload, "UTC") == date(2026, 11, 20)
    assert consultation_day(None, None, "UTC") is None
    start, end = day_span([date(2026, 11, 21)], "Asia/Seoul")
    assert (start, end) == (
        datetime(2026, 11, 20, 15, 0, tzinfo=UTC),
        datetime(2026, 11, 21, 15, 0, tzinfo=UTC),
    )


def test_affected_days_stay_within_the_partitions() -> None:
    moments = [(LATE_EVENING, None), (None, datetime(2019, 1, 1)), (datetime(2030, 1, 1), None)]
    assert affected_days(moments, "UTC", date(2024, 1, 1), date(2026, 12, 3)) == [
        date(2026, 11, 20)
    ]


def _facts(rows: list[dict], categories: list[tuple[str, str]]) -> DayFacts:
    base = {
        "source_key": None, "agent_id": "A-1", "agent_name": None, "team": "cards",
        "recorded_at": LATE_EVENING, "uploaded_at": None, "report_location": None,
        "status": "succeeded", "resolution_status": "resolved", "pass_reason": "",
        "customer_sentiment_q1": None, "customer_sentiment_q2": None,
        "customer_sentiment_q3": None, "customer_sentiment_q4": 0.5,
    }  # fmt: skip
    frame = pd.DataFrame([{**base, **r, "source_key": f"incoming/{r['consultation_id']}"}
                          for r in rows])  # fmt: skip
    cats = pd.DataFrame(categories, columns=["consultation_id", "category_id"])
    return DayFacts(frame, pd.DataFrame(), cats)


def test_review_queue_ranks_failed_critical_first_and_skips_calm_calls() -> None:
    facts = _facts(
        [
            {"consultation_id": "calm", "overall_score": 95.0, "pass_state": "passed"},
            {"consultation_id": "low", "overall_score": 55.0, "pass_state": "below_pass_mark"},
            {"consultation_id": "threat", "overall_score": 80.0, "pass_state": "passed",
             "customer_sentiment_q4": -0.8},
            {"consultation_id": "critical", "overall_score": 70.0, "pass_state": "failed",
             "pass_reason": "critical question failed: compliance (no)"},
        ],
        [("threat", "legal_threat"), ("calm", "compliment")],
    )  # fmt: skip
    rows = review_queue_rows(facts, [date(2026, 11, 20)], "UTC", 10, LATE_EVENING)
    assert [r["consultation_id"] for r in rows] == ["critical", "threat", "low"]
    assert rows[0]["reasons"] == "critical question failed: compliance (no)"
    assert rows[0]["failed_critical"] is True
    assert rows[1]["reasons"] == "legal threat; customer negative at the end (-0.80)"
    assert rows[1]["categories"] == "legal_threat"
    assert rows[2]["reasons"] == "below the pass mark"
    assert [r["rank"] for r in rows] == [1, 2, 3]
    assert len(review_queue_rows(facts, [date(2026, 11, 20)], "UTC", 1, LATE_EVENING)) == 1
