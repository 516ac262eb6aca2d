"""Steps on Celery workers (issue 9, points 2 and 3), under the real code server, daemon
and webserver, with real `dagster-celery` workers:

- Redis broker, one worker for the `stt` queue and one for `analysis` plus the light steps:
  a recording and a chat reach `succeeded`, each step ran on the worker of its queue (their
  logs show the tasks), and nothing is left queued in the broker;
- the process running a transcription SIGKILLed: the step is delivered again, and the
  consultation succeeds once, in one run;
- the production set-up (Dagster's storage and the warehouse on PostgreSQL, RabbitMQ broker,
  two `stt` workers and one for the other queues): a batch of recordings and chats, one
  worker killed whole with SIGKILL while it transcribes, then the daemon killed and restarted: every
  consultation succeeds exactly once (one run, one analysis row), nothing stays queued.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import text

from cscoach_pipeline.shared_limits import redis_client
from tests.support.celery import start_worker, stop_worker
from tests.support.daemon import DagsterDeployment, deployment
from tests.support.postgres import temporary_database

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

REPO_ROOT = Path(__file__).resolve().parents[2]
BROKER = "redis://127.0.0.1:6379/13"
CELERY_ENV = {"CSCOACH_EXECUTOR": "celery", "CSCOACH_CELERY_BROKER_URL": BROKER}
AMQP_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
QUEUES = ("stt", "analysis", "dagster")
POSTGRES_STORAGE = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.postgres.yaml").read_text())
CHAT = (
    "Agent: Hello, Acme support, this is Sam. How can I help?\n"
    "Customer: My parcel is late.\nAgent: I am sorry, it arrives tomorrow.\n"
)


WORKERS: dict[Path, subprocess.Popen[bytes]] = {}  # by log file, for the kill test


@contextlib.contextmanager
def celery_worker(d: DagsterDeployment, name: str, queues: list[str]) -> Iterator[Path]:
    log, worker = start_worker(d, name, queues)
    WORKERS[log] = worker
    try:
        yield log
    finally:
        WORKERS.pop(log, None)
        stop_worker(worker)


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
        d.drop("team-a/call-2.wav", recordings["good_mono.wav"])
        names = ("team-a/call.wav", "team-a/chat.txt", "team-a/call-2.wav")
        keys = {d.source_key(name) for name in names}
        final = d.wait_for_final(keys, timeout=300)
        assert {row["status"] for row in final.values()} == {"succeeded"}, d.describe()
        transcribed = _raw_transcript_metadata(d)
    # The long-lived worker loaded the model for the first recording and kept it for the
    # second; its one pool process got all the cores' threads.
    assert sorted(m["model_reused"] for m in transcribed) == [False, True]
    assert {m["cpu_threads"] for m in transcribed} == {len(os.sched_getaffinity(0))}
    stt, other = stt_log.read_text(), other_log.read_text()
    # Each worker ran the steps of its own queues, and only those.
    assert "raw_transcript" in stt and "consultation_audio" in stt
    assert "analyse_and_score" not in stt and "consultation_upload" not in stt
    assert "analyse_and_score" in other and "consultation_upload" in other
    assert "raw_transcript" not in other
    # kombu keeps one Redis list per queue and priority (dagster-celery sends priority 5,
    # e.g. "stt\x06\x163"): every one of them is empty.
    lists = [k for q in QUEUES for k in broker.scan_iter(f"{q}*") if broker.type(k) == b"list"]
    assert all(broker.llen(key) == 0 for key in lists)


def _raw_transcript_metadata(d: DagsterDeployment) -> list[dict[str, Any]]:
    """The metadata of every speech `raw_transcript` materialization (chats have none)."""
    from dagster import AssetKey, DagsterEventType, EventRecordsFilter

    records = d.instance.get_event_records(
        EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION, AssetKey("raw_transcript"))
    )
    found = []
    for record in records:
        materialization = record.event_log_entry.asset_materialization
        metadata = {
            k: v.value for k, v in (materialization.metadata if materialization else {}).items()
        }
        if metadata.get("source") == "stt":
            found.append(metadata)
    return found


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
            analyses = conn.execute(text("SELECT count(*) FROM analyses")).scalar_one()
            segments = conn.execute(text("SELECT count(*) FROM transcript_segments")).scalar_one()
        assert analyses == 1 and segments > 0  # exactly once
        assert len(d.runs_for(final[key]["consultation_id"])) == 1  # no second run needed
    logs = log_a.read_text() + log_b.read_text()
    # Started twice (the killed attempt, then the redelivered task), finished once.
    assert logs.count('Started execution of step "raw_transcript"') == 2
    assert logs.count('Finished execution of step "raw_transcript"') == 1


@pytest.fixture
def rabbitmq() -> Iterator[None]:
    """RabbitMQ on loopback, the three step queues emptied before and after the test."""
    from kombu import Connection

    def purge() -> None:
        from amqp.exceptions import NotFound

        with Connection(AMQP_BROKER, connect_timeout=5) as conn:
            for queue in QUEUES:
                # A queue never declared has nothing to purge (the error closes that channel).
                with contextlib.suppress(NotFound):
                    conn.channel().queue_purge(queue)

    try:
        purge()
    except Exception as exc:  # pragma: no cover - the CI starts RabbitMQ
        pytest.skip(f"no RabbitMQ on 127.0.0.1:5672 ({exc})")
    yield
    purge()


def _in_flight(log: str, step: str) -> bool:
    """The worker has started the step more often than it finished it."""
    started = log.count(f'Started execution of step "{step}"')
    return started > log.count(f'Finished execution of step "{step}"')


def _queued(queue: str) -> int:
    from amqp.exceptions import NotFound
    from kombu import Connection

    with Connection(AMQP_BROKER, connect_timeout=5) as conn:
        try:
            return conn.channel().queue_declare(queue, passive=True).message_count
        except NotFound:
            return 0  # never declared: nothing was ever sent to it


def test_a_production_deployment_loses_nothing_when_a_worker_and_the_daemon_die(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    recordings: dict[str, Path],
    short_call_wav: Path,
    rabbitmq: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = {  # different content each: identical files are rejected as duplicates
        "team-a/call.wav": recordings["good_stereo.wav"],
        "team-a/short-call.wav": short_call_wav,
        "team-b/call.mp4": recordings["bad_stereo.mp4"],
    }
    chats = {"team-a/chat-1.txt": CHAT, "team-b/chat-2.txt": CHAT.replace("Sam", "Kim")}
    with temporary_database() as dagster_db, temporary_database() as warehouse_db:
        monkeypatch.setenv("DAGSTER_PG_URL", dagster_db)  # the test's own view of the instance
        env = {
            "CSCOACH_EXECUTOR": "celery",
            "CSCOACH_CELERY_BROKER_URL": AMQP_BROKER,
            "DAGSTER_PG_URL": dagster_db,
        }
        with (
            deployment(
                request, tmp_path, env=env, warehouse_url=warehouse_db,
                instance_overrides=POSTGRES_STORAGE,
            ) as d,
            celery_worker(d, "stt-a", ["stt"]) as log_a,
            celery_worker(d, "stt-b", ["stt"]) as log_b,
            celery_worker(d, "light", ["analysis", "dagster"]),
        ):  # fmt: skip
            for name, data in {**calls, **chats}.items():
                d.drop(name, data)
            keys = {d.source_key(name) for name in {**calls, **chats}}

            def transcribing() -> tuple[Path, Path] | None:
                for log, other in ((log_a, log_b), (log_b, log_a)):
                    if _in_flight(log.read_text(), "raw_transcript"):
                        return log, other
                return None

            killed_log, other_log = d.wait_for(transcribing, 240, "a worker transcribing", 0.1)
            os.killpg(WORKERS[killed_log].pid, signal.SIGKILL)  # the whole worker, at once
            d.kill_daemon()
            time.sleep(2)
            d.restart(("daemon",))

            final = d.wait_for_final(keys, timeout=400)
            assert {row["status"] for row in final.values()} == {"succeeded"}, d.describe()
            ids = [row["consultation_id"] for row in final.values()]
            runs = d.wait_for_runs_finished(ids, timeout=60)
            with d.engine.connect() as conn:
                analysed = conn.execute(
                    text("SELECT consultation_id, count(*) FROM analyses GROUP BY consultation_id")
                ).all()
            assert sorted(analysed) == sorted((i, 1) for i in ids)  # exactly once each
            assert sorted(run.partition for run in runs) == sorted(ids)  # one run each
            assert {run.status for run in runs} == {"SUCCESS"}
            assert all(_queued(queue) == 0 for queue in QUEUES)
    # The killed worker's transcription finished on the other worker, once per consultation
    # (a chat's transcript is a `raw_transcript` step too).
    # The killed worker's log ends inside a transcription, and the other finished it.
    assert _in_flight(killed_log.read_text(), "raw_transcript")
    finished = sum(
        log.read_text().count('Finished execution of step "raw_transcript"')
        for log in (killed_log, other_log)
    )
    assert finished == len(calls) + len(chats)
