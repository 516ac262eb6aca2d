"""The running LLM cost of a run, kept in a run tag so it shows on the run's page (a
backfill run adds up its consultations from several threads)."""

from __future__ import annotations

import threading

from dagster import DagsterInstance

RUN_COST_TAG = "cscoach/cost_usd"

_lock = threading.Lock()


def add_to_run_cost(instance: DagsterInstance, run_id: str, cost: float | None) -> float:
    """Add `cost` (None: unknown, counted as 0) to the run's tag; returns the new total."""
    with _lock:
        run = instance.get_run_by_id(run_id)
        total = float((run.tags if run else {}).get(RUN_COST_TAG, 0.0)) + (cost or 0.0)
        instance.add_run_tags(run_id, {RUN_COST_TAG: f"{total:.6f}"})
    return round(total, 6)
