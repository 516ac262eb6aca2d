"""Real `dagster-celery` workers for a DagsterDeployment (tests/support/daemon.py), started
as `make worker` starts them, shared by the Celery integration tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.daemon import DagsterDeployment

REPO_ROOT = Path(__file__).resolve().parents[2]


def start_worker(
    d: DagsterDeployment, name: str, queues: list[str]
) -> tuple[Path, subprocess.Popen[bytes]]:
    """One worker `name` on `queues`, --concurrency=1, in its own process group (killpg
    reaches its pool), logging to d.logs/worker-<name>.log; it carries the deployment's
    environment, marker included, so d.close() also catches a straggler."""
    log = d.logs / f"worker-{name}.log"
    bin_dir = Path(sys.executable).parent
    command = [
        str(bin_dir / "dagster-celery"), "worker", "start", "-A", "dagster_celery.app",
        "-y", str(REPO_ROOT / "deploy" / "celery.yaml"), "-n", f"{name}@%h",
        # One comma-joined -q: celery keeps only the last of repeated -Q options.
        "-q", ",".join(queues),
        "--", "--concurrency=1",
    ]  # fmt: skip
    # dagster-celery starts `celery` by name: the project's own.
    env = {
        **d.env,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "CSCOACH_STT_CONCURRENCY": "1",  # as `make worker CONCURRENCY=1` sets it
    }
    with log.open("ab") as out:
        worker = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    return log, worker


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the worker's process group, SIGKILL after 20 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
