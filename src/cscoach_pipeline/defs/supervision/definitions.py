"""Supervision: day aggregates a supervisor reads (agents, teams, the review queue), kept
current by the daily_aggregates sensor."""

from __future__ import annotations

from typing import Any

import dagster as dg

from cscoach_pipeline.defs.supervision.assets import build_supervision_assets
from cscoach_pipeline.defs.supervision.partitions import consultation_days
from cscoach_pipeline.defs.supervision.resources import SupervisionResource
from cscoach_pipeline.defs.supervision.sensors import (
    build_aggregates_job,
    build_aggregates_sensor,
)
from cscoach_pipeline.settings import Settings


def defs(settings: Settings) -> dg.Definitions:
    days = consultation_days(settings.aggregates_start, settings.timezone)
    job = build_aggregates_job(days)
    return dg.Definitions(
        assets=build_supervision_assets(days),
        jobs=[job],
        sensors=[build_aggregates_sensor(days, job.name, settings.aggregates_interval_s)],
    )


def resources(settings: Settings) -> dict[str, Any]:
    return {
        "supervision": SupervisionResource(
            timezone=settings.timezone, review_queue_size=settings.review_queue_size
        )
    }
