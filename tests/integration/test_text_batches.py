"""Proves batch runs of new chats under the real Dagster processes (tests/support/daemon.py):
a code server, `dagster-daemon run` with the repo's dagster.yaml, run workers, a folder
bucket and a SQLite warehouse; nothing is executed in-process.

Chats dropped together are run several per run by the bucket sensor (one run launch for
many). Every good chat succeeds, each with its own rows; a broken chat in the same batch
fails alone with its own reason; its batch run fails, the run-failure sensor queues the
bystanders, and the recovery sensor gives each a run of its own, which succeeds. No
consultation is processed by two runs at once, and the originals are untouched.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cscoach_pipeline.defs.recovery.policy import BATCH_TAG, batch_members
from tests.support.daemon import DagsterDeployment, deployment
from tests.test_text_batches import chat

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

FINAL_TIMEOUT_S = 150


@pytest.fixture
def dagster_deployment(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[DagsterDeployment]:
    env = {"CSCOACH_TEXT_BATCH_SIZE": "4", "CSCOACH_RECOVERY_INTERVAL_S": "3"}
    with deployment(request, tmp_path, env=env) as d:
        yield d


def _drop_together(d: DagsterDeployment, files: dict[str, bytes]) -> None:
    """Written aside, then renamed in: the sensor sees them in one listing."""
    staging = d.bucket / "staging"
    staging.mkdir(exist_ok=True)
    for name, data in files.items():
        (staging / name).write_bytes(data)
    for name in files:
        (staging / name).replace(d.bucket / "incoming" / name)


def test_chats_run_in_batches_and_a_bad_one_fails_alone(
    dagster_deployment: DagsterDeployment,
) -> None:
    d = dagster_deployment
    files = {f"chat-{i}.txt": chat(i) for i in range(7)}
    files["broken.json"] = b'{"messages": [{"role": "agent", "text": "hi"'
    _drop_together(d, files)
    keys = {d.source_key(name) for name in files}

    rows = d.wait_for_final(keys, FINAL_TIMEOUT_S)

    broken = rows.pop(d.source_key("broken.json"))
    assert broken["status"] == "failed" and broken["stage"] == "raw_transcript"
    assert "json" in (broken["error"] or "").lower()
    assert {(r["status"], r["error"]) for r in rows.values()} == {("succeeded", None)}
    runs = d.wait_for(
        lambda: (lambda rs: rs if rs and all(r.finished for r in rs) else None)(d.runs()),
        60, "every run finished",
    )  # fmt: skip
    batches = [r for r in runs if BATCH_TAG in r.tags]
    assert batches, "the chats dropped together ran in batches"
    assert max(len(batch_members(r.tags) or {}) for r in batches) == 4
    broken_id = broken["consultation_id"]
    (failed_batch,) = [r for r in batches if broken_id in (batch_members(r.tags) or {})]
    assert failed_batch.status == "FAILURE"
    assert {r.status for r in batches if r is not failed_batch} == {"SUCCESS"}
    # The failed batch's bystanders each ran again on their own, and succeeded.
    bystanders = set(batch_members(failed_batch.tags) or {}) - {broken_id}
    singles = sorted((r.partition, r.status) for r in runs if r.partition in bystanders)
    assert singles == sorted((cid, "SUCCESS") for cid in bystanders)  # one run each
    # No consultation was in two runs at once: each single run started after its batch ended.
    ended = d.instance.get_run_record_by_id(failed_batch.run_id).end_time
    for run in runs:
        if run.partition in bystanders:
            assert d.instance.get_run_record_by_id(run.run_id).start_time >= ended
    # Every good chat has its own results.
    with d.engine.connect() as conn:
        from sqlalchemy import text

        scored = {
            row[0] for row in conn.execute(text("SELECT consultation_id FROM quality_metrics"))
        }
    assert scored == {r["consultation_id"] for r in rows.values()}
    assert d.originals_changed() == {}
