"""Steps on Celery workers (issue 9, point 2), under the real code server, daemon and
webserver: with CSCOACH_EXECUTOR=celery and a Redis broker on loopback, two real
`dagster-celery` workers, one for the `stt` queue and one for `analysis` plus the light
steps, run a recording and a chat to `succeeded`; each step ran on the worker of its queue
(their logs show the tasks), and nothing is left queued in the broker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cscoach_pipeline.shared_limits import redis_client
from tests.support.daemon import DagsterDeployment, deployment

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKER = "redis://127.0.0.1:6379/13"
CELERY_ENV = {"CSCOACH_EXECUTOR": "celery", "CSCOACH_CELERY_BROKER_URL": BROKER}
CHAT = (
    "Agent: Hello, Acme support, this is Sam. How can I help?\n"
    "Customer: My parcel is late.\nAgent: I am sorry, it arrives tomorrow.\n"
)


WORKERS: dict[Path, subprocess.Popen[bytes]] = {}  # by log file, for the kill test


@contextlib.contextmanager
def celery_worker(d: DagsterDeployment, name: str, queues: list[str]) -> Iterator[Path]:
    log = d.logs / f"worker-{name}.log"
    bin_dir = Path(sys.executable).parent
    command = [
        str(bin_dir / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
        "-y", str(REPO_ROOT / "deploy" / "celery.yaml"), "-n", f"{name}@%h",
        # One comma-joined -q: celery keeps only the last of repeated -Q options.
        "-q", ",".join(queues),
        "--", "--concurrency=1",
    ]  # fmt: skip
    env = {**d.env, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    with log.open("ab") as out:
        worker = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    WORKERS[log] = worker
    try:
        yield log
    finally:
        WORKERS.pop(log, None)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


@pytest.fixture
def broker() -> Iterator[Any]:
    """The Redis broker, emptied before and after the test."""
    try:
        client = redis_client(BROKER)
        client.flushdb()
    except Exception as exc:  # pragma: no cover - the CI starts Redis
        pytest.skip(f"no Redis on 127.0.0.1:6379 ({exc})")
    yield client
    client.flushdb()


def test_steps_run_on_the_workers_of_their_queues(
    request: pytest.FixtureRequest, tmp_path: Path, recordings: dict[str, Path], broker: Any
) -> None:
    with (
        deployment(request, tmp_path, env=CELERY_ENV) as d,
        celery_worker(d, "stt", ["stt"]) as stt_log,
        celery_worker(d, "analysis", ["analysis", "dagster"]) as other_log,
    ):
        d.drop("team-a/call.wav", recordings["good_stereo.wav"])
        d.drop("team-a/chat.txt", CHAT)
        keys = {d.source_key("team-a/call.wav"), d.source_key("team-a/chat.txt")}
        final = d.wait_for_final(keys, timeout=300)
        assert {row["status"] for row in final.values()} == {"succeeded"}, d.describe()
    stt, other = stt_log.read_text(), other_log.read_text()
    # Each worker ran the steps of its own queues, and only those.
    assert "raw_transcript" in stt and "consultation_audio" in stt
    assert "analyse_and_score" not in stt and "consultation_upload" not in stt
    assert "analyse_and_score" in other and "consultation_upload" in other
    assert "raw_transcript" not in other
    assert broker.llen("stt") == 0 and broker.llen("analysis") == 0


def _pool_children(worker: subprocess.Popen[bytes]) -> list[int]:
    """The worker's pool processes: `dagster-celery` starts `celery`, whose main process
    forks them (they may have helpers of their own, which are not the step)."""
    import psutil

    return [
        child.pid
        for celery_main in psutil.Process(worker.pid).children()
        for child in celery_main.children()
    ]


def test_a_worker_killed_mid_transcription_loses_nothing(
    request: pytest.FixtureRequest, tmp_path: Path, recordings: dict[str, Path], broker: Any
) -> None:
    with (
        deployment(request, tmp_path, env=CELERY_ENV) as d,
        celery_worker(d, "stt-a", ["stt"]) as log_a,
        celery_worker(d, "stt-b", ["stt"]) as log_b,
        celery_worker(d, "analysis", ["analysis", "dagster"]),
    ):
        d.drop("team-a/call.wav", recordings["good_stereo.wav"])
        key = d.source_key("team-a/call.wav")

        def transcribing() -> tuple[Path, subprocess.Popen[bytes]] | None:
            for log, worker in ((log_a, WORKERS[log_a]), (log_b, WORKERS[log_b])):
                if log.exists() and 'Started execution of step "raw_transcript"' in log.read_text():
                    return log, worker
            return None

        _, worker = d.wait_for(transcribing, 200, "a worker transcribing", interval=0.1)
        killed = _pool_children(worker)
        assert killed
        for pid in killed:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)  # the process running the step dies
        final = d.wait_for_final({key}, timeout=240)
        assert final[key]["status"] == "succeeded", d.describe()
        with d.engine.connect() as conn:
            from sqlalchemy import text

            analyses = conn.execute(text("SELECT count(*) FROM analyses")).scalar_one()
            segments = conn.execute(text("SELECT count(*) FROM transcript_segments")).scalar_one()
        assert analyses == 1 and segments > 0  # exactly once
        assert len(d.runs_for(final[key]["consultation_id"])) == 1  # no second run needed
    logs = log_a.read_text() + log_b.read_text()
    # Started twice (the killed attempt, then the redelivered task), finished once.
    assert logs.count('Started execution of step "raw_transcript"') == 2
    assert logs.count('Finished execution of step "raw_transcript"') == 1
