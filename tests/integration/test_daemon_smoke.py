"""Smoke tests of the pipeline under the real Dagster processes (tests/support/daemon.py).

What they prove, with nothing executed in-process: a code server (`dagster api grpc`), the
real `dagster-daemon run` and `dagster-webserver`, on a temporary DAGSTER_HOME built from the
repo's dagster.yaml, a folder bucket and a SQLite warehouse:

1. the sensors start by themselves (DefaultSensorStatus.RUNNING); a chat and a spoken
   recording dropped into `incoming/` each get one dynamic partition and one run, launched
   by the daemon's run queue, which ends SUCCESS with `succeeded` in `consultation_status`;
   the originals are not modified;
2. `kill -9` of the daemon alone while a run is in progress does not lose that run (its
   worker belongs to the code server and finishes it), and a restarted daemon picks up a
   newly dropped file;
(Killing everything, outages and hostile files: tests/integration/test_faults.py.)

Each test starts its own deployment on free loopback ports and stops every process it
started, even when it fails (the logs' tails are then printed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import DagsterDeployment, RunInfo, deployment

pytestmark = [pytest.mark.integration, pytest.mark.timeout(170)]

CHAT = (
    "Agent: Hello, thank you for calling Acme support, my name is Sarah. How can I help?\n"
    "Customer: Hi, my parcel has not arrived yet and I am a bit worried.\n"
    "Agent: I am sorry about that. I have checked it: it will arrive tomorrow.\n"
    "Customer: Great, thank you so much.\n"
)
CHAT_AFTER_RESTART = (
    "Agent: Good morning, you are through to Acme billing. How can I help you today?\n"
    "Customer: I was charged twice for my last order.\n"
    "Agent: I understand, I have refunded the second charge. Anything else?\n"
    "Customer: No, that is all, thanks.\n"
)

# Bounds. Drop -> final status takes ~15-25 s here (5 s sensor loop, settle, 5 s run-queue
# loop, run-worker start-up, ~1-6 s of work); the bounds leave room for a slow CI machine.
FINAL_TIMEOUT_S = 100
WORKER_TIMEOUT_S = 60
# After the restart: how long a run whose worker was killed may stay STARTED, and how much
# longer its consultation may take to reach a final status (a retry, or a failure with reason).
DEAD_RUN_BOUND_S = 45
SETTLE_BOUND_S = 45


class StrandedRunError(AssertionError):
    """A run or consultation left in flight forever by a crash (issue 7, "A crash strands
    runs"). The xfail below accepts only this error, so harness failures still fail."""


@pytest.fixture
def dagster_deployment(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[DagsterDeployment]:
    env = getattr(request, "param", None) or {}
    with deployment(request, tmp_path, env=env) as d:
        yield d


def _consultation_ids(d: DagsterDeployment, keys: list[str]) -> dict[str, str]:
    rows = d.statuses()
    return {key: rows[key]["consultation_id"] for key in keys}


def _wait_for_live_worker(d: DagsterDeployment, key: str) -> tuple[RunInfo, int]:
    """The run for ``key`` once it is STARTED and its worker process is known."""

    def found() -> tuple[RunInfo, int] | None:
        row = d.statuses().get(key)
        if not row:
            return None
        runs = [r for r in d.runs_for(row["consultation_id"]) if r.status == "STARTED"]
        workers = {run_id: pid for pid, run_id in d.run_worker_pids().items() if run_id}
        for run in runs:
            if run.run_id in workers:
                return run, workers[run.run_id]
        return None

    return d.wait_for(found, WORKER_TIMEOUT_S, f"a live run worker for {key}", interval=0.2)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] not in "ZX"


def test_chat_and_call_succeed_under_the_daemon(
    dagster_deployment: DagsterDeployment, short_call_wav: Path
) -> None:
    d = dagster_deployment
    chat_key = d.source_key("team-a/chat-001.txt")
    call_key = d.source_key("team-a/call-001.wav")
    d.drop("team-a/chat-001.txt", CHAT)
    d.drop("team-a/call-001.wav", short_call_wav)

    rows = d.wait_for_final({chat_key, call_key}, FINAL_TIMEOUT_S)
    assert {k: (r["status"], r["error"]) for k, r in rows.items()} == {
        chat_key: ("succeeded", None),
        call_key: ("succeeded", None),
    }
    ids = _consultation_ids(d, [chat_key, call_key])
    runs = d.wait_for_runs_finished(list(ids.values()), 60)
    assert sorted((r.partition, r.status) for r in runs) == sorted(
        (cid, "SUCCESS") for cid in ids.values()
    ), "exactly one run per consultation, each SUCCESS"
    assert all(r.tags.get("dagster/sensor_name") == "consultation_bucket_sensor" for r in runs)
    assert d.originals_changed() == {}


def test_daemon_killed_mid_run_then_restarted(
    dagster_deployment: DagsterDeployment, long_call_wav: Path
) -> None:
    d = dagster_deployment
    call_key = d.source_key("calls/long-call.wav")
    d.drop("calls/long-call.wav", long_call_wav)
    run, worker = _wait_for_live_worker(d, call_key)

    d.kill_daemon()  # SIGKILL to the daemon's process group only
    assert not d.alive("daemon")
    assert _pid_alive(worker), "the run worker belongs to the code server, not the daemon"
    assert not d.instance.get_run_by_id(run.run_id).is_finished, "killed too late: not mid-run"

    # No daemon: the worker finishes the run on its own.
    row = d.wait_for_final({call_key}, FINAL_TIMEOUT_S)[call_key]
    assert (row["status"], row["error"]) == ("succeeded", None)
    cid = row["consultation_id"]
    assert [r.status for r in d.wait_for_runs_finished([cid], 60)] == ["SUCCESS"]

    restarted = time.monotonic()
    d.restart(("daemon",))
    chat_key = d.source_key("after-restart/chat.txt")
    d.drop("after-restart/chat.txt", CHAT_AFTER_RESTART)
    chat = d.wait_for_final({chat_key}, FINAL_TIMEOUT_S)[chat_key]
    assert (chat["status"], chat["error"]) == ("succeeded", None)
    chat_runs = d.wait_for_runs_finished([chat["consultation_id"]], 60)
    assert [r.status for r in chat_runs] == ["SUCCESS"]
    assert time.monotonic() - restarted < FINAL_TIMEOUT_S + 60
    assert len(d.runs_for(cid)) == 1, "the killed daemon's run was not duplicated"
    assert d.originals_changed() == {}
