"""Bad input fails on its own partition with a readable reason, in `consultation_status` and
in the Dagster run (a failed `input_readable` check where it was found, the rest skipped),
while good files dropped alongside keep flowing; silence is `no_speech`,
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


@pytest.mark.parametrize(
    ("name", "stage", "reason"),
    [
        ("empty.wav", "consultation_upload", "empty file (0 bytes)"),
        ("huge.wav", "consultation_upload", "above the 1.0 MB limit"),
        ("corrupt.mp3", "consultation_audio", "corrupt or unreadable media"),
        ("no-audio.mp4", "consultation_audio", "the video has no audio track"),
        ("not-text.txt", "raw_transcript", "file is not text"),
    ],
)
def test_an_unreadable_file_ends_as_a_failed_check_where_it_was_found(
    bad_batch: PipelineHarness, name: str, stage: str, reason: str
) -> None:
    """The run succeeds: the step that could not read the file logs a failed
    `input_readable` check with the reason on its partition and materializes nothing, so
    every step after it is skipped rather than failed (no red boxes downstream)."""
    consultation_id = bad_batch.status_by_key()[f"incoming/{name}"]["consultation_id"]
    result = bad_batch.results[consultation_id]
    assert result.success
    events = result.all_events
    checks = [
        e.event_specific_data for e in events if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]
    failed = [c for c in checks if not c.passed]
    assert [(c.asset_key.path[-1], c.check_name) for c in failed] == [(stage, "input_readable")]
    assert failed[0].partition == consultation_id
    assert reason in failed[0].description and failed[0].severity.value == "ERROR"
    assert all(e.event_type_value != "STEP_FAILURE" for e in events)
    materialized = {
        e.asset_key.path[-1] for e in events if e.event_type_value == "ASSET_MATERIALIZATION"
    }
    assert stage not in materialized and "quality_metrics" not in materialized
    skipped = {e.step_key for e in events if e.event_type_value == "STEP_SKIPPED"}
    assert "analyse_and_score" in skipped and "transcript" in skipped


def test_a_readable_file_passes_its_input_checks(bad_batch: PipelineHarness) -> None:
    fine_id = bad_batch.status_by_key()["incoming/fine.txt"]["consultation_id"]
    checks = [
        e.event_specific_data
        for e in bad_batch.results[fine_id].all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "input_readable"
    ]
    assert {c.asset_key.path[-1] for c in checks} == {
        "consultation_upload", "consultation_audio", "raw_transcript",
    }  # fmt: skip
    assert all(c.passed and c.target_materialization_data is not None for c in checks)


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
