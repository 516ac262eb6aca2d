"""Re-analysis with a new prompt version, as a QA lead runs it: the `reanalyze_consultations`
job with the run tag `cscoach/prompt_version` re-runs only analysis and metrics (never
speech-to-text), each (consultation, prompt_version) keeps its own rows, the views give the
latest result per consultation and per-criterion shifts between versions, and an unknown
version fails with the list of available ones."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import AssetKey

from cscoach_pipeline.defs.analysis.prompts import PROMPT_VERSION_TAG
from cscoach_pipeline.defs.jobs import reanalyze_consultations_job
from tests.support.pipeline import PipelineHarness

pytestmark = pytest.mark.integration

CHATS = {
    "good.txt": b"Agent: Thank you for calling, my name is Dana. How can I help you?\n"
    b"Customer: My card was charged twice.\nAgent: I am sorry about that. I have issued a "
    b"refund. Anything else? Have a great day.\n",
    "rude.txt": b"Agent: What do you want?\nCustomer: My internet is down.\n"
    b"Agent: Not my problem. Call back later.\n",
}


def _reanalyze(harness: PipelineHarness, partition: str, version: str):  # type: ignore[no-untyped-def]
    job = harness.defs.resolve_job_def(reanalyze_consultations_job.name)
    return job.execute_in_process(
        partition_key=partition,
        instance=harness.instance,
        tags={PROMPT_VERSION_TAG: version},
        raise_on_error=False,
    )


def test_reanalysis_keeps_history_and_skips_speech_to_text(harness: PipelineHarness) -> None:
    results = harness.process_batch(CHATS).results
    assert all(r.success for r in results.values())
    raw_before = len(
        harness.instance.fetch_materializations(AssetKey("raw_transcript"), limit=100).records
    )
    for partition in results:
        result = _reanalyze(harness, partition, "v2")
        assert result.success
        ran = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
        assert ran == {"analyse_and_score"}  # consultation_analysis + quality_metrics
    raw_after = harness.instance.fetch_materializations(AssetKey("raw_transcript"), limit=100)
    assert len(raw_after.records) == raw_before  # no speech-to-text again

    analyses = harness.table("analyses")
    assert sorted(analyses.prompt_version) == ["v1", "v1", "v2", "v2"]
    # v2 is an A/B test: every v2 row names its arm; v1 has none.
    variants = dict(zip(analyses.prompt_version + "/" + analyses.consultation_id,
                        analyses.prompt_variant, strict=True))  # fmt: skip
    assert {v for k, v in variants.items() if k.startswith("v2/")} <= {"a", "b"}
    assert all(pd.isna(v) for k, v in variants.items() if k.startswith("v1/"))
    assert len(harness.table("quality_metrics")) == 4
    latest = harness.table("latest_analyses")
    assert len(latest) == 2 and set(latest.prompt_version) == {"v2"}
    assert set(harness.table("latest_quality_metrics").prompt_version) == {"v2"}
    shifts = harness.table("rubric_shifts")
    assert len(shifts) == 2 * 8  # per consultation: 7 criteria + overall
    assert set(shifts.from_version) == {"v1"} and set(shifts.to_version) == {"v2"}
    assert set(shifts.criterion) == {"overall", "greeting", "identification", "empathy",
                                     "problem_solving", "accuracy", "closing",
                                     "professionalism"}  # fmt: skip
    difference = shifts.to_score.astype(float) - shifts.from_score.astype(float)
    assert ((shifts["shift"].astype(float) - difference).abs() < 1e-9).all()
    # Reanalysis does not disturb the consultation's status.
    assert {s["status"] for s in harness.status_by_key().values()} == {"succeeded"}


def test_unknown_prompt_version_fails_readably(harness: PipelineHarness) -> None:
    (partition,) = harness.process_batch({"good.txt": CHATS["good.txt"]}).results
    result = _reanalyze(harness, partition, "v99")
    assert not result.success
    error = harness.status_by_key()["incoming/good.txt"]["error"]
    assert "unknown prompt version 'v99'" in error and "v1, v2" in error


def test_reanalysing_all_skips_consultations_never_transcribed(harness: PipelineHarness) -> None:
    results = harness.process_batch(
        {"good.txt": CHATS["good.txt"], "broken.mp3": b"ID3" + bytes(range(256)) * 8}
    ).results
    broken = harness.status_by_key()["incoming/broken.mp3"]
    assert broken["status"] == "failed" and "corrupt or unreadable media" in broken["error"]
    result = harness.reanalyze_all("v2")
    assert len(results) == 2 and result.success
    assert harness.status_by_key()["incoming/broken.mp3"] == broken  # reason kept
    assert sorted(harness.table("analyses").prompt_version) == ["v1", "v2"]


def test_unknown_version_over_all_keeps_the_reason_of_those_never_transcribed(
    harness: PipelineHarness,
) -> None:
    harness.process_batch(
        {"good.txt": CHATS["good.txt"], "broken.mp3": b"ID3" + bytes(range(256)) * 8}
    )
    broken = harness.status_by_key()["incoming/broken.mp3"]
    result = harness.reanalyze_all("v99")
    assert not result.success  # the analysed one fails with the reason
    statuses = harness.status_by_key()
    assert "unknown prompt version 'v99'" in statuses["incoming/good.txt"]["error"]
    assert statuses["incoming/broken.mp3"] == broken  # its own reason kept
