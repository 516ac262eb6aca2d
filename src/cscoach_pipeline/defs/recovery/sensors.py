"""Nothing is stranded: every consultation reaches a final status whatever dies.

Each tick (0) gives a free pool slot to a step Dagster left waiting for it, (1) fails runs
whose worker process is gone (Dagster's run monitoring cannot tell
for the default run launcher; with a launcher that can, Dagster's own monitoring does it),
(2) settles consultations left `queued`/`processing` by a run that ended without recording
an outcome, or whose run never appeared, and (3) launches due retries of outages and
re-queue requests, each with a fresh run key.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psutil
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from cscoach_pipeline.defs.ingest.partition_keys import display_key
from cscoach_pipeline.defs.jobs import process_consultation_job, reanalyze_consultations_job
from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.recovery.policy import (
    ATTEMPT_TAG,
    SOURCE_KEY_TAG,
    VERSION_TAG,
    FailureKind,
    batch_members,
    retry_run_key,
    worker_pid,
)
from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.recovery.run_status import settle_finished_run
from cscoach_pipeline.defs.warehouse.engine import as_utc, utcnow
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource

IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
JOBS = (process_consultation_job.name, reanalyze_consultations_job.name)
MAX_CANDIDATES_PER_TICK = 500


def _worker_alive(pid: int, started_at: float | None) -> bool:
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        # A reused pid belongs to a process that started after the run did.
        return started_at is None or process.create_time() <= started_at + 5
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def fail_dead_runs(instance: DagsterInstance, grace_s: float, log: Any) -> list[str]:
    """Mark STARTED runs whose worker process has died as failed; returns their ids."""
    if instance.run_launcher.supports_check_run_worker_health:
        return []  # Dagster's run monitoring checks these workers itself
    now = datetime.now(tz=UTC).timestamp()
    failed: list[str] = []
    for record in instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED])):
        run = record.dagster_run
        if run.job_name not in JOBS:
            continue
        started_at = record.start_time
        if started_at is not None and now - started_at < grace_s:
            continue
        pid = worker_pid(instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT))
        if pid is None or _worker_alive(pid, started_at):
            continue
        message = (
            f"the run's worker process (pid {pid}) is gone: it was killed, ran out of memory "
            "or its machine restarted"
        )
        log.warning(f"run {run.run_id}: {message}")
        instance.report_run_failed(run, message=message)
        failed.append(run.run_id)
    return failed


def unblock_pool_steps(instance: DagsterInstance, log: Any) -> list[str]:
    """Assign a free pool slot to a step left waiting for it. Dagster's step pools (the
    `gemini` pool of the analysis step) race on SQLite: a step that asks while the last
    holder is releasing its slot is queued unassigned, and nothing assigns it later, so its
    run waits forever. Returns the pools unblocked."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits or not hasattr(
        storage, "assign_pending_steps"
    ):
        return []
    unblocked = []
    for key in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(key)
        waiting = [p for p in info.pending_steps if p.assigned_timestamp is None]
        assigned = [p for p in info.pending_steps if p.assigned_timestamp is not None]
        free = info.slot_count - len(info.claimed_slots) - len(assigned)
        if waiting and free > 0:
            log.warning(f"pool {key}: a step waited for a free slot that was never assigned")
            storage.assign_pending_steps([key])
            unblocked.append(key)
    return unblocked


def _partitions_in_flight(instance: DagsterInstance) -> set[str]:
    keys: set[str] = set()
    for run in instance.get_runs(RunsFilter(statuses=IN_FLIGHT)):
        if run.job_name in JOBS and run.tags.get("dagster/partition"):
            keys.add(run.tags["dagster/partition"])
        keys |= set(batch_members(run.tags) or {})
    return keys


def plan_recovery(
    instance: DagsterInstance,
    warehouse: WarehouseResource,
    recovery: RecoveryResource,
    now: datetime,
    log: Any,
) -> list[RunRequest]:
    """Settle what is stranded and return the runs to launch (retries, re-queues)."""
    unblock_pool_steps(instance, log)
    for run_id in fail_dead_runs(instance, recovery.dead_run_grace_s, log):
        run = instance.get_run_by_id(run_id)
        if run is not None:
            settle_finished_run(instance, warehouse, run, recovery.policy)
    candidates = warehouse.statuses.recovery_candidates(
        now=now,
        stale_before=now - timedelta(seconds=recovery.stale_after_s),
        limit=MAX_CANDIDATES_PER_TICK,
    )
    if not candidates:
        return []
    in_flight = _partitions_in_flight(instance)
    requests: list[RunRequest] = []
    for row in candidates:
        consultation_id = row["consultation_id"]
        if consultation_id in in_flight:
            continue
        inventory = warehouse.inventory.objects_of(consultation_id, active_only=True)
        if not inventory:
            warehouse.statuses.set(
                consultation_id,
                row["source_key"],
                "failed",
                stage="recovery",
                error="the file was removed from the bucket before it was processed",
                failure_kind=FailureKind.INPUT.value,
            )
            continue
        current = max(inventory, key=lambda r: r["version"])
        retry_due = row["next_attempt_at"] is not None and as_utc(row["next_attempt_at"]) <= now
        if row["status"] == "queued" and retry_due:
            # An outage whose wait is over, or an operator's re-queue (attempt 0).
            requests.append(_request(warehouse, row, current, (row["attempt"] or 0) + 1))
            continue
        # Left `queued`/`processing`, or an outage its run did not settle: what became of
        # its last run?
        latest = instance.get_runs(
            RunsFilter(
                job_name=process_consultation_job.name,
                tags={"dagster/partition": consultation_id},
            ),
            limit=1,
        )
        run = latest[0] if latest else None
        run_version = int(run.tags.get(VERSION_TAG, "0")) if run else 0
        if run is None or run_version < current["version"]:
            # The sensor recorded it but its run was never created (a tick died halfway).
            requests.append(_request(warehouse, row, current, max(row["attempt"] or 1, 1)))
        elif run.status in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
            settle_finished_run(instance, warehouse, run, recovery.policy)
        elif run.status == DagsterRunStatus.SUCCESS:
            warehouse.statuses.set(
                consultation_id,
                row["source_key"],
                "failed",
                stage="recovery",
                error="the run ended without recording an outcome for this consultation",
                run_id=run.run_id,
                failure_kind=FailureKind.ERROR.value,
            )
    return requests


def _request(
    warehouse: WarehouseResource, row: dict[str, Any], inventory: dict[str, Any], attempt: int
) -> RunRequest:
    consultation_id = row["consultation_id"]
    shown = display_key(inventory["source_key"])
    # Queued again; an outage keeps its reason (what the previous attempt ran into).
    outage = row["failure_kind"] == FailureKind.OUTAGE
    warehouse.statuses.set(
        consultation_id,
        shown,
        "queued",
        stage="recovery",
        error=row["error"] if outage else None,
        attempt=attempt,
        failure_kind=row["failure_kind"] if outage else None,
    )
    return RunRequest(
        partition_key=consultation_id,
        run_key=retry_run_key(consultation_id, inventory["version"], attempt),
        tags={
            SOURCE_KEY_TAG: shown,
            VERSION_TAG: str(inventory["version"]),
            ATTEMPT_TAG: str(attempt),
        },
    )


def build_recovery_sensor(interval_s: int = 30) -> SensorDefinition:
    """The recovery sensor, ticking every `interval_s` (CSCOACH_RECOVERY_INTERVAL_S)."""

    @sensor(
        name="recover_stranded_consultations",
        job=process_consultation_job,
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Fails runs whose worker died, settles stranded consultations and launches "
        "retries of outages and re-queue requests.",
    )
    def recover_stranded_consultations(
        context: SensorEvaluationContext, warehouse: WarehouseResource, recovery: RecoveryResource
    ) -> SensorResult | SkipReason:
        requests = plan_recovery(context.instance, warehouse, recovery, utcnow(), context.log)
        if not requests:
            return SkipReason("nothing stranded")
        context.log.info(f"launching {len(requests)} retries")
        return SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=[
                consultation_partitions.build_add_request(
                    sorted({r.partition_key for r in requests})
                )
            ],
        )

    return recover_stranded_consultations
