"""Proves the recovery sensor's rules on a real Dagster instance and warehouse: a run whose
worker process is gone is failed and its consultation scheduled for a retry; a consultation
recorded as queued whose run never appeared gets a run (and its partition); an outage whose
wait is over is retried with a fresh run key and the next attempt number; a re-queue request
from the operator launches at once; a finished run that left `processing` is settled.
The same rules under the real daemon and killed processes: tests/integration/."""

from __future__ import annotations

import logging
import subprocess
from datetime import timedelta
from pathlib import Path

from dagster import DagsterEvent, DagsterEventType, DagsterRunStatus, build_sensor_context

from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.recovery.sensors import plan_recovery
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.engine import utcnow
from tests.support.pipeline import PipelineHarness

CHAT = b"Agent: Hello, how can I help?\nCustomer: My parcel is late.\n"
RECOVERY = RecoveryResource(backoff_base_s=0.0, stale_after_s=60.0, dead_run_grace_s=0.0)


class _Log:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def warning(self, message: str) -> None:
        self.lines.append(message)

    info = warning


def _queued(harness: PipelineHarness) -> str:
    harness.drop("call.txt", CHAT)
    (request,) = harness.tick()
    return request.partition_key


def _age(harness: PipelineHarness, key: str, seconds: float) -> None:
    harness.warehouse.rows.upsert(
        tables.consultation_status,
        {"consultation_id": key},
        {"updated_at": utcnow() - timedelta(seconds=seconds)},
    )


def test_queued_without_a_run_gets_a_run_and_its_partition(harness: PipelineHarness) -> None:
    key = _queued(harness)
    assert plan_recovery(harness.instance, harness.warehouse, RECOVERY, utcnow(), _Log()) == []
    _age(harness, key, 120)
    # As if the tick that recorded it died before Dagster added the partition.
    harness.instance.delete_dynamic_partition("consultations", key)
    context = build_sensor_context(
        instance=harness.instance,
        resources={"warehouse": harness.warehouse, "recovery": RECOVERY},
        definitions=harness.defs,
    )
    result = harness.defs.get_sensor_def("recover_stranded_consultations")(context)
    (request,) = result.run_requests
    assert request.partition_key == key
    assert request.tags["cscoach/version"] == "1" and request.tags["cscoach/attempt"] == "1"
    assert list(result.dynamic_partitions_requests[0].partition_keys) == [key]
    # Recorded as queued again just now: the next tick does not ask twice.
    assert plan_recovery(harness.instance, harness.warehouse, RECOVERY, utcnow(), _Log()) == []


def test_due_outage_is_retried_with_a_fresh_key_and_the_next_attempt(
    harness: PipelineHarness,
) -> None:
    key = _queued(harness)
    harness.warehouse.statuses.set(
        key, "incoming/call.txt", "queued", error="the warehouse was unavailable",
        attempt=2, failure_kind="outage", next_attempt_at=utcnow() + timedelta(seconds=30),
    )  # fmt: skip
    # Waiting on purpose: however long ago it was written, its backoff clock is not reset.
    _age(harness, key, 3600)
    assert plan_recovery(harness.instance, harness.warehouse, RECOVERY, utcnow(), _Log()) == []
    later = utcnow() + timedelta(seconds=31)
    (request,) = plan_recovery(harness.instance, harness.warehouse, RECOVERY, later, _Log())
    assert request.tags["cscoach/attempt"] == "3"
    assert request.run_key.startswith(f"{key}@v1.a3.")
    row = harness.status_by_key()["incoming/call.txt"]
    assert row["status"] == "queued" and row["attempt"] == 3
    assert "the warehouse was unavailable" in row["error"]


def test_input_failures_are_never_retried(harness: PipelineHarness) -> None:
    key = _queued(harness)
    harness.warehouse.statuses.set(
        key, "incoming/call.txt", "failed", error="empty file (0 bytes)", failure_kind="input"
    )
    _age(harness, key, 3600)
    assert plan_recovery(harness.instance, harness.warehouse, RECOVERY, utcnow(), _Log()) == []


def test_operator_requeue_launches_at_once(harness: PipelineHarness) -> None:
    key = _queued(harness)
    harness.warehouse.statuses.set(
        key, "incoming/call.txt", "failed", error="cancelled", failure_kind="cancelled"
    )
    assert harness.warehouse.statuses.mark_for_requeue(statuses=["failed"], dry_run=True) == [key]
    assert harness.status_by_key()["incoming/call.txt"]["status"] == "failed"
    assert harness.warehouse.statuses.mark_for_requeue(statuses=["failed"]) == [key]
    (request,) = plan_recovery(harness.instance, harness.warehouse, RECOVERY, utcnow(), _Log())
    assert request.tags["cscoach/attempt"] == "1"


def _run_for(harness: PipelineHarness, key: str):  # type: ignore[no-untyped-def]
    job = harness.defs.resolve_job_def("process_consultation")
    return harness.instance.create_run_for_job(
        job, tags={"dagster/partition": key, "cscoach/version": "1"}
    )


def _mark_started(harness: PipelineHarness, run_id: str, pid: int) -> None:
    run = harness.instance.get_run_by_id(run_id)
    harness.instance.report_engine_event(f"Started process for run (pid: {pid}).", run)
    harness.instance.handle_new_event(
        _event_record(
            DagsterEvent(event_type_value=DagsterEventType.RUN_START.value, job_name=run.job_name),
            run_id,
            run.job_name,
        )
    )


def _event_record(event: DagsterEvent, run_id: str, job_name: str):  # type: ignore[no-untyped-def]
    import time

    from dagster._core.events.log import EventLogEntry

    return EventLogEntry(
        error_info=None,
        level=20,
        user_message="",
        run_id=run_id,
        timestamp=time.time(),
        dagster_event=event,
        job_name=job_name,
    )


def test_run_whose_worker_died_is_failed_and_queued_for_a_retry(
    harness: PipelineHarness,
) -> None:
    key = _queued(harness)
    run = _run_for(harness, key)
    worker = subprocess.Popen(["sleep", "60"])
    _mark_started(harness, run.run_id, worker.pid)
    harness.warehouse.statuses.set(key, "incoming/call.txt", "processing", run_id=run.run_id)
    log = _Log()
    # Alive: left alone.
    assert plan_recovery(harness.instance, harness.warehouse, RECOVERY, utcnow(), log) == []
    assert harness.instance.get_run_by_id(run.run_id).status == DagsterRunStatus.STARTED
    worker.kill()
    worker.wait()
    plan_recovery(harness.instance, harness.warehouse, RECOVERY, utcnow(), log)
    assert harness.instance.get_run_by_id(run.run_id).status == DagsterRunStatus.FAILURE
    row = harness.status_by_key()["incoming/call.txt"]
    assert row["status"] == "queued" and row["failure_kind"] == "outage"
    assert f"pid {worker.pid}" in row["error"] and row["next_attempt_at"] is not None
    assert any("is gone" in line for line in log.lines)


def test_outage_recorded_by_a_step_but_never_settled_is_scheduled(
    harness: PipelineHarness,
) -> None:
    key = _queued(harness)
    run = _run_for(harness, key)
    harness.instance.report_run_failed(run)
    # The step wrote its outage, then the failure sensor never got to it (warehouse down).
    harness.warehouse.statuses.set(
        key, "incoming/call.txt", "failed", error="the disk failed: No space left on device",
        run_id=run.run_id, attempt=1, failure_kind="outage",
    )  # fmt: skip
    _age(harness, key, 120)
    assert plan_recovery(harness.instance, harness.warehouse, RECOVERY, utcnow(), _Log()) == []
    row = harness.status_by_key()["incoming/call.txt"]
    assert row["status"] == "queued" and row["next_attempt_at"] is not None
    assert "No space left" in row["error"] and "attempt 1 of 4 failed" in row["error"]


def test_a_step_left_waiting_for_a_free_pool_slot_is_given_it(tmp_path: Path) -> None:
    """The race in Dagster's step pools: the last holder releases its slot between a new
    step's "any slot free?" and its joining the queue, so the step is queued unassigned and
    nothing assigns it. The recovery sensor's tick gives it the slot; a full pool stays full."""
    from dagster import DagsterInstance

    from cscoach_pipeline.defs.recovery.sensors import unblock_pool_steps

    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        storage = instance.event_log_storage
        storage.set_concurrency_slots("gemini", 1)
        storage.add_pending_step("gemini", "run-a", "analyse_and_score", should_assign=True)
        assert storage.claim_concurrency_slot("gemini", "run-a", "analyse_and_score").is_claimed
        # While run-a holds the slot, run-b waits (correctly): nothing to unblock.
        storage.add_pending_step("gemini", "run-b", "analyse_and_score", should_assign=False)
        log = logging.getLogger("test")
        assert unblock_pool_steps(instance, log) == []
        # The race: run-a's slot is freed before run-b was queued (here: removed directly,
        # as the release found no one waiting), leaving run-b unassigned with a free slot.
        storage.free_concurrency_slots_for_run("run-b")
        storage.free_concurrency_slots_for_run("run-a")
        storage.add_pending_step("gemini", "run-b", "analyse_and_score", should_assign=False)
        assert not storage.check_concurrency_claim(
            "gemini", "run-b", "analyse_and_score"
        ).is_assigned
        assert unblock_pool_steps(instance, log) == ["gemini"]
        claim = storage.claim_concurrency_slot("gemini", "run-b", "analyse_and_score")
        assert claim.is_claimed
