"""Refreshing the day aggregates: read the days' facts, compute the rows, replace the days.
One function per table, shared by the assets and the benchmark. A long range (a 90-day
backfill) is refreshed in chunks of `CHUNK_DAYS`: memory stays that of two weeks of facts,
and each day is still replaced in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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

CHUNK_DAYS = 14


def chunks(days: Sequence[date], size: int = CHUNK_DAYS) -> Iterator[list[date]]:
    ordered = sorted(days)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _chunked(
    refresh: Callable[..., list[dict[str, Any]]],
) -> Callable[..., list[dict[str, Any]]]:
    def run(store: AggregateStore, days: Sequence[date], *args: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for chunk in chunks(days):
            rows += refresh(store, chunk, *args)
        return rows

    run.__doc__ = refresh.__doc__
    return run


@_chunked
def refresh_agent_days(
    store: AggregateStore, days: Sequence[date], timezone: str
) -> list[dict[str, Any]]:
    facts = store.day_facts(*day_span(days, timezone))
    rows = agent_daily_rows(facts, days, timezone, utcnow())
    store.replace_days(tables.agent_daily_scorecards, days, rows)
    return rows


@_chunked
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


@_chunked
def refresh_review_queue(
    store: AggregateStore, days: Sequence[date], timezone: str, size: int
) -> list[dict[str, Any]]:
    facts = store.day_facts(*day_span(days, timezone))
    rows = review_queue_rows(facts, days, timezone, size, utcnow())
    store.replace_days(tables.review_queue, days, rows)
    return rows
