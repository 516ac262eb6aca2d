"""Proves that a burst of new recordings shares runs, on a real folder bucket, a real Dagster
instance, real recordings (espeak-ng and ffmpeg) and the real per-consultation job.

A tick's new recordings go in at least as many runs as the instance runs at once (so every
core still gets a run), at most `audio_batch_size` each, sizes within one of each other; a
lone recording, or as many as run at once, keep a run each. A batch run of recordings
transcribes every member with one loaded model, materializes every partition of every
asset with its own figures and writes one set of rows per member, as single runs do. A
recording that cannot be decoded fails alone with its reason, and its bystanders go back
in the queue for runs of their own.
(The batch machinery is the chats' one: tests/test_text_batches.py; under the real daemon:
tests/integration/test_text_batches.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, EventRecordsFilter

from cscoach_pipeline.defs.ingest.sensors import recording_runs
from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.recovery.policy import BATCH_TAG, batch_members
from cscoach_pipeline.defs.recovery.run_status import settle_finished_run
from tests.support.pipeline import PipelineHarness

ASSETS = (
    "consultation_upload", "consultation_audio", "raw_transcript", "transcript",
    "consultation_analysis", "quality_metrics",
)  # fmt: skip
FIVE = ("good_stereo.wav", "good_mono.wav", "bad_stereo.wav", "good_mono.mp3", "bad_stereo.mp4")


@pytest.mark.parametrize(
    ("count", "batch_size", "at_once", "sizes"),
    [
        (0, 4, 3, []),
        (1, 4, 3, [1]),
        (3, 4, 3, [1, 1, 1]),  # as many as run at once: a run each
        (4, 4, 3, [2, 1, 1]),
        (8, 4, 3, [3, 3, 2]),
        (8, 4, 2, [4, 4]),
        (9, 4, 2, [3, 3, 3]),  # the batch size caps a run; sizes stay within one
        (5, 1, 2, [1, 1, 1, 1, 1]),  # batching off
        (5, 4, 0, [3, 2]),  # runs at once unknown: only the batch size counts
    ],
)
def test_recordings_spread_over_the_runs_that_run_at_once(
    count: int, batch_size: int, at_once: int, sizes: list[int]
) -> None:
    assert recording_runs(count, batch_size, at_once) == sizes


def _drop(harness: PipelineHarness, recordings: dict[str, Path], names: tuple[str, ...]) -> None:
    for name in names:
        harness.drop(f"calls/{name}", recordings[name].read_bytes())


def _materialized(harness: PipelineHarness, asset: str) -> set[str]:
    records = harness.instance.get_event_records(
        EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION, asset_key=AssetKey(asset))
    )
    return {r.event_log_entry.dagster_event.partition for r in records}


def test_a_burst_of_recordings_shares_runs_and_a_few_keep_their_own(
    tmp_path: Path, recordings: dict[str, Path]
) -> None:
    harness = PipelineHarness(root=tmp_path / "run", audio_batch_size=2)
    _drop(harness, recordings, FIVE)
    harness.drop("chat.txt", b"Agent: Hello, how can I help?\nCustomer: My bill is wrong.\n")

    requests = harness.tick(transcriptions_at_once=2)

    sizes = sorted(len(batch_members(r.tags) or {r.partition_key: 0}) for r in requests)
    assert sizes == [1, 1, 2, 2]  # five recordings in three runs, the chat in its own
    batches = [r for r in requests if BATCH_TAG in r.tags]
    assert {r.tags["cscoach/source_key"] for r in batches} == {"2 recordings"}
    keys = harness.instance.get_dynamic_partitions(consultation_partitions.name)
    for batch in batches:  # each batch is exactly the range of its members
        start = keys.index(batch.tags["dagster/asset_partition_range_start"])
        end = keys.index(batch.tags["dagster/asset_partition_range_end"])
        assert set(keys[start : end + 1]) == set(batch_members(batch.tags) or {})

    later = PipelineHarness(root=tmp_path / "few", audio_batch_size=4)
    _drop(later, recordings, FIVE[:3])
    assert not any(BATCH_TAG in r.tags for r in later.tick(transcriptions_at_once=3))


def test_a_batch_run_of_recordings_transcribes_every_member_with_its_own_figures(
    tmp_path: Path, recordings: dict[str, Path]
) -> None:
    harness = PipelineHarness(root=tmp_path / "run", audio_batch_size=3)
    names = ("good_stereo.wav", "good_mono.mp3", "bad_stereo.mp4")
    _drop(harness, recordings, names)
    (request,) = harness.tick(transcriptions_at_once=1)

    result = harness.run(request)

    assert result.success
    members = set(batch_members(request.tags) or {})
    assert len(members) == 3
    statuses = harness.status_by_key()
    assert {(r["status"], r["error"]) for r in statuses.values()} == {("succeeded", None)}
    for asset in ASSETS:
        assert _materialized(harness, asset) == members, asset
    transcripts = {
        e.event_specific_data.asset_observation.partition: e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_OBSERVATION
        and e.event_specific_data.asset_observation.asset_key.path[-1] == "raw_transcript"
    }
    assert set(transcripts) == members
    # One engine serves the whole batch: loaded at most once, for the first member.
    reused = [transcripts[m].metadata["model_reused"].value for m in sorted(transcripts)]
    assert reused.count(False) <= 1
    assert all(o.metadata["segments"].value > 0 for o in transcripts.values())
    assert {o.metadata["source"].value for o in transcripts.values()} == {"stt"}
    metrics = harness.table("quality_metrics").set_index("consultation_id")
    assert set(metrics.index) == members
    segments = harness.table("transcript_segments")
    assert set(segments["consultation_id"]) == members
    # Each member's rows are its own recording's: stereo calls have both parties.
    by_id = {r["consultation_id"]: k for k, r in statuses.items()}
    stereo = next(m for m in members if by_id[m].endswith("good_stereo.wav"))
    speakers = set(segments[segments["consultation_id"] == stereo]["speaker"])
    assert {"agent", "customer"} <= speakers


def test_a_recording_that_cannot_be_decoded_fails_alone_and_its_batch_runs_again(
    tmp_path: Path, recordings: dict[str, Path]
) -> None:
    harness = PipelineHarness(root=tmp_path / "run", audio_batch_size=2)
    _drop(harness, recordings, ("good_stereo.wav", "no_audio.mp4"))
    (request,) = harness.tick(transcriptions_at_once=1)

    result = harness.run(request)

    assert not result.success
    statuses = harness.status_by_key()
    broken = statuses["incoming/calls/no_audio.mp4"]
    assert broken["status"] == "failed" and broken["stage"] == "consultation_audio"
    assert broken["error"] and "audio" in broken["error"].lower()
    run = harness.instance.get_run_by_id(result.run_id)
    settle_finished_run(
        harness.instance, harness.warehouse, run, harness.resources["recovery"].policy
    )
    statuses = harness.status_by_key()
    assert statuses["incoming/calls/good_stereo.wav"]["status"] == "queued"
    assert statuses["incoming/calls/no_audio.mp4"]["status"] == "failed"
