"""Proves that refreshing a long range in chunks (a 90-day backfill: `CHUNK_DAYS` at a time,
so memory stays that of two weeks of facts) writes exactly the rows of refreshing each day on
its own: agents, the review queue, and the trends, whose 7- and 28-day rolling means reach
across the chunk boundaries. On PostgreSQL with the benchmark's generated consultations."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from benchmarks.aggregates_benchmark import FIRST_DAY, generate
from cscoach_pipeline.defs.supervision.refresh import (
    CHUNK_DAYS,
    chunks,
    refresh_agent_days,
    refresh_review_queue,
    refresh_team_days,
)
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.engine import warehouse_engine
from cscoach_pipeline.defs.warehouse.stores import AggregateStore
from tests.support.postgres import temporary_database

pytestmark = pytest.mark.integration


def test_chunks_cover_every_day_once_in_order() -> None:
    days = [FIRST_DAY + timedelta(days=n) for n in range(31)][::-1]
    parts = list(chunks(days))
    assert [len(p) for p in parts] == [CHUNK_DAYS, CHUNK_DAYS, 31 - 2 * CHUNK_DAYS]
    assert [d for p in parts for d in p] == sorted(days)


def _by_key(rows: list[dict]) -> dict[tuple, dict]:
    """Rows by their identity (every column that is not a figure), figures as values."""
    keyed = {}
    for row in rows:
        key = tuple(
            (k, str(v)) for k, v in row.items()
            if k != "computed_at" and not isinstance(v, float | dict)
        )  # fmt: skip
        figures = {k: v for k, v in row.items() if isinstance(v, float)}
        for name, value in row.items():
            if isinstance(value, dict):  # question scores: one figure per question
                figures |= {f"{name}.{q}": v for q, v in value.items()}
        keyed[key] = figures
    return keyed


def test_a_range_refreshed_in_chunks_equals_each_day_refreshed_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with temporary_database() as url:
        engine = warehouse_engine(url)
        generate(engine, 6_000, np.random.default_rng(7))
        store = AggregateStore(engine)
        spans: list[float] = []
        read = store.day_facts

        def recorded(start, end, **kwargs):  # type: ignore[no-untyped-def]
            if not kwargs.get("scores_only"):
                spans.append((end - start).total_seconds() / 86400)
            return read(start, end, **kwargs)

        monkeypatch.setattr(store, "day_facts", recorded)
        days = [FIRST_DAY + timedelta(days=n) for n in range(30, 60)]  # 14 + 14 + 2
        refreshes = {
            "agents": (
                tables.agent_daily_scorecards,
                lambda d: refresh_agent_days(store, d, "UTC"),
            ),
            "trends": (tables.team_daily_trends, lambda d: refresh_team_days(store, d, "UTC")),
            "queue": (tables.review_queue, lambda d: refresh_review_queue(store, d, "UTC", 20)),
        }
        for name, (table, refresh) in refreshes.items():
            spans.clear()
            refresh(days)
            # Read two weeks at a time, never the whole month.
            assert spans == [CHUNK_DAYS, CHUNK_DAYS, 2], name
            in_chunks = store.rows_between(table, days[0], days[-1])
            for day in days:
                refresh([day])
            one_by_one = store.rows_between(table, days[0], days[-1])
            chunked, alone = _by_key(in_chunks), _by_key(one_by_one)
            assert chunked and chunked.keys() == alone.keys(), name
            for key, figures in chunked.items():
                # Rolling means summed in another order differ in the last rounded digit.
                assert figures == pytest.approx(alone[key], abs=0.002), (name, key)
        engine.dispose()
