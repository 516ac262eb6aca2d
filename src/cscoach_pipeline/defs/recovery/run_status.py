"""Records a failed or cancelled run's true reason on its consultation when the failure
bypassed the assets' own error handling (worker killed, warehouse down while the step tried
to record, run cancelled), and schedules outages for a retry with backoff."""

from __future__ import annotations

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunFailureSensorContext,
    RunStatusSensorContext,
    run_failure_sensor,
    run_status_sensor,
)

from cscoach_pipeline.defs.ingest.partition_keys import display_key
from cscoach_pipeline.defs.jobs import process_consultation_job
from cscoach_pipeline.defs.recovery.policy import (
    FAILURE_TAG,
    FINAL_STATUSES,
    GAVE_UP,
    SOURCE_KEY_TAG,
    VERSION_TAG,
    FailureKind,
    RetryPolicy,
    RunFailure,
    batch_members,
    failure_from_events,
    failure_tag_value,
    outage_message,
    run_attempt,
)
from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.warehouse.engine import as_utc, utcnow
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource


def settle_finished_run(
    instance: DagsterInstance,
    warehouse: WarehouseResource,
    run: DagsterRun,
    policy: RetryPolicy,
    run_message: str | None = None,
) -> str | None:
    """Give the consultation of a failed or cancelled run its final status and true reason;
    an outage gets its retry time. Idempotent. Returns the status written, if any."""
    members = batch_members(run.tags)
    if members is not None:
        settle_finished_batch(warehouse, run, members, policy)
        return None
    consultation_id = run.tags.get("dagster/partition")
    if not consultation_id:
        return None  # multi-partition runs (backfills) report each consultation themselves
    current = warehouse.inventory.current_version(consultation_id)
    run_version = run.tags.get(VERSION_TAG)
    if run_version is not None and current is not None and int(run_version) < current:
        return None  # superseded: the newer version's run owns the status
    row = warehouse.statuses.get(consultation_id)
    if row is not None and row["run_id"] == run.run_id and row["next_attempt_at"] is not None:
        return None  # this run's outage is already scheduled for a retry
    if row is not None and row["status"] in FINAL_STATUSES:
        if row["run_id"] != run.run_id:
            record = instance.get_run_record_by_id(run.run_id)
            started = record.start_time if record else None
            if started is None or as_utc(row["updated_at"]).timestamp() >= started:
                return None  # a later outcome (or one recorded outside this run) stands
        elif row["status"] != "failed" or row["failure_kind"] != FailureKind.OUTAGE:
            return None  # the step recorded the precise outcome already
        elif GAVE_UP in (row["error"] or ""):
            return None  # the last attempt, already settled
        else:  # an outage recorded by the step: retry it, or give up
            failure = RunFailure(row["error"] or "outage", FailureKind.OUTAGE, row["stage"])
            return _write(warehouse, row["source_key"], consultation_id, run, failure, policy)
    if run.status == DagsterRunStatus.CANCELED:
        failure = RunFailure(
            "the run was cancelled; re-queue it with `python -m cscoach_pipeline.requeue`",
            FailureKind.CANCELLED,
            "run",
        )
    else:
        events = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_FAILURE)
        failure = failure_from_events(events, run_message or _run_failure_message(instance, run))
    if failure.kind == FailureKind.SUPERSEDED:
        return None
    source_key = row["source_key"] if row else display_key(run.tags.get(SOURCE_KEY_TAG, ""))
    return _write(warehouse, source_key, consultation_id, run, failure, policy)


def settle_finished_batch(
    warehouse: WarehouseResource, run: DagsterRun, members: dict[str, int], policy: RetryPolicy
) -> list[str]:
    """A failed (or dead, or cancelled) batch run. A member with its own outcome keeps it (a
    bad file's reason); one whose step ran into an outage gets its retry with backoff; the
    rest, stopped by another member's failure or a dead worker, are queued for a run of
    their own at once (the recovery sensor launches it), keeping their attempt count. A
    cancelled batch's rest are failed as cancelled. Only rows this run still owns (or the
    sensor's untouched `queued` rows) are written, so settling twice changes nothing.
    Returns the members queued again."""
    queued = []
    for consultation_id, version in members.items():
        current = warehouse.inventory.current_version(consultation_id)
        if current is not None and current > version:
            continue  # superseded: the newer version's run owns it
        row = warehouse.statuses.get(consultation_id)
        if row is None:
            continue
        owned = row["run_id"] == run.run_id and row["next_attempt_at"] is None
        untouched = row["status"] == "queued" and row["stage"] == "sensor" and not row["run_id"]
        if not (owned or untouched):
            continue  # a later run's, or already settled
        if owned and row["status"] in FINAL_STATUSES:
            outage = row["status"] == "failed" and row["failure_kind"] == FailureKind.OUTAGE
            if outage and GAVE_UP not in (row["error"] or ""):
                failure = RunFailure(row["error"] or "outage", FailureKind.OUTAGE, row["stage"])
                _write(warehouse, row["source_key"], consultation_id, run, failure, policy)
            continue  # its own outcome stands
        if run.status == DagsterRunStatus.CANCELED:
            failure = RunFailure(
                "the run was cancelled; re-queue it with `python -m cscoach_pipeline.requeue`",
                FailureKind.CANCELLED,
                "run",
            )
            _write(warehouse, row["source_key"], consultation_id, run, failure, policy)
            continue
        warehouse.statuses.set(
            consultation_id,
            row["source_key"],
            "queued",
            stage="recovery",
            run_id=run.run_id,
            # The recovery sensor launches attempt + 1: a bystander's run is the attempt it
            # was on, not a new one (0, as an operator's re-queue, means the first).
            attempt=max((row["attempt"] or 1) - 1, 0),
            next_attempt_at=utcnow(),
        )
        queued.append(consultation_id)
    return queued


def tag_failure_reason(
    instance: DagsterInstance, warehouse: WarehouseResource, run: DagsterRun
) -> str | None:
    """The readable reason as the run's `cscoach/failure` tag, where the step did not set it
    (a dead worker, a cancelled run, a batch): the first thing the run's page and the Runs
    list show, where the failure event holds only "steps failed" and a stack trace."""
    if FAILURE_TAG in run.tags:
        return run.tags[FAILURE_TAG]
    members = batch_members(run.tags)
    ids = list(members) if members is not None else [run.tags.get("dagster/partition", "")]
    reasons = []
    for consultation_id in ids:
        row = warehouse.statuses.get(consultation_id) if consultation_id else None
        if row is not None and row["run_id"] == run.run_id and row["error"]:
            reasons.append(row["error"])
    if not reasons:
        return None
    reason = failure_tag_value(reasons[0])
    if len(ids) > 1:
        reason = failure_tag_value(f"{len(reasons)} of {len(ids)} failed; first: {reasons[0]}")
    instance.add_run_tags(run.run_id, {FAILURE_TAG: reason})
    return reason


def _write(
    warehouse: WarehouseResource,
    source_key: str,
    consultation_id: str,
    run: DagsterRun,
    failure: RunFailure,
    policy: RetryPolicy,
) -> str:
    attempt = run_attempt(run.tags)
    retry_at = None
    error = failure.reason
    if failure.kind == FailureKind.OUTAGE:
        retry_at = policy.next_attempt_at(attempt, utcnow())
        error = outage_message(failure.reason, attempt, policy, retry_at)
    # An outage with a retry ahead is `queued` (it will run again), not `failed`: `failed`
    # is final, so BI never counts a consultation that is still going to succeed.
    status = "queued" if retry_at is not None else "failed"
    warehouse.statuses.set(
        consultation_id,
        source_key,
        status,
        stage=failure.stage,
        error=error,
        run_id=run.run_id,
        attempt=attempt,
        failure_kind=failure.kind.value,
        next_attempt_at=retry_at,
    )
    return status


def _run_failure_message(instance: DagsterInstance, run: DagsterRun) -> str | None:
    failures = instance.all_logs(run.run_id, of_type=DagsterEventType.RUN_FAILURE)
    return failures[-1].message if failures else None


@run_failure_sensor(
    monitored_jobs=[process_consultation_job],
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks consultations of failed runs as failed with the true reason; "
    "outages are scheduled for a retry.",
)
def record_failed_consultation_run(
    context: RunFailureSensorContext, warehouse: WarehouseResource, recovery: RecoveryResource
) -> None:
    settle_finished_run(
        context.instance,
        warehouse,
        context.dagster_run,
        recovery.policy,
        context.failure_event.message,
    )
    tag_failure_reason(context.instance, warehouse, context.dagster_run)


@run_status_sensor(
    run_status=DagsterRunStatus.CANCELED,
    monitored_jobs=[process_consultation_job],
    default_status=DefaultSensorStatus.RUNNING,
    description="Marks consultations of cancelled runs as failed (cancelled), never leaving "
    "them `processing`.",
)
def record_cancelled_consultation_run(
    context: RunStatusSensorContext, warehouse: WarehouseResource, recovery: RecoveryResource
) -> None:
    settle_finished_run(context.instance, warehouse, context.dagster_run, recovery.policy)
    tag_failure_reason(context.instance, warehouse, context.dagster_run)
