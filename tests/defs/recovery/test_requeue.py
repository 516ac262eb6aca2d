"""Proves the operator's re-queue, from the command line and as the `requeue_consultations`
job a supervisor launches from the UI: the selected consultations become `queued` with a
due re-queue request (attempts counted again from 1), others stay as they were; a dry run
changes nothing."""

from __future__ import annotations

import pytest
from dagster import Definitions

from cscoach_pipeline import requeue
from cscoach_pipeline.defs.recovery.jobs import requeue_consultations
from tests.support.pipeline import PipelineHarness

CHAT = b"Agent: Hello, how can I help?\nCustomer: My parcel is late.\n"


def _two_failed(harness: PipelineHarness) -> tuple[str, str]:
    harness.drop("a.txt", CHAT)
    harness.drop("b.txt", CHAT + b"Agent: Sorry about that.\n")
    a, b = (r.partition_key for r in harness.tick())
    harness.warehouse.statuses.set(a, "incoming/a.txt", "failed", error="x", failure_kind="outage")
    harness.warehouse.statuses.set(b, "incoming/b.txt", "failed", error="y", failure_kind="input")
    return a, b


def test_cli_requeues_by_status_and_kind(
    harness: PipelineHarness, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    a, _ = _two_failed(harness)
    monkeypatch.setenv("CSCOACH_WAREHOUSE_URL", harness.warehouse_url)
    assert requeue.main(["--status", "failed", "--kind", "outage", "--dry-run"]) == 0
    assert a in capsys.readouterr().out
    assert harness.status_by_key()["incoming/a.txt"]["status"] == "failed"
    assert requeue.main(["--status", "failed", "--kind", "outage"]) == 0
    rows = harness.status_by_key()
    assert rows["incoming/a.txt"]["status"] == "queued"
    assert rows["incoming/a.txt"]["next_attempt_at"] is not None
    assert rows["incoming/a.txt"]["attempt"] == 0 and rows["incoming/a.txt"]["error"] is None
    assert rows["incoming/b.txt"]["status"] == "failed"
    assert requeue.main(["--status", "no_speech"]) == 1


def test_ui_job_requeues_selected_ids(harness: PipelineHarness) -> None:
    _, b = _two_failed(harness)
    defs = Definitions(jobs=[requeue_consultations], resources={"warehouse": harness.warehouse})
    result = defs.resolve_job_def("requeue_consultations").execute_in_process(
        run_config={"ops": {"requeue_selected": {"config": {"ids": [b]}}}},
        instance=harness.instance,
    )
    assert result.success
    rows = harness.status_by_key()
    assert rows["incoming/b.txt"]["status"] == "queued"
    assert rows["incoming/a.txt"]["status"] == "failed"
