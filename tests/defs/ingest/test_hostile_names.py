"""Proves that no single object, however named, stops the bucket sensor, and that the inventory,
the partitions and the runs stay consistent when a tick fails halfway; on a real folder bucket
and a real Dagster instance.

A CP949/EUC-KR file name (as Korean Windows tools and zip archives write it) is decoded, run
and read back by the real job; a name that is neither UTF-8 nor CP949 is `rejected` with a
reason and never runs, while files beside it do; every status row holds valid UTF-8. An object
whose admission raises gets its own `failed` status and the others are admitted. Every run
requested carries its partition in the same result: a tick whose result was lost (the daemon
died after recording `queued`) is repaired on the next tick, and stale re-requests come with
their partition. A phone number in a file name never reaches a partition key, run tag, status
row or log line, while the inventory keeps the real key; a known object keeps its stored id.
A 250-byte file name (whose sidecar name exceeds NAME_MAX) processes end to end.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest
from dagster import SensorResult

from cscoach_pipeline.defs.ingest.storage import LocalFolderStore, StoredObject
from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.warehouse import tables
from tests.support.pipeline import PipelineHarness

CHAT = (
    "상담원: 안녕하세요, 무엇을 도와드릴까요?\n"
    "고객: 택배가 아직 안 왔어요.\n"
    "상담원: 확인해 드릴게요.\n"
)


def _drop_raw(harness: PipelineHarness, name: bytes, data: bytes) -> Path:
    """A file whose on-disk name is exactly these bytes, as an unzip on Linux leaves it."""
    path = Path(os.fsdecode(os.fsencode(harness.incoming) + b"/" + name))
    path.write_bytes(data)
    return path


def _partitions(harness: PipelineHarness) -> set[str]:
    return set(harness.instance.get_dynamic_partitions(consultation_partitions.name))


def _evaluate(harness: PipelineHarness, monkeypatch: pytest.MonkeyPatch) -> SensorResult:
    """One evaluation whose result is NOT applied: what the daemon leaves when it dies after
    the sensor body ran but before the partitions were added."""
    result, _context = harness.evaluate(settle_seconds=0)
    assert isinstance(result, SensorResult)
    return result


def _assert_runs_carry_partitions(result: SensorResult) -> None:
    added = {
        key
        for request in result.dynamic_partitions_requests or []
        for key in request.partition_keys
    }
    assert {r.partition_key for r in result.run_requests or []} <= added


def _assert_valid_text(harness: PipelineHarness) -> None:
    for table in (tables.consultation_status, tables.bucket_objects):
        for row in harness.warehouse.fetch_rows(table):
            for value in row.values():
                if isinstance(value, str):
                    value.encode("utf-8")  # raises on a surrogate, as PostgreSQL would refuse


# ------------------------------------------------------------------------ names on disk


def test_cp949_name_is_decoded_run_and_read_back(harness: PipelineHarness) -> None:
    _drop_raw(harness, "상담 기록.txt".encode("cp949"), CHAT.encode("utf-8"))
    harness.drop("fine.txt", b"Agent: Hello.\nCustomer: Hi, my parcel is late.\n")

    requests = harness.tick()

    assert sorted(r.tags["cscoach/source_key"] for r in requests) == [
        "incoming/fine.txt",
        "incoming/상담 기록.txt",
    ]
    korean = next(r for r in requests if "상담" in r.tags["cscoach/source_key"])
    assert korean.partition_key.startswith("상담-기록.txt-")
    assert korean.partition_key in _partitions(harness)
    # The real job opens the file through the decoded key.
    assert harness.run(korean).success
    status = harness.status_by_key()["incoming/상담 기록.txt"]
    assert (status["status"], status["error"]) == ("succeeded", None)
    _assert_valid_text(harness)
    assert harness.tick() == []  # stable: the decoded key is the same on every listing


def test_undecodable_name_is_rejected_and_others_still_run(harness: PipelineHarness) -> None:
    _drop_raw(harness, b"caf\xe9-\xff.txt", b"Agent: Hello.\nCustomer: Bonjour.\n")
    harness.drop("fine.txt", b"Agent: Hello.\nCustomer: Hi.\n")

    requests = harness.tick()

    assert [r.tags["cscoach/source_key"] for r in requests] == ["incoming/fine.txt"]
    statuses = harness.status_by_key()
    bad = statuses["incoming/caf\\xe9-\\xff.txt"]
    assert bad["status"] == "rejected"
    assert bad["error"] == "the file name is not valid UTF-8 or CP949/EUC-KR: rename the file"
    assert bad["consultation_id"] not in _partitions(harness)
    _assert_valid_text(harness)
    assert harness.tick() == []  # recorded once, not re-reported every tick


# ------------------------------------------------------------------ one object, one fault


def test_an_object_whose_admission_raises_fails_alone(
    harness: PipelineHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = LocalFolderStore.fingerprint

    def broken(self: LocalFolderStore, obj: StoredObject) -> str:
        if obj.key.endswith("poison.txt"):
            raise ValueError("unexpected shape\nwith a second line that must not show")
        return real(self, obj)

    monkeypatch.setattr(LocalFolderStore, "fingerprint", broken)
    for name in ("a.txt", "poison.txt", "z.txt"):
        harness.drop(name, b"Agent: Hello.\nCustomer: " + name.encode() + b"\n")

    requests = harness.tick()

    assert sorted(r.tags["cscoach/source_key"] for r in requests) == [
        "incoming/a.txt",
        "incoming/z.txt",
    ]
    status = harness.status_by_key()["incoming/poison.txt"]
    assert status["status"] == "failed"
    assert status["stage"] == "sensor"
    assert "could not admit this file (ValueError: unexpected shape)" in status["error"]
    assert "second line" not in status["error"]
    # Once the fault is gone, the object is admitted on the next tick.
    monkeypatch.setattr(LocalFolderStore, "fingerprint", real)
    assert [r.tags["cscoach/source_key"] for r in harness.tick()] == ["incoming/poison.txt"]
    assert harness.status_by_key()["incoming/poison.txt"]["status"] == "queued"


def test_a_lost_tick_result_is_repaired_on_the_next_tick(
    harness: PipelineHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness.drop("call.txt", b"Agent: Hello.\nCustomer: Hi.\n")
    # The tick recorded `queued`, then the daemon died: its result was never applied.
    lost = _evaluate(harness, monkeypatch)
    assert [r.tags["cscoach/source_key"] for r in lost.run_requests or []] == ["incoming/call.txt"]
    assert harness.status_by_key()["incoming/call.txt"]["status"] == "queued"
    assert _partitions(harness) == set()

    requests = harness.tick()  # fresh, nothing changed in the bucket

    assert [r.partition_key for r in requests] == [r.partition_key for r in lost.run_requests or []]
    assert requests[0].run_key == (lost.run_requests or [])[0].run_key  # the same run, once
    assert _partitions(harness) == {requests[0].partition_key}
    assert harness.tick() == []  # the partition exists now: not requested again
    assert harness.run(requests[0]).success


# --------------------------------------------------------------------------- PII in names


def test_phone_number_in_a_name_reaches_no_key_tag_status_or_log(
    harness: PipelineHarness, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    real_fingerprint = LocalFolderStore.fingerprint

    def flaky(self: LocalFolderStore, obj: StoredObject) -> str:
        if "8642" in obj.key:  # an unreadable one: its warning and status name it
            raise OSError(errno.EIO, "Input/output error", obj.key)
        return real_fingerprint(self, obj)

    monkeypatch.setattr(LocalFolderStore, "fingerprint", flaky)
    harness.drop("team-a/call-010-1234-5678.txt", b"Agent: Hello.\nCustomer: Hi.\n")
    harness.drop("team-a/call-010-9876-5432.txt", b"Agent: Hello.\nCustomer: Bye.\n")
    harness.drop("team-a/call-010-8642-9753.txt", b"Agent: Hello.\nCustomer: Hm.\n")
    harness.drop("team-a/call-010-5555-0000.pdf", b"%PDF-1.7")

    requests = harness.tick()
    log = capfd.readouterr().err  # Dagster's sensor log lines

    ids = sorted(r.partition_key for r in requests)
    assert len(set(ids)) == 2  # the hash of the real key keeps them apart
    assert all(i.startswith("team-a__call-PHONE.txt-") for i in ids)
    assert {r.tags["cscoach/source_key"] for r in requests} == {"incoming/team-a/call-[PHONE].txt"}
    statuses = harness.warehouse.fetch_rows(tables.consultation_status)
    assert sorted(row["status"] for row in statuses) == ["failed", "queued", "queued", "rejected"]
    assert "incoming/team-a/call-[PHONE].txt: the bucket could not read this file" in log
    shown = " ".join(ids) + str([r.tags for r in requests]) + str(statuses) + log
    for digits in ("1234", "5678", "9876", "5432", "8642", "9753", "5555"):
        # As a group of its own: a run id, a pid or a timing may hold the same digits.
        assert not re.search(rf"(?<![0-9a-f]){digits}(?![0-9a-f])", shown), digits
    # The internal inventory keeps the real key, which the steps open.
    real = {row["source_key"] for row in harness.warehouse.fetch_rows(tables.bucket_objects)}
    assert "incoming/team-a/call-010-1234-5678.txt" in real
    assert all(harness.run(r).success for r in requests)


def test_a_known_object_keeps_its_stored_id(harness: PipelineHarness) -> None:
    path = harness.drop("call-010-1234-5678.txt", b"Agent: Hello.\nCustomer: Hi.\n")
    harness.tick()
    # As if admitted under the earlier id rule (phone number in the id).
    legacy = "call-010-1234-5678.txt-0a1b2c3d"
    t = tables.bucket_objects
    with harness.warehouse.engine.begin() as conn:
        conn.execute(t.update().values(consultation_id=legacy))
    path.write_bytes(b"Agent: Hello again.\nCustomer: Hi.\n")
    os.utime(path, (path.stat().st_atime - 60, path.stat().st_mtime - 60))

    requests = harness.tick()

    assert [(r.partition_key, r.tags["cscoach/version"]) for r in requests] == [(legacy, "2")]


# ------------------------------------------------------------------------------ long names


def test_a_250_byte_name_processes_end_to_end(harness: PipelineHarness) -> None:
    name = "상" * 82 + ".txt"
    assert len(name.encode()) == 250  # + ".meta.json" is beyond NAME_MAX (255)
    harness.drop(name, CHAT.encode())

    requests = harness.tick()

    assert len(requests) == 1
    assert len(requests[0].partition_key.encode()) <= 255  # artifacts/<id>/ is a folder name
    assert harness.run(requests[0]).success
    assert harness.status_by_key()[f"incoming/{name}"]["status"] == "succeeded"
