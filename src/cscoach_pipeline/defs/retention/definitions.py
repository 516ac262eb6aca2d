"""Retention: old consultation partitions leave Dagster's instance, everything else stays.
Off unless CSCOACH_PARTITION_RETENTION_DAYS is set."""

from __future__ import annotations

from typing import Any

import dagster as dg

from cscoach_pipeline.defs.retention.sensors import build_retention_sensor
from cscoach_pipeline.settings import Settings


def defs(settings: Settings) -> dg.Definitions:
    if settings.partition_retention_days is None:
        return dg.Definitions()
    return dg.Definitions(
        sensors=[
            build_retention_sensor(
                settings.partition_retention_days,
                settings.retention_interval_s,
                settings.retention_batch,
            )
        ]
    )


def resources(settings: Settings) -> dict[str, Any]:
    return {}
