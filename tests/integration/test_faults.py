"""Fault injection under the real Dagster processes (code server, `dagster-daemon run`,
`dagster-webserver`; tests/support/daemon.py), beside normal files. Each test proves that
every consultation reaches its final status with its true reason, that nothing runs twice
(one successful run per consultation version), that the originals are untouched, and that
no PII reaches a BI table, an artifact outside `private/`, anything Dagster stored under
DAGSTER_HOME (event log, run tags, metadata, tick logs) or, with Gemini, an LLM request:

- hostile names: a CP949 file name, an undecodable one, a 250-byte one and one holding a
  phone number, among normal files;
- `kill -9` of every process (daemon, webserver, code server, run workers) mid-
  transcription, then a restart: the dead run is failed and retried, exactly once;
- the warehouse unreachable: a PostgreSQL started by the test on its own port, stopped
  mid-run and restarted;
- a full disk: the bucket on a small tmpfs; no partial artifact is left; after space is
  freed an operator's re-queue finishes the work;
- a file replaced while its first version is transcribing: the newest version wins;
- split PII in a chat (one digit group per line) and in generated speech, with the real
  google-genai client talking to the fake Gemini server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import DagsterDeployment, deployment
from tests.support.fake_gemini import FakeGemini
from tests.support.leaks import digits, leaks, private_text
from tests.support.media_factory import Line, stereo_call

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]

# Recovery in seconds, not minutes: dead runs checked every 3 s, outages retried after 2 s
# (x4 per attempt), stale consultations recovered after 20 s, in-run retries after 1 s, 3 s.
FAST_RECOVERY = {
    "CSCOACH_RECOVERY_INTERVAL_S": "3",
    "CSCOACH_RETRY_BACKOFF_S": "2",
    "CSCOACH_STALE_AFTER_S": "20",
    "CSCOACH_STEP_RETRY_BASE_S": "1",
}
FINAL_TIMEOUT_S = 180

CHAT = (
    "Agent: Hello, thank you for calling Acme support, my name is Sarah. How can I help?\n"
    "Customer: Hi, my parcel has not arrived yet and I am a bit worried.\n"
    "Agent: I am sorry about that. I have checked it: it will arrive tomorrow.\n"
    "Customer: Great, thank you so much.\n"
)


def _chat(n: int) -> str:
    """Distinct chats (identical content would be rejected as a duplicate)."""
    return CHAT + f"Agent: Your reference is case {n} of today. Anything else?\n"


@pytest.fixture
def make_deployment(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[type[DagsterDeployment]]:
    opened: list = []

    def factory(**kwargs):  # type: ignore[no-untyped-def]
        env = {**FAST_RECOVERY, **kwargs.pop("env", {})}
        cm = deployment(request, kwargs.pop("root", tmp_path / "d"), env=env, **kwargs)
        d = cm.__enter__()
        opened.append(cm)
        return d

    yield factory  # type: ignore[misc]
    for cm in reversed(opened):
        cm.__exit__(None, None, None)


def _ids(d: DagsterDeployment, keys: list[str]) -> dict[str, str]:
    rows = d.statuses()
    return {key: rows[key]["consultation_id"] for key in keys}


def _assert_ran_once(d: DagsterDeployment, consultation_ids: list[str]) -> None:
    """One successful processing run per consultation and version, none left in flight
    (the last step writes the status a moment before its run ends: wait for the runs)."""
    d.wait_for_runs_finished(consultation_ids, 60)
    for cid in consultation_ids:
        runs = [r for r in d.runs_for(cid) if r.job_name == "process_consultation"]
        assert all(r.finished for r in runs), f"{cid}: a run is still in flight: {runs}"
        versions = [r.tags.get("cscoach/version") for r in runs if r.status == "SUCCESS"]
        assert len(versions) == len(set(versions)), f"{cid} ran twice: {runs}"


def _assert_no_leaks(d: DagsterDeployment, needles: list[str], extra: str = "") -> None:
    found = leaks(
        needles, engine=d.engine, bucket=d.bucket, dagster_home=d.dagster_home, extra=extra
    )
    assert found == {}, f"PII leaked: {found}"


def _write_raw(folder: Path, name: bytes, data: bytes) -> None:
    """A file whose name is raw bytes (not UTF-8), written in place then renamed."""
    directory = os.fsencode(folder)
    temporary = os.path.join(directory, b".upload-" + uuid.uuid4().hex.encode() + b".part")
    with open(temporary, "wb") as handle:
        handle.write(data)
    os.replace(temporary, os.path.join(directory, name))


# ----------------------------------------------------------------------- hostile names


def test_hostile_names_never_stop_the_pipeline(make_deployment) -> None:  # type: ignore[no-untyped-def]
    d = make_deployment()
    _write_raw(d.incoming, "상담기록-김민지.txt".encode("cp949"), _chat(1).encode())
    _write_raw(d.incoming, b"\x80\x81-export.txt", _chat(2).encode())
    long_name = "a" * 245 + ".txt"  # its sidecar name would exceed NAME_MAX
    d.drop(long_name, _chat(3))
    d.drop("call-010-1234-5678.txt", _chat(4))
    d.drop("normal.txt", _chat(5))

    cp949_key = "incoming/상담기록-김민지.txt"
    phone_key = "incoming/call-[PHONE].txt"
    expected = {cp949_key, f"incoming/{long_name}", phone_key, "incoming/normal.txt"}

    def undecodable_row() -> dict | None:
        rows = [r for r in d.statuses().values() if "export" in r["source_key"]]
        return rows[0] if rows and rows[0]["status"] == "rejected" else None

    rows = d.wait_for_final(expected, FINAL_TIMEOUT_S)
    assert {k: r["status"] for k, r in rows.items()} == dict.fromkeys(expected, "succeeded")
    bad = d.wait_for(undecodable_row, 30, "the undecodable name to be rejected")
    assert "not valid UTF-8 or CP949" in bad["error"]
    phone_id = rows[phone_key]["consultation_id"]
    assert "1234" not in phone_id and "5678" not in phone_id
    _assert_ran_once(d, [r["consultation_id"] for r in rows.values()])
    assert all(run.status == "SUCCESS" for run in d.runs())
    _assert_no_leaks(d, ["1234-5678", "010-1234", digits("01012345678")])
    assert d.originals_changed() == {}


# ------------------------------------------------------------------------------ crash


def test_everything_killed_mid_transcription_is_retried_once(  # type: ignore[no-untyped-def]
    make_deployment, long_call_wav: Path
) -> None:
    d = make_deployment()
    d.drop("calls/long-1.wav", long_call_wav)
    d.drop("chats/before.txt", _chat(1))
    key = "incoming/calls/long-1.wav"

    def transcribing() -> str | None:
        row = d.statuses().get(key)
        runs = d.runs_for(row["consultation_id"]) if row else []
        started = [r for r in runs if r.status == "STARTED"]
        if started and d.step_started(started[0].run_id, "raw_transcript"):
            return started[0].run_id
        return None

    killed_run = d.wait_for(transcribing, 90, "transcription to start")
    d.kill_all()
    assert d.processes() == {}
    assert d.instance.get_run_by_id(killed_run).status.value == "STARTED"

    d.restart()
    d.drop("chats/after.txt", _chat(2))
    keys = [key, "incoming/chats/before.txt", "incoming/chats/after.txt"]
    rows = d.wait_for_final(keys, FINAL_TIMEOUT_S)
    assert {k: r["status"] for k, r in rows.items()} == dict.fromkeys(keys, "succeeded")
    dead = d.instance.get_run_by_id(killed_run)
    assert dead.status.value == "FAILURE"
    assert any("is gone" in m for m in d.run_messages(killed_run))
    assert rows[key]["attempt"] == 2, "the killed attempt was retried once"
    _assert_ran_once(d, list(_ids(d, keys).values()))
    assert d.originals_changed() == {}


# ------------------------------------------------------------------- warehouse outage


class OwnPostgres:
    """A PostgreSQL cluster of the test's own on a free port, stopped and started at will."""

    def __init__(self, port: int) -> None:
        versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not versions:
            pytest.skip("needs PostgreSQL server binaries (make setup-test installs them)")
        self.bin = versions[-1].parent
        # Not under pytest's tmp_path (mode 0700, root's): the cluster's owner must reach it.
        self.root, self.port = Path(tempfile.mkdtemp(prefix="cscoach-pg-")), port
        self.data = self.root / "data"
        if os.geteuid() == 0:  # initdb refuses root: run the cluster as postgres
            shutil.chown(self.root, "postgres")
        self._as_owner([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                        "-U", "postgres"])  # fmt: skip

    def _as_owner(self, cmd: list[str]) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + cmd, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        self._as_owner([
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "-w", "start",
        ])  # fmt: skip

    def stop(self) -> None:
        # Immediate: like a crash, connections drop at once.
        self._as_owner([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                        "-w", "stop"])  # fmt: skip

    def remove(self) -> None:
        subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            user="postgres" if os.geteuid() == 0 else None,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def test_warehouse_outage_mid_run_is_retried_to_success(  # type: ignore[no-untyped-def]
    make_deployment, tmp_path: Path, short_call_wav: Path
) -> None:
    from tests.support.daemon import free_port

    pg = OwnPostgres(free_port())
    pg.start()
    try:
        d = make_deployment(warehouse_url=pg.url)
        names = [f"chats/{n}.txt" for n in range(3)]
        for n, name in enumerate(names):
            d.drop(name, _chat(n))
        d.drop("calls/short.wav", short_call_wav)
        keys = [f"incoming/{n}" for n in [*names, "calls/short.wav"]]

        d.wait_for(lambda: any(r.status == "STARTED" for r in d.runs()), 90, "a run to start")
        pg.stop()
        down = time.monotonic()
        d.engine.dispose()
        time.sleep(25)  # longer than the in-run retries (1 s + 3 s): runs fail as outages
        pg.start()
        outage_s = time.monotonic() - down

        rows = d.wait_for_final(keys, FINAL_TIMEOUT_S)
        assert {k: r["status"] for k, r in rows.items()} == dict.fromkeys(keys, "succeeded"), rows
        failed = [r for r in d.runs() if r.status == "FAILURE"]
        assert failed, f"no run noticed the {outage_s:.0f} s outage"
        reasons = " ".join(m for r in failed for m in d.run_messages(r.run_id))
        assert "warehouse was unavailable" in reasons or "is gone" in reasons
        _assert_ran_once(d, list(_ids(d, keys).values()))
        assert d.originals_changed() == {}
    finally:
        pg.remove()


# -------------------------------------------------------------------------- full disk


def _mount_tmpfs(path: Path, size_kb: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
        capture_output=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")


def test_full_disk_fails_clearly_leaves_no_partial_file_and_requeue_finishes(  # type: ignore[no-untyped-def]
    make_deployment, tmp_path: Path, short_call_wav: Path
) -> None:
    bucket = tmp_path / "disk"
    # Room for the originals and small artifacts, not for the 16 kHz audio artifact.
    size_kb = short_call_wav.stat().st_size // 1024 + 160
    _mount_tmpfs(bucket, size_kb)
    try:
        d = make_deployment(
            env={"CSCOACH_BUCKET_URL": bucket.as_uri(), "CSCOACH_MAX_ATTEMPTS": "2"}
        )
        incoming = bucket / "incoming"
        incoming.mkdir()
        for name, data in (
            ("call.wav", short_call_wav.read_bytes()),
            ("chat.txt", _chat(1).encode()),
        ):
            partial = incoming / f".{name}.part"
            partial.write_bytes(data)
            partial.rename(incoming / name)
        call, chat = "incoming/call.wav", "incoming/chat.txt"

        def gave_up() -> dict | None:
            row = d.statuses().get(call)
            return row if row and "gave up" in (row["error"] or "") else None

        row = d.wait_for(gave_up, FINAL_TIMEOUT_S, "the full disk to exhaust the retries")
        assert row["status"] == "failed" and row["failure_kind"] == "outage"
        assert "no space left" in row["error"] and "gave up after 2 attempts" in row["error"]
        assert not [p for p in bucket.rglob("*") if p.name.startswith(".tmp-")], "partial file"
        assert d.wait_for_final([chat], 60)[chat]["status"] == "succeeded"

        # The operator frees space and re-queues the failed ones.
        subprocess.run(["mount", "-o", "remount,size=65536k", str(bucket)], check=True)
        env = {**os.environ, "CSCOACH_WAREHOUSE_URL": d.warehouse_url}
        done = subprocess.run(
            [sys.executable, "-m", "cscoach_pipeline.requeue", "--status", "failed"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "re-queued 1 consultations" in done.stdout
        d.wait_for(lambda: d.statuses()[call]["status"] == "succeeded", FINAL_TIMEOUT_S, "re-queue")
        _assert_ran_once(d, list(_ids(d, [call, chat]).values()))
    finally:
        subprocess.run(["umount", "-l", str(bucket)], capture_output=True)


# -------------------------------------------------------------- replaced mid-run


def test_file_replaced_mid_transcription_newest_version_wins(  # type: ignore[no-untyped-def]
    make_deployment, long_call_wav: Path, short_call_wav: Path
) -> None:
    d = make_deployment()
    d.drop("calls/call.wav", long_call_wav)
    key = "incoming/calls/call.wav"

    def transcribing() -> str | None:
        row = d.statuses().get(key)
        for run in d.runs_for(row["consultation_id"]) if row else []:
            if run.status == "STARTED" and d.step_started(run.run_id, "raw_transcript"):
                return run.run_id
        return None

    first_run = d.wait_for(transcribing, 90, "the first version to transcribe")
    d.drop("calls/call.wav", short_call_wav)
    new_sha = d.dropped[key]

    def newest_done() -> dict | None:
        row = d.statuses().get(key)
        runs = d.runs_for(row["consultation_id"]) if row else []
        v2 = [r for r in runs if r.tags.get("cscoach/version") == "2" and r.finished]
        return row if v2 and row["status"] == "succeeded" else None

    d.wait_for(newest_done, FINAL_TIMEOUT_S, "version 2 to finish")
    d.wait_for(lambda: d.instance.get_run_by_id(first_run).is_finished, 60, "version 1 run")
    with d.engine.connect() as conn:
        from sqlalchemy import text

        (row,) = conn.execute(text("SELECT * FROM consultations")).mappings().all()
        segments = conn.execute(text("SELECT text FROM transcript_segments")).scalars().all()
    assert row["version"] == 2 and row["content_sha256"] == new_sha
    assert row["duration_s"] < 20, "the duration is the short second version's"
    spoken = " ".join(segments).lower()
    assert "order status" in spoken and "credit card" not in spoken
    _assert_ran_once(d, [row["consultation_id"]])


# ------------------------------------------------------------------------- split PII

CARD_CHAT = (
    "Agent: Thank you for calling Acme, how can I help you today?\n"
    "Customer: I want to pay with my card, the number is\n"
    "Customer: 4111\n"
    "Customer: 1111\n"
    "Customer: 1111\n"
    "Customer: 1111\n"
    "Agent: Thank you. And a phone number to reach you?\n"
    "Customer: 010\n"
    "Customer: 4321\n"
    "Customer: 8765\n"
    "Agent: Thank you, the payment is done. Have a great day.\n"
)
DICTATED_CARD = [
    Line("agent", "Thank you for calling Acme. How can I help you today?"),
    Line("customer", "I would like to pay by card. My card number is 4 1 1 1."),
    Line("customer", "1 1 1 1."),
    Line("customer", "1 1 1 1."),
    Line("customer", "1 1 1 1."),
    Line("agent", "Thank you, the payment is complete. Have a great day."),
]


@pytest.fixture(scope="module")
def dictated_card_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return stereo_call(tmp_path_factory.mktemp("dictated-card"), "dictated_card", DICTATED_CARD)


def test_split_pii_never_leaves_the_private_transcript(  # type: ignore[no-untyped-def]
    make_deployment, dictated_card_wav: Path
) -> None:
    with FakeGemini(api_key="test-gemini-key") as fake:
        d = make_deployment(
            env={"GEMINI_API_KEY": "test-gemini-key", "GOOGLE_GEMINI_BASE_URL": fake.url}
        )
        d.drop("chats/card.txt", CARD_CHAT)
        d.drop("calls/card.wav", dictated_card_wav)
        keys = ["incoming/chats/card.txt", "incoming/calls/card.wav"]
        rows = d.wait_for_final(keys, FINAL_TIMEOUT_S)
        assert {k: r["status"] for k, r in rows.items()} == dict.fromkeys(keys, "succeeded")
        analysed = [r for r in fake.requests if "generateContent" in r.path]
        assert len(analysed) >= 2, "both consultations were analysed by Gemini"
        raw = private_text(d.bucket)
        assert "4111" in raw and "8765" in raw, "the raw transcript keeps what was said"
        needles = [digits("4111"), digits("4321"), digits("8765"), "1111 1111", "4 1 1 1"]
        _assert_no_leaks(d, needles, extra=fake.bodies_text())
        _assert_ran_once(d, [r["consultation_id"] for r in rows.values()])
