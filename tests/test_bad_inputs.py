"""Bad input fails on its own partition with a readable reason, in `consultation_status` and
in the Dagster run, while good files dropped alongside keep flowing; silence is `no_speech`,
not a hallucinated sentence; the sensor never crashes; originals are never touched."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from tests.support.pipeline import PipelineHarness

pytestmark = pytest.mark.integration

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + os.urandom(600)


@pytest.fixture(scope="module")
def bad_batch(
    tmp_path_factory: pytest.TempPathFactory, recordings: dict[str, Path]
) -> PipelineHarness:
    harness = PipelineHarness(root=tmp_path_factory.mktemp("bad"), max_file_bytes=1_000_000)
    return harness.process_batch(
        {
            "empty.wav": b"",
            "corrupt.mp3": b"ID3" + os.urandom(4000),
            "no-audio.mp4": recordings["no_audio.mp4"],
            "not-text.txt": PNG,
            "huge.wav": recordings["good_stereo.wav"],  # > the 1 MB limit of this harness
            "silence.wav": recordings["silence.wav"],
            "fine.txt": b"Agent: Hello, thank you for calling.\nCustomer: Thanks, bye.\n",
            "upload.mp4.part": b"half a file",
        }
    )


@pytest.mark.parametrize(
    ("name", "status", "reason"),
    [
        ("empty.wav", "failed", "empty file (0 bytes)"),
        ("corrupt.mp3", "failed", "corrupt or unreadable media"),
        ("no-audio.mp4", "failed", "the video has no audio track"),
        ("not-text.txt", "failed", "file is not text"),
        ("huge.wav", "failed", "above the 1.0 MB limit (CSCOACH_MAX_FILE_MB)"),
        ("silence.wav", "no_speech", "no speech detected"),
        ("fine.txt", "succeeded", None),
    ],
)
def test_each_file_gets_its_own_outcome(
    bad_batch: PipelineHarness, name: str, status: str, reason: str | None
) -> None:
    row = bad_batch.status_by_key()[f"incoming/{name}"]
    assert row["status"] == status
    if reason is None:
        assert pd.isna(row["error"])
    else:
        assert reason in row["error"]


def test_failures_are_readable_in_the_dagster_run(bad_batch: PipelineHarness) -> None:
    by_key = {
        row["source_key"]: row for row in bad_batch.table("consultation_status").to_dict("records")
    }
    corrupt_id = by_key["incoming/corrupt.mp3"]["consultation_id"]
    result = bad_batch.results[corrupt_id]
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "consultation_audio"
    assert "corrupt or unreadable media" in failure.event_specific_data.error.message


def test_silence_does_not_produce_text(bad_batch: PipelineHarness) -> None:
    silence_id = bad_batch.status_by_key()["incoming/silence.wav"]["consultation_id"]
    segments = bad_batch.table("transcript_segments")
    assert (segments.consultation_id == silence_id).sum() == 0
    assert bad_batch.results[silence_id].success
    assert silence_id not in set(bad_batch.table("quality_metrics").consultation_id)


def test_partial_upload_is_ignored_and_originals_untouched(bad_batch: PipelineHarness) -> None:
    assert "incoming/upload.mp4.part" not in bad_batch.status_by_key()
    assert bad_batch.backend.digest("incoming/") == bad_batch.originals_before


def test_sensor_keeps_working_after_failures(bad_batch: PipelineHarness) -> None:
    bad_batch.drop("later.txt", b"Customer: Is my order shipped?\nAgent: Yes, it ships today.\n")
    results = bad_batch.process()
    assert len(results) == 1 and next(iter(results.values())).success


def test_silence_is_not_analysed_or_scored_in_dagster(bad_batch: PipelineHarness) -> None:
    from dagster import AssetKey

    silence_id = bad_batch.status_by_key()["incoming/silence.wav"]["consultation_id"]
    result = bad_batch.results[silence_id]
    materialized = {event.asset_key for event in result.get_asset_materialization_events()}
    assert AssetKey("transcript") in materialized
    assert AssetKey("consultation_analysis") not in materialized
    assert AssetKey("quality_metrics") not in materialized
