"""Proves the run-status sensors: when a run dies outside the assets' own error handling
(killed process, crash before a step could record anything, a cancel), its consultation gets
a final status with the true reason (the failed step's own reason, not "Steps failed"), an
outage is scheduled for a retry, and an outcome an asset already recorded is never
overwritten."""

from __future__ import annotations

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    build_run_status_sensor_context,
)

from cscoach_pipeline.defs.recovery.policy import RetryPolicy
from cscoach_pipeline.defs.recovery.run_status import (
    record_failed_consultation_run,
    settle_finished_run,
)
from cscoach_pipeline.defs.warehouse import tables
from tests.support.pipeline import PipelineHarness

CHAT = b"Agent: Hello, how can I help?\nCustomer: My parcel is late.\n"


def _failed_run(harness: PipelineHarness) -> tuple[str, object]:
    harness.drop("call.txt", CHAT)
    (request,) = harness.tick()
    # Lose the inventory row: the run now fails before any step can record a status,
    # as a run killed at start-up would.
    harness.warehouse.rows.replace_rows(
        tables.bucket_objects, {"source_key": "incoming/call.txt"}, []
    )
    result = harness.run(RunRequest(partition_key=request.partition_key))
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(
        sensor_name=record_failed_consultation_run.name,
        dagster_event=failure,
        dagster_instance=harness.instance,
        dagster_run=harness.instance.get_run_by_id(result.run_id),
        resources={"warehouse": harness.warehouse, "recovery": harness.resources["recovery"]},
    ).for_run_failure()
    return request.partition_key, context


def test_dangling_consultation_gets_the_failed_steps_reason(harness: PipelineHarness) -> None:
    key, context = _failed_run(harness)
    assert harness.status_by_key()["incoming/call.txt"]["status"] == "queued"
    record_failed_consultation_run(context)
    row = harness.status_by_key()["incoming/call.txt"]
    assert row["status"] == "failed" and row["stage"] == "consultation_upload"
    assert "not in the bucket inventory" in row["error"]
    assert "Steps failed" not in row["error"]
    assert row["consultation_id"] == key and row["failure_kind"] == "error"


def test_recorded_outcome_is_not_overwritten(harness: PipelineHarness) -> None:
    key, context = _failed_run(harness)
    harness.warehouse.statuses.set(key, "incoming/call.txt", "failed", error="empty file (0 bytes)")
    record_failed_consultation_run(context)
    assert harness.status_by_key()["incoming/call.txt"]["error"] == "empty file (0 bytes)"


def _started_run(harness: PipelineHarness) -> tuple[str, DagsterInstance, object]:
    harness.drop("call.txt", CHAT)
    (request,) = harness.tick()
    job = harness.defs.resolve_job_def("process_consultation")
    run = harness.instance.create_run_for_job(
        job, tags={**request.tags, "dagster/partition": request.partition_key}
    )
    harness.warehouse.statuses.set(
        request.partition_key, "incoming/call.txt", "processing", run_id=run.run_id
    )
    return request.partition_key, harness.instance, run


def test_a_run_that_died_without_a_step_failure_is_queued_for_a_retry(
    harness: PipelineHarness,
) -> None:
    _, instance, run = _started_run(harness)
    instance.report_run_failed(run, message="the run's worker process (pid 4242) is gone")
    dead = instance.get_run_by_id(run.run_id)
    policy = RetryPolicy(max_attempts=3, backoff_base_s=60)
    # Still going to run: `queued` with its reason and retry time, never a final `failed`.
    assert settle_finished_run(instance, harness.warehouse, dead, policy) == "queued"
    row = harness.status_by_key()["incoming/call.txt"]
    assert row["failure_kind"] == "outage" and row["attempt"] == 1
    assert "pid 4242" in row["error"] and "attempt 1 of 3 failed" in row["error"]
    assert row["next_attempt_at"] is not None
    # Idempotent: a second look (the recovery sensor, a re-evaluated tick) changes nothing.
    before = dict(row)
    settle_finished_run(instance, harness.warehouse, dead, policy)
    assert (
        harness.status_by_key()["incoming/call.txt"]["next_attempt_at"] == before["next_attempt_at"]
    )


def test_last_attempt_gives_up_with_the_reason(harness: PipelineHarness) -> None:
    _, instance, run = _started_run(harness)
    instance.add_run_tags(run.run_id, {"cscoach/attempt": "3"})
    instance.report_run_failed(run, message="worker gone")
    dead = instance.get_run_by_id(run.run_id)
    settle_finished_run(instance, harness.warehouse, dead, RetryPolicy(max_attempts=3))
    row = harness.status_by_key()["incoming/call.txt"]
    assert row["status"] == "failed" and row["next_attempt_at"] is None
    assert "worker gone" in row["error"] and "gave up after 3 attempts" in row["error"]


def test_cancelled_run_leaves_no_processing(harness: PipelineHarness) -> None:
    _, instance, run = _started_run(harness)
    instance.report_run_canceled(run)
    cancelled = instance.get_run_by_id(run.run_id)
    assert cancelled.status == DagsterRunStatus.CANCELED
    settle_finished_run(instance, harness.warehouse, cancelled, RetryPolicy())
    row = harness.status_by_key()["incoming/call.txt"]
    assert row["status"] == "failed" and row["failure_kind"] == "cancelled"
    assert "requeue" in row["error"]


def test_superseded_run_does_not_touch_the_newer_version(harness: PipelineHarness) -> None:
    key, instance, run = _started_run(harness)
    harness.warehouse.rows.upsert(
        tables.bucket_objects, {"source_key": "incoming/call.txt"}, {"version": 2}
    )
    harness.warehouse.statuses.set(key, "incoming/call.txt", "queued")
    instance.report_run_failed(run, message="worker gone")
    settle_finished_run(
        instance, harness.warehouse, instance.get_run_by_id(run.run_id), RetryPolicy()
    )
    assert harness.status_by_key()["incoming/call.txt"]["status"] == "queued"
