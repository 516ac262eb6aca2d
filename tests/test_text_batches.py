"""Proves batch runs of new chats (one run launch for many text consultations) on a real
folder bucket, a real Dagster instance and the real per-consultation job.

The sensor runs the new text consultations of one tick up to `text_batch_size` per run: a
range of partitions added together, with the members and their versions in the run's tags,
while recordings, changed files and batches of one keep a run of their own. A batch run
works every member through every step: each partition is materialized for every asset, with
its own figures as an observation, and the tables hold one row per member as for single
runs. A bad chat fails with its own reason; the batch run fails after working the others,
and its bystanders are queued for runs of their own, which the recovery sensor launches and
which succeed (as their first attempt); settling the batch again changes nothing. A range
that is not exactly the members (another writer's partition inside it) materializes nothing
and its members run again one by one; a member replaced meanwhile is left to its newer run
and the batch succeeds.
(The same under the real daemon and run workers: tests/integration/test_text_batches.py.)
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from dagster import AssetKey, DagsterEventType, EventRecordsFilter

from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.recovery.policy import BATCH_TAG, batch_members
from cscoach_pipeline.defs.recovery.run_status import settle_finished_run
from cscoach_pipeline.defs.recovery.sensors import plan_recovery
from tests.support.pipeline import PipelineHarness

ASSETS = (
    "consultation_upload", "consultation_audio", "raw_transcript", "transcript",
    "consultation_analysis", "quality_metrics",
)  # fmt: skip


def chat(index: int) -> bytes:
    return (
        f"Agent: Thank you for contacting Acme, this is chat {index}. How can I help?\n"
        f"Customer: My order number {index} is late and I am worried.\n"
        "Agent: I am sorry, I have checked and it arrives tomorrow. Anything else?\n"
        "Customer: No, thank you.\n"
    ).encode()


def _harness(tmp_path: Path, size: int = 3) -> PipelineHarness:
    return PipelineHarness(root=tmp_path / "run", text_batch_size=size)


def _materialized(harness: PipelineHarness, asset: str) -> set[str]:
    records = harness.instance.get_event_records(
        EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION, asset_key=AssetKey(asset))
    )
    return {r.event_log_entry.dagster_event.partition for r in records}


def test_new_chats_of_a_tick_are_batched_and_recordings_are_not(
    tmp_path: Path, recordings: dict[str, Path]
) -> None:
    harness = _harness(tmp_path, size=2)
    for index in range(5):
        harness.drop(f"chats/chat-{index}.txt", chat(index))
    harness.drop("calls/call.wav", recordings["good_stereo.wav"].read_bytes())

    requests = harness.tick()

    batches = [r for r in requests if BATCH_TAG in r.tags]
    singles = [r for r in requests if BATCH_TAG not in r.tags]
    assert sorted(len(batch_members(r.tags) or {}) for r in batches) == [2, 2]
    assert sorted(r.tags["cscoach/source_key"] for r in singles) == [
        "incoming/calls/call.wav", "incoming/chats/chat-4.txt",
    ]  # fmt: skip
    keys = harness.instance.get_dynamic_partitions(consultation_partitions.name)
    for batch in batches:
        # Each batch is exactly the range of its members among the added partitions.
        start = keys.index(batch.tags["dagster/asset_partition_range_start"])
        end = keys.index(batch.tags["dagster/asset_partition_range_end"])
        assert set(keys[start : end + 1]) == set(batch_members(batch.tags) or {})
        assert batch.partition_key is None and batch.run_key
    assert {s["status"] for s in harness.status_by_key().values()} == {"queued"}


def test_a_changed_chat_keeps_a_run_of_its_own(tmp_path: Path) -> None:
    harness = _harness(tmp_path)
    first = harness.drop("a.txt", chat(1))
    harness.drop("b.txt", chat(2))
    assert [len(batch_members(r.tags) or {}) for r in harness.tick()] == [2]

    first.write_bytes(chat(3))  # same key, new content: its partition exists already
    harness.drop("c.txt", chat(4))
    requests = harness.tick()

    assert sorted(r.partition_key or "" for r in requests) == sorted(
        [r["consultation_id"] for k, r in harness.status_by_key().items() if k != "incoming/b.txt"]
    )
    assert not any(BATCH_TAG in r.tags for r in requests)


def test_a_batch_run_materializes_every_member_with_its_own_figures(tmp_path: Path) -> None:
    harness = _harness(tmp_path)
    for index in range(3):
        harness.drop(f"chat-{index}.txt", chat(index))
    (request,) = harness.tick()

    result = harness.run(request)

    assert result.success
    members = set(batch_members(request.tags) or {})
    statuses = harness.status_by_key()
    assert {r["consultation_id"] for r in statuses.values()} == members
    assert {(r["status"], r["error"]) for r in statuses.values()} == {("succeeded", None)}
    for asset in ASSETS:
        assert _materialized(harness, asset) == members, asset
    observed = [
        e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_OBSERVATION
    ]
    by_asset = {(o.asset_key.path[-1], o.partition) for o in observed}
    assert {(a, m) for a in ASSETS[:4] for m in members} <= by_asset
    uploads = [o for o in observed if o.asset_key.path[-1] == "consultation_upload"]
    assert sorted(o.metadata["source_key"].value for o in uploads) == [
        "incoming/chat-0.txt", "incoming/chat-1.txt", "incoming/chat-2.txt",
    ]  # fmt: skip
    assert set(harness.table("quality_metrics")["consultation_id"]) == members
    assert set(harness.table("transcript_segments")["consultation_id"]) == members


def test_a_bad_chat_fails_alone_and_its_batch_runs_again_without_it(tmp_path: Path) -> None:
    harness = _harness(tmp_path)
    harness.drop("good-1.txt", chat(1))
    harness.drop("broken.json", b'{"messages": [{"role": "agent", "text": "hi"')
    harness.drop("good-2.txt", chat(2))
    (request,) = harness.tick()

    result = harness.run(request)

    assert not result.success
    statuses = harness.status_by_key()
    broken = statuses["incoming/broken.json"]
    assert broken["status"] == "failed" and broken["stage"] == "raw_transcript"
    assert broken["error"] and "json" in broken["error"].lower()
    # The run-failure sensor's settlement: the bystanders go back in the queue at once...
    run = harness.instance.get_run_by_id(result.run_id)
    policy = harness.resources["recovery"].policy
    settle_finished_run(harness.instance, harness.warehouse, run, policy)
    statuses = harness.status_by_key()
    good = {k: statuses[k] for k in ("incoming/good-1.txt", "incoming/good-2.txt")}
    assert {r["status"] for r in good.values()} == {"queued"}
    assert statuses["incoming/broken.json"]["status"] == "failed"  # its reason stays
    # ...and the recovery sensor gives each a run of its own, which succeeds.
    settle_finished_run(harness.instance, harness.warehouse, run, policy)  # twice: no change
    assert harness.status_by_key() == statuses
    retries = plan_recovery(
        harness.instance, harness.warehouse, harness.resources["recovery"],
        datetime.now(tz=UTC), log=_NullLog(),
    )  # fmt: skip
    assert sorted(r.partition_key or "" for r in retries) == sorted(
        r["consultation_id"] for r in good.values()
    )
    # A bystander's own run is its first attempt, not a retry after a failure of its own.
    assert {r.tags["cscoach/attempt"] for r in retries} == {"1"}
    settle_finished_run(harness.instance, harness.warehouse, run, policy)  # a late repeat
    assert {harness.status_by_key()[k]["stage"] for k in good} == {"recovery"}
    for retry in retries:
        assert harness.run(retry).success
    statuses = harness.status_by_key()
    assert {statuses[k]["status"] for k in good} == {"succeeded"}
    assert statuses["incoming/broken.json"]["status"] == "failed"


def test_a_range_that_is_not_exactly_the_members_runs_them_again_one_by_one(
    tmp_path: Path,
) -> None:
    harness = _harness(tmp_path)
    for index in range(3):
        harness.drop(f"chat-{index}.txt", chat(index))
    (request,) = harness.tick()
    members = batch_members(request.tags) or {}
    # As if another writer's partition had landed inside the range: one key is no member.
    first = request.tags["dagster/asset_partition_range_start"]
    tags = {**request.tags, BATCH_TAG: json.dumps({k: v for k, v in members.items() if k != first})}

    result = harness.run(request.with_replaced_attrs(tags=tags))

    assert not result.success
    for asset in ASSETS:  # nothing in the range was marked materialized
        assert _materialized(harness, asset) == set(), asset
    run = harness.instance.get_run_by_id(result.run_id)
    settle_finished_run(
        harness.instance, harness.warehouse, run, harness.resources["recovery"].policy
    )
    statuses = {r["consultation_id"]: r for r in harness.status_by_key().values()}
    assert {statuses[k]["status"] for k in members if k != first} == {"queued"}
    assert statuses[first]["next_attempt_at"] is None  # not this batch's: left alone


def test_a_superseded_member_is_skipped_and_the_batch_succeeds(tmp_path: Path) -> None:
    harness = _harness(tmp_path)
    harness.drop("a.txt", chat(1))
    replaced = harness.drop("b.txt", chat(2))
    (batch,) = harness.tick()
    replaced.write_bytes(chat(3))  # a new version arrives before the batch runs
    (single,) = harness.tick()
    assert BATCH_TAG not in single.tags and single.tags["cscoach/version"] == "2"

    result = harness.run(batch)

    assert result.success
    statuses = harness.status_by_key()
    assert statuses["incoming/a.txt"]["status"] == "succeeded"
    assert statuses["incoming/b.txt"]["status"] == "queued"  # left to the newer run
    assert harness.run(single).success
    assert harness.status_by_key()["incoming/b.txt"]["status"] == "succeeded"
    rows = harness.table("transcript_segments")
    b_id = statuses["incoming/b.txt"]["consultation_id"]
    assert "chat 3" in " ".join(rows[rows["consultation_id"] == b_id]["text"])


class _NullLog:
    def info(self, *_: object) -> None: ...
    def warning(self, *_: object) -> None: ...
