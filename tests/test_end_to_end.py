"""End to end on the embedded default, with the real machinery: files dropped into a folder
bucket, the real sensor evaluated against a real Dagster instance, the real job executed
per partition with ffmpeg, the bundled Whisper tiny.en model and the local analyzer, and
assertions on the BI tables: transcript accuracy (WER), speakers from stereo channels and
from mono diarization, PII
absent from every table, a good call scored above a bad one, originals untouched."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from dagster import AssetKey

from tests.support.pipeline import PipelineHarness
from tests.support.scripts import BAD_CALL, GOOD_CALL, SPOKEN_PII, script_text
from tests.support.wer import word_error_rate

pytestmark = pytest.mark.integration


def raw_transcript_text(harness: PipelineHarness, consultation_id: str) -> str:
    path = harness.bucket_root / "artifacts" / consultation_id / "private/transcript.raw.json"
    return " ".join(s["text"] for s in json.loads(path.read_text())["segments"])


# The script says "010 4321 8765"; Whisper writes it in words. WER is about words heard, so
# both sides spell the number the same way before comparing.
def _spell_numbers(text: str) -> str:
    return re.sub(r"[\d\s]{6,}\d", " [number] ", text)


@pytest.fixture(scope="module")
def spoken_run(
    tmp_path_factory: pytest.TempPathFactory, recordings: dict[str, Path]
) -> PipelineHarness:
    harness = PipelineHarness(root=tmp_path_factory.mktemp("spoken"))
    return harness.process_batch(
        {
            "team-a/agent-1/good call.wav": recordings["good_stereo.wav"],
            "team-a/agent-2/good-mono.mp3": recordings["good_mono.mp3"],
            "team-b/agent-3/bad call.mp4": recordings["bad_stereo.mp4"],
        }
    )


def _id(harness: PipelineHarness, suffix: str) -> str:
    frame = harness.table("consultations")
    return frame.loc[frame.source_key.str.endswith(suffix), "consultation_id"].item()


def test_every_recording_succeeds(spoken_run: PipelineHarness) -> None:
    assert all(r.success for r in spoken_run.results.values())
    statuses = spoken_run.table("consultation_status")
    assert set(statuses.status) == {"succeeded"}
    assert statuses.error.isna().all()


def test_transcripts_match_the_script(spoken_run: PipelineHarness) -> None:
    cases = {
        "good call.wav": GOOD_CALL,
        "good-mono.mp3": GOOD_CALL,
        "bad call.mp4": BAD_CALL,
    }
    for suffix, script in cases.items():
        hypothesis = raw_transcript_text(spoken_run, _id(spoken_run, suffix))
        wer = word_error_rate(_spell_numbers(script_text(script)), _spell_numbers(hypothesis))
        assert wer < 0.25, f"{suffix}: WER {wer:.3f}\n{hypothesis}"


def test_stereo_channels_become_agent_and_customer(spoken_run: PipelineHarness) -> None:
    segments = spoken_run.table("transcript_segments")
    stereo = segments[segments.consultation_id == _id(spoken_run, "good call.wav")]
    by_text = {row.text.lower(): row.speaker for row in stereo.itertuples()}
    assert next(v for k, v in by_text.items() if "thank you for calling" in k) == "agent"
    assert next(v for k, v in by_text.items() if "lost my credit card" in k) == "customer"
    assert stereo.start_s.is_monotonic_increasing
    assert ((stereo.end_s > stereo.start_s) & stereo.confidence.between(0, 1)).all()


def test_a_mono_mp3_gets_its_speakers_from_diarization(spoken_run: PipelineHarness) -> None:
    """The mono mix of the same call: speakers from Resemblyzer's voice embeddings, the agent
    from what they say, recorded with its confidence; talk share and loudness in the table."""
    segments = spoken_run.table("transcript_segments")
    mono = segments[segments.consultation_id == _id(spoken_run, "good-mono.mp3")]
    by_text = {row.text.lower(): row.speaker for row in mono.itertuples()}
    assert next(v for k, v in by_text.items() if "thank you for calling" in k) == "agent"
    assert next(v for k, v in by_text.items() if "lost my credit card" in k) == "customer"
    row = (
        spoken_run.table("consultations")
        .set_index("source_key")
        .loc["incoming/team-a/agent-2/good-mono.mp3"]
    )
    assert row.speakers_from == "diarization" and row.speaker_count == 2
    assert row.agent_channel_detected == 0 and row.speaker_role_confidence >= 0.8
    stereo_row = (
        spoken_run.table("consultations")
        .set_index("source_key")
        .loc["incoming/team-a/agent-1/good call.wav"]
    )
    assert stereo_row.speakers_from == "channels" and stereo_row.agent_channel_detected == 0
    metrics = spoken_run.table("quality_metrics").set_index("consultation_id")
    scored = metrics.loc[_id(spoken_run, "good-mono.mp3")]
    assert 0.3 < scored.agent_talk_share < 0.8 and scored.unknown_talk_s == 0
    assert scored.agent_loudness_dbfs < 0 and scored.raised_voice_count >= 0


def test_consultation_rows_describe_the_files(spoken_run: PipelineHarness) -> None:
    rows = spoken_run.table("consultations").set_index("source_key")
    video = rows.loc["incoming/team-b/agent-3/bad call.mp4"]
    assert video.file_type == "video" and video.channels == 2
    stereo = rows.loc["incoming/team-a/agent-1/good call.wav"]
    assert stereo.file_type == "audio" and stereo.language == "en"
    assert 30 < stereo.duration_s < 60
    originals = spoken_run.backend.digest("incoming/")
    assert stereo.content_sha256 == originals["incoming/team-a/agent-1/good call.wav"]
    assert (rows.stt_engine == "faster-whisper").all()


def test_no_pii_in_any_table(spoken_run: PipelineHarness) -> None:
    everything = spoken_run.all_table_text().lower()
    for leaked in SPOKEN_PII:
        assert leaked not in everything
    segments = spoken_run.table("transcript_segments")
    assert segments.text.str.contains(r"\[(?:EMAIL|PHONE|NUMBER)\]").sum() >= 2
    # The unredacted transcript exists only in the bucket's private artifacts area.
    raw = raw_transcript_text(spoken_run, _id(spoken_run, "good call.wav"))
    assert "[EMAIL]" not in raw


def test_good_call_scores_clearly_above_bad_call(spoken_run: PipelineHarness) -> None:
    scores = spoken_run.table("quality_metrics").set_index("consultation_id").overall_score
    good = scores[_id(spoken_run, "good call.wav")]
    bad = scores[_id(spoken_run, "bad call.mp4")]
    assert good - bad >= 30, (good, bad)
    analyses = spoken_run.table("analyses").set_index("consultation_id")
    assert set(analyses.analyzer) == {"local-rules"}
    assert analyses.loc[_id(spoken_run, "good call.wav")].resolution_status == "resolved"
    assert analyses.loc[_id(spoken_run, "bad call.mp4")].resolution_status == "unresolved"


def test_timed_metrics_for_stereo_calls(spoken_run: PipelineHarness) -> None:
    metrics = spoken_run.table("quality_metrics").set_index("consultation_id")
    stereo = metrics.loc[_id(spoken_run, "good call.wav")]
    assert 0.3 < stereo.agent_talk_share < 0.8
    assert abs(stereo.agent_talk_share + stereo.customer_talk_share - 1) < 1e-6
    assert 80 < stereo.agent_words_per_minute < 260
    assert stereo.agent_response_latency_median_s is not None
    assert stereo.longest_silence_s > 0


def test_materializations_carry_supervisor_metadata(spoken_run: PipelineHarness) -> None:
    key = _id(spoken_run, "good call.wav")
    event = spoken_run.instance.get_latest_materialization_event(AssetKey("quality_metrics"))
    assert event is not None
    latest = {}
    for asset in ("raw_transcript", "quality_metrics", "consultation_analysis"):
        records = spoken_run.instance.fetch_materializations(AssetKey(asset), limit=10).records
        record = next(r for r in records if r.partition_key == key)
        latest[asset] = record.asset_materialization.metadata
    assert latest["raw_transcript"]["engine"].value == "faster-whisper"
    assert latest["raw_transcript"]["language"].value == "en"
    assert latest["raw_transcript"]["elapsed_s"].value > 0
    assert latest["quality_metrics"]["overall_score"].value > 50
    assert "card" in latest["consultation_analysis"]["summary"].value.lower()


def test_originals_are_never_modified_or_deleted(spoken_run: PipelineHarness) -> None:
    assert spoken_run.backend.digest("incoming/") == spoken_run.originals_before


def test_rerunning_a_partition_replaces_its_rows(spoken_run: PipelineHarness) -> None:
    key = _id(spoken_run, "good-mono.mp3")
    before = spoken_run.table("transcript_segments")
    count = int((before.consultation_id == key).sum())
    from dagster import RunRequest

    result = spoken_run.run(RunRequest(partition_key=key))
    assert result.success
    after = spoken_run.table("transcript_segments")
    assert int((after.consultation_id == key).sum()) == count
    assert len(spoken_run.table("quality_metrics")) == 3
