"""Proves that a burst of recordings shares runs under the real Dagster processes
(tests/support/daemon.py): a code server, `dagster-daemon run` with the repo's dagster.yaml,
run workers, a folder bucket and a SQLite warehouse; nothing is executed in-process.

Three recordings dropped together on this 2-core machine (3 runs at once, capped by the
cores: 2 transcriptions at once) go in two runs, one of them a batch of two whose run
worker loads the Whisper model once for both. Every recording succeeds with its own rows,
no recording is in two runs, and the originals are untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterEventType, EventRecordsFilter
from sqlalchemy import text

from cscoach_pipeline.defs.recovery.policy import BATCH_TAG
from cscoach_pipeline.defs.speech.sizing import available_cores
from tests.integration.test_text_batches import _drop_together
from tests.support.daemon import DagsterDeployment, deployment

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

FINAL_TIMEOUT_S = 200
NAMES = ("good_stereo.wav", "good_mono.mp3", "bad_stereo.mp4")


@pytest.fixture
def dagster_deployment(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[DagsterDeployment]:
    with deployment(request, tmp_path, env={"CSCOACH_AUDIO_BATCH_SIZE": "2"}) as d:
        yield d


@pytest.mark.skipif(available_cores() != 2, reason="the run split asserted is for 2 cores")
def test_recordings_dropped_together_share_runs_and_one_model_load(
    dagster_deployment: DagsterDeployment, recordings: dict[str, Path]
) -> None:
    d = dagster_deployment
    _drop_together(d, {name: recordings[name].read_bytes() for name in NAMES})
    keys = {d.source_key(name) for name in NAMES}

    rows = d.wait_for_final(keys, FINAL_TIMEOUT_S)

    assert {(r["status"], r["error"]) for r in rows.values()} == {("succeeded", None)}
    runs = d.wait_for(
        lambda: (lambda rs: rs if len(rs) >= 2 and all(r.finished for r in rs) else None)(
            d.runs()
        ),
        60, "every run finished",
    )  # fmt: skip
    members = [r.consultations for r in runs]
    assert sorted(len(m) for m in members) == [1, 2]
    assert {r.status for r in runs} == {"SUCCESS"}
    ids = {r["consultation_id"] for r in rows.values()}
    assert set().union(*members) == ids and sum(len(m) for m in members) == 3
    (batch,) = [r for r in runs if BATCH_TAG in r.tags]
    assert batch.tags["cscoach/source_key"] == "2 recordings"
    # The batch's run worker loaded the model for its first member and reused it.
    observed = d.instance.get_event_records(
        EventRecordsFilter(DagsterEventType.ASSET_OBSERVATION, asset_key=AssetKey("raw_transcript"))
    )
    reused = sorted(
        r.asset_observation.metadata["model_reused"].value
        for r in observed
        if r.run_id == batch.run_id
    )
    assert reused == [False, True]
    with d.engine.connect() as conn:
        scored = {
            row[0] for row in conn.execute(text("SELECT consultation_id FROM quality_metrics"))
        }
    assert scored == ids
    assert d.originals_changed() == {}
