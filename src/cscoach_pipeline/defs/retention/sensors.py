"""The retention sensor: removes settled consultations' partitions from Dagster's instance
(policy.py) in batches, through Dagster's own dynamic-partition requests."""

from __future__ import annotations

from datetime import timedelta

from dagster import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.retention.policy import partitions_to_retire
from cscoach_pipeline.defs.warehouse.engine import utcnow
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource


def build_retention_sensor(
    retention_days: float, interval_s: int = 60, batch: int = 1000
) -> SensorDefinition:
    """Every `interval_s`, retire up to `batch` partitions of consultations settled more
    than `retention_days` ago. The daemon checks and deletes keys one by one (about 30 ms
    each on PostgreSQL, benchmarks/partition_benchmark.py), so 1,000 keys hold a sensor
    thread for about 30 s: 1.4 million a day at most, far above what a centre adds."""

    @sensor(
        name="retire_old_partitions",
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description=f"Removes the Dagster partitions of consultations settled more than "
        f"{retention_days:g} days ago (CSCOACH_PARTITION_RETENTION_DAYS); their rows, "
        "artifacts and run history stay, and a reanalysis registers them again.",
    )
    def retire_old_partitions(
        context: SensorEvaluationContext, warehouse: WarehouseResource
    ) -> SensorResult | SkipReason:
        now = utcnow()
        before = now - timedelta(days=retention_days)
        store = warehouse.retention
        keys = partitions_to_retire(store, context.instance, before=before, limit=batch)
        if not keys:
            return SkipReason(f"no partition settled before {before:%Y-%m-%d %H:%M:%S} UTC")
        # Recorded first, and only for keys a reanalysis has not claimed since they were
        # selected. A tick that dies before Dagster deletes them leaves live partitions
        # marked retired: harmless, a reanalysis asks the instance what is missing.
        keys = store.mark_retired(keys, now, before=before)
        if not keys:
            return SkipReason("every selected partition was claimed by a reanalysis")
        context.log.info(f"retiring {len(keys)} partitions settled before {before:%Y-%m-%d} UTC")
        return SensorResult(
            dynamic_partitions_requests=[consultation_partitions.build_delete_request(keys)]
        )

    return retire_old_partitions
