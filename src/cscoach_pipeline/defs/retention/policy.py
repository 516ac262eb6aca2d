"""Which consultation partitions the retention removes from Dagster's instance, and which it
must leave alone. Dagster recommends at most about 100,000 partitions per asset (the UI's
partition pages slow down with every key); a centre adds tens of thousands a day. So once a
consultation has settled for `CSCOACH_PARTITION_RETENTION_DAYS`, its partition key is
deleted from the `consultations` dynamic partitions definition. Nothing else goes: the
warehouse rows, the artifacts in the bucket, and Dagster's event log (runs, materializations)
stay, and a reanalysis registers the partition again (reanalyze.py)."""

from __future__ import annotations

from datetime import datetime

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

# Backfills have no public accessor for their targets.
from dagster._core.execution.backfill import BulkActionStatus

from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.recovery.policy import batch_members
from cscoach_pipeline.defs.warehouse.stores import RetentionStore

UNFINISHED_RUNS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
UNFINISHED_BACKFILLS = [BulkActionStatus.REQUESTED, BulkActionStatus.CANCELING]


def busy_partitions(instance: DagsterInstance) -> set[str]:
    """Consultation partitions an unfinished run or backfill targets: a backfill launched from
    the UI over old consultations must not lose its partitions half way."""
    busy: set[str] = set()
    for run in instance.get_runs(filters=RunsFilter(statuses=UNFINISHED_RUNS)):
        if "dagster/partition" in run.tags:
            busy.add(run.tags["dagster/partition"])
        busy |= set(batch_members(run.tags) or {})  # a batch run's range of chats
    for status in UNFINISHED_BACKFILLS:
        for backfill in instance.get_backfills(status=status):
            if backfill.is_asset_backfill and backfill.asset_backfill_data is not None:
                target = backfill.asset_backfill_data.target_subset
                busy.update(
                    item.partition_key
                    for item in target.iterate_asset_partitions()
                    if item.partition_key is not None
                )
            else:
                busy.update(backfill.partition_names or ())
    return busy


def partitions_to_retire(
    store: RetentionStore, instance: DagsterInstance, *, before: datetime, limit: int
) -> list[str]:
    """Up to `limit` partitions of consultations settled before `before`, oldest first,
    skipping any an unfinished run or backfill needs, read before and after the selection
    so one launched meanwhile counts too."""
    busy = busy_partitions(instance)
    candidates = store.retirable(before=before, limit=limit + len(busy))
    busy |= busy_partitions(instance)
    return [key for key in candidates if key not in busy][:limit]


def restore_partitions(
    store: RetentionStore, instance: DagsterInstance, ids: list[str], now: datetime
) -> list[str]:
    """Keep `ids` for another retention period (a reanalysis is about to run over them),
    then register again those the instance lacks. The mark comes first, so a retention
    tick from now on leaves them alone; the instance, not the warehouse's record, says which
    are missing. Returns the ids registered again."""
    store.mark_restored(ids, now)
    present = set(instance.get_dynamic_partitions(consultation_partitions.name))
    missing = [key for key in ids if key not in present]
    if missing:
        instance.add_dynamic_partitions(consultation_partitions.name, missing)
    return missing
