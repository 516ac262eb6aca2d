"""Refreshing the day aggregates: read the days' facts, compute the rows, replace the days.
One function per table, shared by the assets and the benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from cscoach_pipeline.defs.supervision.aggregates import (
    ROLLING_DAYS,
    agent_daily_rows,
    day_span,
    review_queue_rows,
    team_daily_rows,
)
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.engine import utcnow
from cscoach_pipeline.defs.warehouse.stores import AggregateStore


def refresh_agent_days(
    store: AggregateStore, days: Sequence[date], timezone: str
) -> list[dict[str, Any]]:
    facts = store.day_facts(*day_span(days, timezone))
    rows = agent_daily_rows(facts, days, timezone, utcnow())
    store.replace_days(tables.agent_daily_scorecards, days, rows)
    return rows


def refresh_team_days(
    store: AggregateStore, days: Sequence[date], timezone: str
) -> list[dict[str, Any]]:
    facts = store.day_facts(*day_span(days, timezone))
    # The rolling windows reach back from the first day: scores only.
    reach = [min(days) - timedelta(days=max(ROLLING_DAYS) - 1), min(days) - timedelta(days=1)]
    earlier = store.day_facts(*day_span(reach, timezone), scores_only=True)
    rows = team_daily_rows(facts, days, timezone, utcnow(), earlier)
    store.replace_days(tables.team_daily_trends, days, rows)
    return rows


def refresh_review_queue(
    store: AggregateStore, days: Sequence[date], timezone: str, size: int
) -> list[dict[str, Any]]:
    facts = store.day_facts(*day_span(days, timezone))
    rows = review_queue_rows(facts, days, timezone, size, utcnow())
    store.replace_days(tables.review_queue, days, rows)
    return rows
