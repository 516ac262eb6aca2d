"""Proves that a run writes results only for the version of the file it was started for: a
file replaced while its first version's run is pending or running makes that run stop as
superseded without touching the status, and the newer version's run writes every row
(sha, duration, transcript, analysis) of the new content."""

from __future__ import annotations

from tests.support.pipeline import PipelineHarness

FIRST = b"Agent: Hello, how can I help?\nCustomer: My parcel is late.\n"
SECOND = (
    b"Agent: Good morning, this is Mina.\nCustomer: I want to cancel my subscription.\n"
    b"Agent: I can help with that today.\n"
)


def test_older_version_run_stops_and_newest_wins(harness: PipelineHarness) -> None:
    harness.drop("chat.txt", FIRST)
    (first,) = harness.tick()
    harness.drop("chat.txt", SECOND)
    (second,) = harness.tick()
    assert first.partition_key == second.partition_key
    assert (first.tags["cscoach/version"], second.tags["cscoach/version"]) == ("1", "2")
    # The older run comes last in the queue's eyes: it must not write anything.
    newer = harness.run(second)
    assert newer.success
    older = harness.run(first)
    assert not older.success
    failure = older.get_step_failure_events()[0]
    assert "superseded" in failure.step_failure_data.user_failure_data.description
    status = harness.status_by_key()["incoming/chat.txt"]
    assert status["status"] == "succeeded" and status["run_id"] == newer.run_id
    row = harness.table("consultations").iloc[0]
    assert int(row["version"]) == 2
    texts = " ".join(harness.table("transcript_segments")["text"])
    assert "cancel my subscription" in texts and "parcel" not in texts
