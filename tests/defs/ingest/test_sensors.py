"""Proves the bucket sensor's contract on a real folder bucket and a real Dagster instance:
one partition and one run per new consultation, stable safe partition keys, partial uploads
and files still being written wait (a new file whose size and mtime hold for the tick's
second look is admitted in that tick; an empty one waits a tick), unsupported files are
rejected with a reason and no run, identical content is never processed twice, changed
content is a new version, deletions are noticed, and the cursor stays small. No
speech-to-text runs here."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from cscoach_pipeline.defs.ingest.sensors import cursor_key
from cscoach_pipeline.defs.ingest.storage import LocalFolderStore, StorageError
from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.warehouse import tables
from tests.support.pipeline import PipelineHarness

CHAT = b"Agent: Hello, how can I help?\nCustomer: My parcel is late.\n"


def test_new_files_get_one_partition_and_one_run_each(harness: PipelineHarness) -> None:
    harness.drop("team-a/agent 7/call, first.txt", CHAT)
    harness.drop("team-b/chat.json", b'[{"role": "user", "text": "hi"}]')

    requests = harness.tick()

    keys = sorted(r.partition_key for r in requests)
    assert len(keys) == 2
    assert sorted(harness.instance.get_dynamic_partitions(consultation_partitions.name)) == keys
    for key in keys:
        assert "," not in key and "/" not in key and " " not in key
    assert any(k.startswith("team-a__agent-7__call-first.txt-") for k in keys)
    assert {r.tags["cscoach/source_key"] for r in requests} == {
        "incoming/team-a/agent 7/call, first.txt",
        "incoming/team-b/chat.json",
    }
    statuses = harness.status_by_key()
    assert {s["status"] for s in statuses.values()} == {"queued"}
    # A second tick with nothing new requests nothing.
    assert harness.tick() == []


def test_partition_key_is_stable_across_instances(harness: PipelineHarness, tmp_path) -> None:
    harness.drop("x/y.txt", CHAT)
    first = harness.tick()[0].partition_key
    other = PipelineHarness(root=tmp_path / "other")
    other.drop("x/y.txt", b"different content, same key")
    assert other.tick()[0].partition_key == first


def test_partial_uploads_and_hidden_files_are_ignored(harness: PipelineHarness) -> None:
    for name in ("a.wav.part", "b.mp4.crdownload", "c.txt.tmp", ".hidden.txt", ".sync/d.txt"):
        harness.drop(name, CHAT)
    harness.drop("call.txt.meta.json", b"{}")
    assert harness.tick() == []
    assert harness.table("consultation_status").empty


def test_unsupported_type_is_rejected_with_reason_and_no_run(harness: PipelineHarness) -> None:
    harness.drop("docs/manual.pdf", b"%PDF-1.7 ...")
    assert harness.tick() == []
    status = harness.status_by_key()["incoming/docs/manual.pdf"]
    assert status["status"] == "rejected"
    assert "unsupported file type '.pdf'" in status["error"]
    assert harness.instance.get_dynamic_partitions(consultation_partitions.name) == []


def test_file_still_being_written_waits_until_it_settles(harness: PipelineHarness) -> None:
    harness.settle_seconds = 3600
    path = harness.drop("growing.txt", CHAT)
    stop = threading.Event()

    def keep_writing() -> None:  # a slow copy: a line every 0.2 s
        while not stop.wait(0.2):
            with path.open("ab") as handle:
                handle.write(b"Agent: one more line\n")

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        assert harness.tick() == []  # it changed during the tick's second look: wait
        assert harness.tick() == []  # and again
    finally:
        stop.set()
        writer.join()
    # The copy is done: size and mtime hold for the tick's second look, admitted at once.
    requests = harness.tick()
    assert [r.tags["cscoach/source_key"] for r in requests] == ["incoming/growing.txt"]


def test_a_complete_new_file_is_admitted_in_its_first_tick(harness: PipelineHarness) -> None:
    harness.settle_seconds = 3600
    harness.drop("done.txt", CHAT)

    requests = harness.tick()

    assert [r.tags["cscoach/source_key"] for r in requests] == ["incoming/done.txt"]


def test_without_the_second_look_a_new_file_waits_a_tick(harness: PipelineHarness) -> None:
    harness.settle_seconds = 3600
    harness.drop("done.txt", CHAT)
    harness.drop("empty.txt", b"")  # an empty file may be a copy not started: never early

    assert harness.tick(settle_recheck_s=0) == []  # first sight: wait
    requests = harness.tick(settle_recheck_s=0)  # unchanged for a whole tick: settled
    assert sorted(r.tags["cscoach/source_key"] for r in requests) == [
        "incoming/done.txt", "incoming/empty.txt",
    ]  # fmt: skip


def test_an_empty_new_file_waits_a_tick_even_with_the_second_look(
    harness: PipelineHarness,
) -> None:
    harness.settle_seconds = 3600
    harness.drop("empty.txt", b"")

    assert harness.tick() == []
    assert len(harness.tick()) == 1  # then it fails in its run as empty, with its reason


def test_identical_content_is_not_processed_twice(harness: PipelineHarness) -> None:
    path = harness.drop("call.txt", CHAT)
    assert len(harness.tick()) == 1
    # Re-dropped (same bytes, new mtime) under the same key: nothing to do.
    path.write_bytes(CHAT)
    os.utime(path, (time.time() - 50, time.time() - 50))
    assert harness.tick() == []
    # The same content under another key is a duplicate, rejected with a pointer.
    harness.drop("copy/call-again.txt", CHAT)
    assert harness.tick() == []
    status = harness.status_by_key()["incoming/copy/call-again.txt"]
    assert status["status"] == "rejected"
    assert status["error"].startswith("duplicate of consultation call.txt-")


def test_changed_content_is_a_new_version_run_again(harness: PipelineHarness) -> None:
    path = harness.drop("call.txt", CHAT)
    first = harness.tick()[0]
    path.write_bytes(CHAT + b"Agent: Anything else?\n")
    os.utime(path, (time.time() - 50, time.time() - 50))
    second = harness.tick()
    assert len(second) == 1
    assert second[0].partition_key == first.partition_key
    assert second[0].run_key != first.run_key
    assert second[0].tags["cscoach/version"] == "2"
    # Back to the first content: still a new version, so it runs again.
    path.write_bytes(CHAT)
    os.utime(path, (time.time() - 40, time.time() - 40))
    third = harness.tick()
    assert third[0].tags["cscoach/version"] == "3"


def test_deleted_objects_are_noticed_and_a_reupload_is_new(harness: PipelineHarness) -> None:
    path = harness.drop("call.txt", CHAT)
    harness.tick()
    path.unlink()
    assert harness.tick() == []
    rows = harness.warehouse.fetch_rows(tables.bucket_objects, source_key="incoming/call.txt")
    assert rows[0]["state"] == "deleted"
    harness.drop("call.txt", CHAT)
    again = harness.tick()
    assert len(again) == 1 and again[0].tags["cscoach/version"] == "2"


def test_cursor_stays_small_with_many_objects(harness: PipelineHarness) -> None:
    for index in range(300):
        harness.drop(f"bulk/{index:04d}.txt", CHAT + str(index).encode())
    requests = harness.tick()
    assert len(requests) == 200  # CSCOACH_MAX_RUNS_PER_TICK default: the rest wait
    assert len(harness.tick()) == 100
    assert harness.tick() == []
    assert len(harness.cursor or "") < 200
    assert json.loads(harness.cursor or "{}") in ({}, {"pending": {}})


def test_unreadable_file_is_reported_and_retried_without_stopping_others(
    harness: PipelineHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fault injection at the storage interface: the read fails the way a flaky disk or an
    # S3 5xx does (root reads every local file, so permissions cannot produce it here).
    real_sha256 = LocalFolderStore.sha256

    def flaky_sha256(self: LocalFolderStore, key: str) -> str:
        if key.endswith("blocked.txt"):
            raise StorageError("I/O error reading the object")
        return real_sha256(self, key)

    monkeypatch.setattr(LocalFolderStore, "sha256", flaky_sha256)
    harness.drop("blocked.txt", CHAT + b"x")
    harness.drop("fine.txt", CHAT)
    requests = harness.tick()
    assert [r.tags["cscoach/source_key"] for r in requests] == ["incoming/fine.txt"]
    status = harness.status_by_key()["incoming/blocked.txt"]
    assert status["status"] == "failed"
    assert "could not read this file (I/O error reading the object)" in status["error"]
    assert cursor_key("incoming/blocked.txt") in json.loads(harness.cursor or "{}")["pending"]
    assert "blocked" not in (harness.cursor or "")  # keys never sit in the cursor
    # Once the store recovers, the file is admitted on the next tick.
    monkeypatch.setattr(LocalFolderStore, "sha256", real_sha256)
    retried = harness.tick()
    assert [r.tags["cscoach/source_key"] for r in retried] == ["incoming/blocked.txt"]
    assert harness.status_by_key()["incoming/blocked.txt"]["status"] == "queued"


def test_daemon_restart_with_a_fresh_cursor_requests_nothing_twice(
    harness: PipelineHarness,
) -> None:
    # Equal timestamps, keys not in time order: nothing relies on a time high-water mark.
    stamp = time.time() - 120
    for name in ("zz-last.txt", "aa-first.txt", "mm-middle.txt"):
        os.utime(harness.drop(name, CHAT + name.encode()), (stamp, stamp))
    assert len(harness.tick()) == 3
    # A restarted daemon: cursor lost; same Dagster storage, bucket and warehouse.
    restarted = PipelineHarness(root=harness.root, warehouse_url=harness.warehouse_url)
    restarted.instance = harness.instance
    assert restarted.tick() == []
    late = restarted.drop("aa-0-late.txt", CHAT + b"late")
    os.utime(late, (stamp - 3600, stamp - 3600))  # finished late, but with an old mtime
    assert [r.tags["cscoach/source_key"] for r in restarted.tick()] == ["incoming/aa-0-late.txt"]


def test_listing_that_outlasts_its_budget_resumes_on_the_next_tick(
    harness: PipelineHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A zero listing budget makes every tick list one consultation (plus its sidecar), as a
    # huge bucket would on a slow store: coverage continues across ticks, in key order.
    for name in ("a.txt", "b.txt", "c.txt"):
        harness.drop(name, CHAT + name.encode())
    harness.drop("b.txt.meta.json", b'{"agent_id": "A-1"}')
    seen = []
    for _ in range(3):
        seen += [r.tags["cscoach/source_key"] for r in harness.tick(list_budget_s=0)]
    assert seen == ["incoming/a.txt", "incoming/b.txt", "incoming/c.txt"]
    assert "resume" not in json.loads(harness.cursor or "{}")  # the pass completed
    # b's sidecar was listed with b: its token carries the sidecar, so no spurious re-run.
    rows = harness.warehouse.fetch_rows(tables.bucket_objects, source_key="incoming/b.txt")
    assert "|meta:" in rows[0]["version_token"]
    # Deletions are detected within the range each partial pass covered.
    (harness.incoming / "a.txt").unlink()
    for _ in range(3):
        assert harness.tick() == []
    states = {
        r["source_key"]: r["state"] for r in harness.warehouse.fetch_rows(tables.bucket_objects)
    }
    assert states == {
        "incoming/a.txt": "deleted",
        "incoming/b.txt": "active",
        "incoming/c.txt": "active",
    }
