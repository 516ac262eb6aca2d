"""The same end-to-end scenario on every bucket backend, through the real storage code: the
local folder, a real S3 server on loopback (moto, via boto3) and the Supabase Storage REST
double (via supabase-py). Consultations are found exactly once, context comes from object
metadata (or a sidecar on the folder), artifacts and the coaching report are written back to
the same backend under artifacts/, originals are untouched, bad input fails with a reason,
and deletions are noticed."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cscoach_pipeline.defs.warehouse import tables
from tests.support.backends import BucketBackend, LocalBackend, S3Backend, SupabaseBackend
from tests.support.fake_supabase_storage import FakeSupabaseStorage
from tests.support.pipeline import PipelineHarness
from tests.support.s3_server import fresh_bucket

pytestmark = pytest.mark.integration

CHAT = (
    b"Agent: Thank you for calling, how can I help you today?\n"
    b"Customer: I was charged twice, call me on 010-2222-3333.\n"
    b"Agent: I am sorry about that. I have issued a refund. Anything else? Have a great day.\n"
)
CONTEXT = {"agent_id": "A-7", "team": "cards", "call_direction": "inbound"}


@pytest.fixture(params=["local", "s3", "supabase"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[BucketBackend]:
    if request.param == "local":
        yield LocalBackend(tmp_path / "bucket")
    elif request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        yield S3Backend(fresh_bucket(endpoint, monkeypatch))
    else:
        with FakeSupabaseStorage() as fake:
            yield SupabaseBackend(fake)


def _drop_with_context(harness: PipelineHarness, relative: str, data: bytes) -> None:
    assert harness.backend is not None
    if isinstance(harness.backend, LocalBackend):
        harness.drop(relative, data)
        harness.drop(f"{relative}.meta.json", json.dumps(CONTEXT).encode())
    else:
        harness.drop(relative, data, metadata=CONTEXT)


def test_same_scenario_on_every_backend(
    backend: BucketBackend, tmp_path: Path, recordings: dict[str, Path]
) -> None:
    harness = PipelineHarness(root=tmp_path / "run", backend=backend)
    _drop_with_context(harness, "cards/call.wav", recordings["good_stereo.wav"].read_bytes())
    harness.drop("cards/chat.txt", CHAT)
    harness.drop("cards/broken.mp3", b"ID3" + os.urandom(3000))
    harness.drop("cards/brochure.pdf", b"%PDF-1.7")
    harness.drop("cards/upload.wav.part", b"half")
    originals = backend.digest("incoming/")

    results = harness.process()

    statuses = {k: (v["status"], v["error"]) for k, v in harness.status_by_key().items()}
    assert statuses["incoming/cards/call.wav"] == ("succeeded", None)
    assert statuses["incoming/cards/chat.txt"] == ("succeeded", None)
    assert statuses["incoming/cards/broken.mp3"][0] == "failed"
    assert "corrupt or unreadable media" in statuses["incoming/cards/broken.mp3"][1]
    assert statuses["incoming/cards/brochure.pdf"][0] == "rejected"
    assert "incoming/cards/upload.wav.part" not in statuses
    assert len(results) == 3  # the pdf gets no run

    consultations = harness.table("consultations").set_index("source_key")
    call = consultations.loc["incoming/cards/call.wav"]
    assert (call.agent_id, call.team, call.call_direction) == ("A-7", "cards", "inbound")
    assert call.report_location.startswith(
        {"local": "/", "s3": "s3://", "supabase": "supabase://"}[backend.name]
    )
    # Artifacts went back to the same backend, beside (never over) the originals.
    cid = call.consultation_id
    assert harness.artifact(cid, "report.md").startswith(b"# Coaching report")
    assert harness.artifact(cid, "audio.wav")[:4] == b"RIFF"
    raw = json.loads(harness.artifact(cid, "private/transcript.raw.json"))
    assert raw["segments"] and raw["engine"] == "faster-whisper"
    chat_id = consultations.loc["incoming/cards/chat.txt"].consultation_id
    assert "[PHONE]" in harness.artifact(chat_id, "transcript.json").decode()
    assert "010-2222-3333" not in harness.all_table_text()
    assert backend.digest("incoming/") == originals

    # Nothing new: a second tick requests nothing and re-hashes nothing.
    assert harness.tick() == []
    # A deleted object is noticed; its results stay queryable.
    backend.delete("incoming/cards/chat.txt")
    assert harness.tick() == []
    rows = harness.warehouse.fetch_rows(tables.bucket_objects, source_key="incoming/cards/chat.txt")
    assert rows[0]["state"] == "deleted"
    assert chat_id in set(harness.table("quality_metrics").consultation_id)


@pytest.mark.parametrize("remote", ["s3", "supabase"])
def test_a_listed_remote_object_is_complete_and_admitted_in_its_first_tick(
    remote: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 and Supabase list an upload only once it completed: no settle wait, no second look
    (the folder store's rule is proven in tests/defs/ingest/test_sensors.py)."""
    from cscoach_pipeline.defs.ingest import sensors

    pauses: list[float] = []
    monkeypatch.setattr(sensors, "_pause", pauses.append)

    def run(backend: BucketBackend) -> None:
        harness = PipelineHarness(root=tmp_path / "run", backend=backend)
        harness.settle_seconds = 3600
        harness.drop("fresh.txt", CHAT)

        requests = harness.tick()

        assert [r.tags["cscoach/source_key"] for r in requests] == ["incoming/fresh.txt"]
        assert pauses == []  # admitted without a second look

    if remote == "s3":
        run(S3Backend(fresh_bucket(request.getfixturevalue("s3_endpoint"), monkeypatch)))
    else:
        with FakeSupabaseStorage() as fake:
            run(SupabaseBackend(fake))
