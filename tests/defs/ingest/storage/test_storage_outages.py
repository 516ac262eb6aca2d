"""A bucket that is down, throttling or refusing credentials never loses a consultation and
never blames the file: a sensor tick whose listing fails raises a clear error and records
nothing (the next healthy tick finds everything), and a run whose bucket fails mid-way retries
the step with backoff, then fails the consultation saying the bucket was unavailable. The
outage is staged by pointing the bucket resource's S3 endpoint (`S3Options`) at a failing
server, as a deployment's AWS_ENDPOINT_URL would."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterEventType

from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.ingest.storage import S3Options, StorageError, _open_cached
from tests.support.backends import S3Backend
from tests.support.pipeline import PipelineHarness, with_fields
from tests.support.s3_server import (
    EXPIRED_TOKEN,
    SLOW_DOWN,
    closed_port_endpoint,
    failing_s3_server,
    fresh_bucket,
)

pytestmark = pytest.mark.integration

CHAT = b"Agent: Hello, how can I help?\nCustomer: My parcel is late.\n"


@pytest.fixture
def s3_harness(
    tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> PipelineHarness:
    return PipelineHarness(root=tmp_path, backend=S3Backend(fresh_bucket(s3_endpoint, monkeypatch)))


SECRET = "S3CR3T-value-that-must-never-be-shown"


def _point_at(harness: PipelineHarness, monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """The harness's bucket resource, on `endpoint`; the sensor and the runs use it next."""
    bucket: BucketResource = harness.resources["bucket"]
    harness.resources["bucket"] = with_fields(bucket, s3=S3Options(endpoint_url=endpoint))
    harness.rebuild()
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)  # moto accepts any signature
    _open_cached.cache_clear()


@pytest.mark.parametrize(
    "failure", [SLOW_DOWN, EXPIRED_TOKEN, None], ids=["503", "expired", "refused"]
)
def test_failed_listing_fails_the_tick_and_loses_nothing(
    s3_harness: PipelineHarness, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, failure
) -> None:
    s3_harness.drop("a.txt", CHAT)
    if failure is None:
        _point_at(s3_harness, monkeypatch, closed_port_endpoint())
        with pytest.raises(StorageError, match="failed after retries"):
            s3_harness.tick()
    else:
        with failing_s3_server(failure) as server:
            _point_at(s3_harness, monkeypatch, server.endpoint)
            with pytest.raises(StorageError, match=r"S3 list .* failed") as caught:
                s3_harness.tick()
        if failure is EXPIRED_TOKEN:
            assert "credentials have expired" in str(caught.value)
        assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert s3_harness.table("bucket_objects").empty
    assert s3_harness.table("consultation_status").empty
    _point_at(s3_harness, monkeypatch, s3_endpoint)
    assert [r.tags["cscoach/source_key"] for r in s3_harness.tick()] == ["incoming/a.txt"]


def test_bucket_outage_during_a_run_retries_then_fails_clearly(
    s3_harness: PipelineHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_harness.drop("a.txt", CHAT)
    (request,) = s3_harness.tick()
    with failing_s3_server(SLOW_DOWN) as server:
        _point_at(s3_harness, monkeypatch, server.endpoint)
        result = s3_harness.run(request)
    assert not result.success
    restarts = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_RESTARTED]
    retries = s3_harness.resources["recovery"].step_retries
    assert len(restarts) == retries
    status = s3_harness.status_by_key()["incoming/a.txt"]
    assert status["status"] == "failed" and status["stage"] == "consultation_upload"
    assert status["error"].startswith("the bucket was unavailable: S3 head")
    assert status["error"].endswith(f"(after {retries + 1} attempts in this run)")
    assert status["failure_kind"] == "outage"
    # The object is still known and can be re-run once the bucket is back.
    assert s3_harness.table("bucket_objects").state.tolist() == ["active"]
