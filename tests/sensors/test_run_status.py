"""Proves the failed-run sensor: when a run dies outside the assets' own error handling
(killed process, crash before a step could record anything), its consultation is marked
failed with the run's error; an outcome an asset already recorded is never overwritten."""

from __future__ import annotations

from dagster import DagsterEventType, RunRequest, build_run_status_sensor_context

from cscoach_pipeline.lib import tables
from cscoach_pipeline.sensors import record_failed_consultation_run
from tests.support.pipeline import PipelineHarness

CHAT = b"Agent: Hello, how can I help?\nCustomer: My parcel is late.\n"


def _failed_run(harness: PipelineHarness) -> tuple[str, object]:
    harness.drop("call.txt", CHAT)
    (request,) = harness.tick()
    # Lose the inventory row: the run now fails before any step can record a status,
    # as a run killed at start-up would.
    harness.warehouse.replace_rows(tables.bucket_objects, {"source_key": "incoming/call.txt"}, [])
    result = harness.run(RunRequest(partition_key=request.partition_key))
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_FAILURE)
    context = build_run_status_sensor_context(
        sensor_name=record_failed_consultation_run.name,
        dagster_event=failure,
        dagster_instance=harness.instance,
        dagster_run=harness.instance.get_run_by_id(result.run_id),
        resources={"warehouse": harness.warehouse},
    ).for_run_failure()
    return request.partition_key, context


def test_dangling_consultation_is_marked_failed(harness: PipelineHarness) -> None:
    key, context = _failed_run(harness)
    assert harness.status_by_key()["incoming/call.txt"]["status"] == "queued"
    record_failed_consultation_run(context)
    row = harness.status_by_key()["incoming/call.txt"]
    assert row["status"] == "failed" and row["stage"] == "run"
    assert row["error"].startswith("run failed:")
    assert row["consultation_id"] == key


def test_recorded_outcome_is_not_overwritten(harness: PipelineHarness) -> None:
    key, context = _failed_run(harness)
    harness.warehouse.set_status(key, "incoming/call.txt", "failed", error="empty file (0 bytes)")
    record_failed_consultation_run(context)
    assert harness.status_by_key()["incoming/call.txt"]["error"] == "empty file (0 bytes)"
