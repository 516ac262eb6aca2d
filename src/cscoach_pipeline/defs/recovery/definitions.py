"""Recovery: retries of outages, dead workers failed, cancelled runs settled, re-queueing."""

from __future__ import annotations

from typing import Any

import dagster as dg

from cscoach_pipeline.defs.recovery.jobs import requeue_consultations
from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.recovery.run_status import (
    record_cancelled_consultation_run,
    record_failed_consultation_run,
)
from cscoach_pipeline.defs.recovery.sensors import build_recovery_sensor
from cscoach_pipeline.settings import Settings


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        jobs=[requeue_consultations],
        sensors=[
            record_failed_consultation_run,
            record_cancelled_consultation_run,
            build_recovery_sensor(settings.recovery_interval_s),
        ],
    )


def resources(settings: Settings) -> dict[str, Any]:
    return {
        "recovery": RecoveryResource(
            max_attempts=settings.max_attempts,
            backoff_base_s=settings.retry_backoff_s,
            stale_after_s=settings.stale_after_s,
            step_retries=settings.step_retries,
            step_retry_base_s=settings.step_retry_base_s,
        )
    }
