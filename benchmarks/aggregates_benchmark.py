"""The supervisor aggregates at a 500-seat centre's scale, in PostgreSQL: 1,000,000
consultations over 90 days (500 agents in 25 teams), with their status, quality metrics,
analyses, nine scorecard answers each and category matches, written directly with COPY.
Measures the refresh of one day partition (each of the three assets, and their sum) and of
the 90-day backfill as one range run (refreshed CHUNK_DAYS at a time), with the process's
peak memory during each.

    .venv/bin/python -m benchmarks.aggregates_benchmark [--consultations N]
"""

from __future__ import annotations

import argparse
import gc
import io
import statistics
import threading
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psutil

from benchmarks.results import save_results
from cscoach_pipeline.defs.supervision.refresh import (
    CHUNK_DAYS,
    refresh_agent_days,
    refresh_review_queue,
    refresh_team_days,
)
from cscoach_pipeline.defs.warehouse.engine import utcnow, warehouse_engine
from cscoach_pipeline.defs.warehouse.stores import AggregateStore
from tests.support.postgres import temporary_database

DAYS = 90
FIRST_DAY = date(2026, 9, 1)
AGENTS, TEAMS = 500, 25
QUESTIONS = ("greeting", "identification", "empathy", "active_listening", "problem_solving",
             "accuracy", "hold_etiquette", "closing", "compliance")  # fmt: skip
CHUNK = 100_000


def _copy(engine: Any, table: str, frame: pd.DataFrame) -> None:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="\\N")
    buffer.seek(0)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.copy_expert(
                f"COPY {table} ({', '.join(frame.columns)}) FROM STDIN WITH (FORMAT csv, "
                "NULL '\\N')",
                buffer,
            )
        raw.commit()
    finally:
        raw.close()


def generate(engine: Any, count: int, rng: np.random.Generator) -> float:
    """Rows for `count` consultations, spread evenly over the days; returns seconds taken."""
    started = time.perf_counter()
    now = utcnow()
    for offset in range(0, count, CHUNK):
        n = min(CHUNK, count - offset)
        ids = np.array([f"c{i:07d}" for i in range(offset, offset + n)])
        day = (np.arange(offset, offset + n) * DAYS) // count
        seconds = rng.integers(8 * 3600, 20 * 3600, n)
        recorded = [
            datetime.combine(FIRST_DAY + timedelta(days=int(d)), datetime.min.time(), UTC)
            + timedelta(seconds=int(s))
            for d, s in zip(day, seconds, strict=True)
        ]
        agent = rng.integers(0, AGENTS, n)
        _copy(engine, "consultations", pd.DataFrame({
            "consultation_id": ids, "source_key": [f"incoming/{i}.wav" for i in ids],
            "file_type": "audio", "version": 1, "uploaded_at": recorded,
            "recorded_at": recorded, "agent_id": [f"A-{a:03d}" for a in agent],
            "agent_name": [f"Agent {a:03d}" for a in agent],
            "team": [f"team-{a % TEAMS:02d}" for a in agent], "updated_at": now,
        }))  # fmt: skip
        failed = rng.random(n) < 0.02
        _copy(engine, "consultation_status", pd.DataFrame({
            "consultation_id": ids, "source_key": [f"incoming/{i}.wav" for i in ids],
            "status": np.where(failed, "failed", "succeeded"), "updated_at": now,
        }))  # fmt: skip
        scored = ~failed
        score = np.clip(rng.normal(75, 15, n), 0, 100).round(1)
        state = np.where(rng.random(n) < 0.03, "failed",
                         np.where(score >= 70, "passed", "below_pass_mark"))  # fmt: skip
        metrics = pd.DataFrame({
            "consultation_id": ids, "prompt_version": "v1", "overall_score": score,
            "scorecard_version": "inbound/v1", "pass_state": state,
            "pass_reason": np.where(state == "failed", "compliance: no", "pass mark 70"),
            "duration_s": rng.uniform(60, 900, n).round(1),
            "agent_talk_share": rng.uniform(0.3, 0.7, n).round(3),
            "agent_words_per_minute": rng.uniform(110, 190, n).round(1),
            "non_talk_share": rng.uniform(0, 0.3, n).round(3),
            "interruptions_by_agent": rng.integers(0, 5, n),
            "agent_response_latency_median_s": rng.uniform(0.2, 3, n).round(2),
            "customer_sentiment_q1": rng.uniform(-1, 1, n).round(3),
            "customer_sentiment_q4": rng.uniform(-1, 1, n).round(3),
            "created_at": now,
        })[scored]  # fmt: skip
        _copy(engine, "quality_metrics", metrics)
        kept = ids[scored]
        _copy(engine, "analyses", pd.DataFrame({
            "consultation_id": kept, "prompt_version": "v1", "analyzer": "gemini",
            "model": "gemini-2.5-flash", "summary": "s", "result_json": "{}",
            "resolution_status": rng.choice(["resolved", "unresolved", "escalated"], len(kept),
                                            p=[0.7, 0.2, 0.1]),
            "cost_usd": rng.uniform(0.0005, 0.002, len(kept)).round(6), "created_at": now,
        }))  # fmt: skip
        answers = pd.DataFrame({
            "consultation_id": np.repeat(kept, len(QUESTIONS)),
            "scorecard_version": "inbound/v1", "prompt_version": "v1",
            "question_id": np.tile(QUESTIONS, len(kept)), "answer": "yes",
            "score": rng.integers(0, 3, len(kept) * len(QUESTIONS)), "max_score": 2.0,
            "weight": 1.0, "na": False, "critical": False, "created_at": now,
        })  # fmt: skip
        _copy(engine, "scorecard_answers", answers)
        flagged = kept[rng.random(len(kept)) < 0.2]
        _copy(engine, "category_matches", pd.DataFrame({
            "consultation_id": flagged, "category_version": "v1", "prompt_version": "v1",
            "category_id": rng.choice(["complaint", "legal_threat", "escalation_request"],
                                      len(flagged)),
            "title": "t", "severity": "high", "evidence": "e", "hits": 1, "created_at": now,
        }))  # fmt: skip
    with engine.begin() as conn:
        for table in ("consultations", "quality_metrics", "scorecard_answers", "analyses"):
            conn.exec_driver_sql(f"ANALYZE {table}")
    return time.perf_counter() - started


class PeakMemory:
    """The process's peak resident memory while inside the block (sampled every 0.1 s)."""

    def __enter__(self) -> PeakMemory:
        self._process = psutil.Process()
        self.peak_bytes = self._process.memory_info().rss
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._done.wait(0.1):
            self.peak_bytes = max(self.peak_bytes, self._process.memory_info().rss)

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    @property
    def peak_gb(self) -> float:
        return round(self.peak_bytes / 1024**3, 2)


def _refresh(store: AggregateStore, days: list[date]) -> dict[str, float]:
    """Each asset's work for these days (read, compute, replace), in seconds, and the
    process's peak memory meanwhile (refreshes of more than CHUNK_DAYS go in chunks)."""
    timings: dict[str, float] = {}
    for name, refresh in (
        ("agent_daily_scorecards", lambda: refresh_agent_days(store, days, "UTC")),
        ("team_daily_trends", lambda: refresh_team_days(store, days, "UTC")),
        ("review_queue", lambda: refresh_review_queue(store, days, "UTC", 20)),
    ):
        started = time.perf_counter()
        with PeakMemory() as memory:
            refresh()
        timings[name] = round(time.perf_counter() - started, 2)
        timings[f"{name}_peak_rss_gb"] = memory.peak_gb
    timings["total"] = round(sum(v for k, v in timings.items() if not k.endswith("_gb")), 2)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--consultations", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    with temporary_database() as url:
        engine = warehouse_engine(url)
        generate_s = generate(engine, args.consultations, rng)
        store = AggregateStore(engine)
        gc.collect()  # the generation's frames are gone before anything is measured
        # One day partition, as the sensor asks after new consultations: five days, median.
        singles = [_refresh(store, [FIRST_DAY + timedelta(days=d)]) for d in (40, 50, 60, 70, 80)]
        day = {k: statistics.median(t[k] for t in singles) for k in singles[0]}
        backfill = _refresh(store, [FIRST_DAY + timedelta(days=d) for d in range(DAYS)])
        with engine.connect() as conn:
            counts = {
                t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                for t in ("agent_daily_scorecards", "team_daily_trends", "review_queue")
            }
        engine.dispose()
    save_results(
        "aggregates_benchmark",
        {
            "consultations": args.consultations,
            "days": DAYS,
            "per_day": args.consultations // DAYS,
            "agents": AGENTS,
            "teams": TEAMS,
            "generate_s": round(generate_s, 1),
            "one_day_partition_s": day,
            "backfill_90_days_one_run_s": backfill,
            "chunk_days": CHUNK_DAYS,
            "rows_written": counts,
        },
    )


if __name__ == "__main__":
    main()
