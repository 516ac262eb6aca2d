"""The pipeline under the real Dagster processes, for fault-injection tests.

``DagsterDeployment`` runs three long-lived processes, each in its own process group, with
logs under ``root/logs``:

- the code server, ``dagster api grpc -m cscoach_pipeline.definitions`` on a free loopback
  port; the daemon and the webserver both reach it through ``root/workspace.yaml``
  (``grpc_server``). Run workers are *its* children: the default run launcher asks it to
  start each run, and it spawns one multiprocessing process per run
  (``python -c "from multiprocessing.spawn import spawn_main; ..." --multiprocessing-fork``),
  which logs the engine event "Started process for run (pid: N)."
- ``dagster-daemon run`` (sensors, queued run coordinator, run monitoring);
- ``dagster-webserver`` on another free loopback port (GraphQL at ``/graphql``).

So the daemon, the webserver, the code server and single run workers can each be killed
alone. Every process of a deployment, including run workers, ffmpeg and anything else they
start, inherits the environment variable ``CSCOACH_TEST_DEPLOYMENT=<uuid>``: that is how
:meth:`DagsterDeployment.processes` finds them in ``/proc`` (Linux), and how cleanup makes
sure nothing outlives the test, whatever was killed or orphaned along the way.

Every wait is bounded. Use it as a context manager (or the :func:`deployment` pytest helper);
on an exception the tail of every log is printed::

    with DagsterDeployment(tmp_path) as d:
        d.drop("chat.txt", b"Agent: Hello ...")
        d.wait_for(lambda: d.final_statuses().get("incoming/chat.txt"), timeout=90)
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from cscoach_pipeline.defs.recovery.policy import batch_members

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCATION_NAME = "cscoach_pipeline"
MARKER_VAR = "CSCOACH_TEST_DEPLOYMENT"
FINAL_STATUSES = frozenset({"succeeded", "failed", "no_speech", "rejected"})
COMPONENTS = ("code_server", "daemon", "webserver")

# Instance settings for tests, merged over the template deploy/dagster.yaml: the run monitor looks
# every few seconds instead of every two minutes. Callers can override any of it.
TEST_INSTANCE_OVERRIDES: dict[str, Any] = {
    "run_monitoring": {"poll_interval_seconds": 5, "start_timeout_seconds": 60},
}
# Deployment environment: small settle time and sensor interval so files run within seconds.
TEST_ENV: dict[str, str] = {
    "CSCOACH_SETTLE_SECONDS": "1",
    "CSCOACH_SENSOR_INTERVAL_S": "2",
    # The crash, outage, breaker and retention tests count one run per consultation; batch
    # runs under the daemon are proven in tests/integration/test_text_batches.py.
    "CSCOACH_TEXT_BATCH_SIZE": "1",
    "CSCOACH_AUDIO_BATCH_SIZE": "1",
}

T = TypeVar("T")


# Jobs that are not about one consultation (the supervision stage's).
AGGREGATE_JOBS = frozenset(
    {"refresh_daily_aggregates", "daily_team_reports_job", "weekly_team_reports_job"}
)


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    job_name: str
    status: str  # DagsterRunStatus name: QUEUED, STARTING, STARTED, SUCCESS, FAILURE, ...
    tags: dict[str, str]
    created: float  # epoch seconds

    @property
    def consultations(self) -> set[str]:
        """The consultations this run works on: its partition, or a batch run's members."""
        members = batch_members(self.tags)
        if members is not None:
            return set(members)
        return {self.tags["dagster/partition"]} if "dagster/partition" in self.tags else set()

    @property
    def partition(self) -> str | None:
        return self.tags.get("dagster/partition")

    @property
    def finished(self) -> bool:
        return self.status in ("SUCCESS", "FAILURE", "CANCELED")


@dataclass
class _Process:
    name: str
    cmd: list[str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    expected: bool = False  # False once killed or stopped on purpose

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class DeploymentError(RuntimeError):
    """A process of the deployment died or never became ready; the message has its log."""


class DagsterDeployment:
    """Code server + daemon + webserver on a temporary DAGSTER_HOME, bucket and warehouse.

    ``root``: an empty folder owned by the test (``tmp_path``). ``env``: extra environment
    for every process (e.g. ``CSCOACH_MAX_FILE_MB``), applied last. ``warehouse_url``: a
    SQLAlchemy URL (default: SQLite ``root/warehouse.db``). ``instance_overrides``: merged
    over the template ``deploy/dagster.yaml`` after :data:`TEST_INSTANCE_OVERRIDES` (e.g.
    ``{"concurrency": {"runs": {"max_concurrent_runs": 1}}}``).
    """

    def __init__(
        self,
        root: Path,
        env: Mapping[str, str] | None = None,
        *,
        warehouse_url: str | None = None,
        instance_overrides: Mapping[str, Any] | None = None,
        startup_timeout: float = 90.0,
    ) -> None:
        self.root = Path(root).resolve()
        self.dagster_home = self.root / "dagster_home"
        self.bucket = self.root / "bucket"
        self.incoming = self.bucket / "incoming"
        self.staging = self.root / "staging"  # same filesystem, outside the bucket
        self.logs = self.root / "logs"
        self.warehouse_url = warehouse_url or f"sqlite:///{self.root / 'warehouse.db'}"
        self.startup_timeout = startup_timeout
        self.deployment_id = uuid.uuid4().hex
        self.grpc_port = free_port()
        self.webserver_port = free_port(exclude={self.grpc_port})
        self.dropped: dict[str, str] = {}  # source key -> sha256 at drop time
        self._instance: Any = None
        self._engine: Any = None

        for folder in (self.dagster_home, self.incoming, self.staging, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
        self.instance_config = _deep_merge(
            yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text()) or {},
            TEST_INSTANCE_OVERRIDES,
            instance_overrides or {},
        )
        (self.dagster_home / "dagster.yaml").write_text(yaml.safe_dump(self.instance_config))
        self.workspace_file = self.root / "workspace.yaml"
        self.workspace_file.write_text(
            yaml.safe_dump(
                {
                    "load_from": [
                        {
                            "grpc_server": {
                                "host": "127.0.0.1",
                                "port": self.grpc_port,
                                "location_name": LOCATION_NAME,
                            }
                        }
                    ]
                }
            )
        )
        self.env = self._environment(env or {})
        bin_dir = Path(sys.executable).parent
        self._procs = {
            "code_server": _Process(
                "code_server",
                [str(_tool(bin_dir, "dagster")), "api", "grpc",
                 "--module-name", "cscoach_pipeline.definitions",
                 "--working-directory", str(REPO_ROOT),
                 "--host", "127.0.0.1", "--port", str(self.grpc_port),
                 "--location-name", LOCATION_NAME],
                self.logs / "code_server.log",
            ),
            "daemon": _Process(
                "daemon",
                [str(_tool(bin_dir, "dagster-daemon")), "run",
                 "--workspace", str(self.workspace_file)],
                self.logs / "daemon.log",
            ),
            "webserver": _Process(
                "webserver",
                [str(_tool(bin_dir, "dagster-webserver")),
                 "--workspace", str(self.workspace_file),
                 "--host", "127.0.0.1", "--port", str(self.webserver_port)],
                self.logs / "webserver.log",
            ),
        }  # fmt: skip

    # ------------------------------------------------------------------------- lifecycle

    def __enter__(self) -> DagsterDeployment:
        try:
            self.start()
        except BaseException:
            self.close(failed=True)
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(failed=exc_type is not None)

    def start(self, components: tuple[str, ...] = COMPONENTS) -> None:
        """Start the given components that are not running and wait until they are ready:
        the code server answers gRPC, the webserver answers GraphQL with the code location
        loaded, the daemon's sensor, run-queue and monitoring daemons send heartbeats."""
        wanted = [name for name in COMPONENTS if name in components]
        if "code_server" in wanted and not self._procs["code_server"].alive():
            self._spawn("code_server")
            self._wait_ready("code_server", self._grpc_ready)
        for name in ("daemon", "webserver"):
            if name in wanted and not self._procs[name].alive():
                self._spawn(name)
        if "webserver" in wanted:
            self._wait_ready("webserver", self._webserver_ready)
        if "daemon" in wanted:
            self._wait_ready("daemon", self._daemon_ready)

    def restart(self, components: tuple[str, ...] = COMPONENTS) -> None:
        """Start again whatever of ``components`` is not running (after a kill)."""
        self.start(components)

    def close(self, failed: bool = False) -> None:
        """Stop everything (SIGTERM, then SIGKILL after 10 s; then any straggler carrying
        this deployment's marker, e.g. an orphaned run worker), release connections, and on
        failure print the tail of every log."""
        try:
            running = [p for p in self._procs.values() if p.alive()]
            for proc in running:
                proc.expected = False
                _signal_group(proc, signal.SIGTERM)
            deadline = time.monotonic() + 10
            for proc in running:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    assert proc.popen is not None
                    proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            for proc in self._procs.values():
                if proc.alive():
                    _signal_group(proc, signal.SIGKILL)
            self._kill_marked(signal.SIGKILL)
            for proc in self._procs.values():
                if proc.popen is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.popen.wait(timeout=5)
        finally:
            if self._instance is not None:
                with contextlib.suppress(Exception):
                    self._instance.dispose()
                self._instance = None
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None
            if failed:
                print(self.log_tails(), file=sys.stderr)

    # -------------------------------------------------------------------------- faults

    def kill_daemon(self, sig: int = signal.SIGKILL) -> None:
        self.kill("daemon", sig)

    def kill_webserver(self, sig: int = signal.SIGKILL) -> None:
        self.kill("webserver", sig)

    def kill_code_server(self, sig: int = signal.SIGKILL, *, with_workers: bool = True) -> None:
        """``with_workers=False`` kills only the server process, orphaning its run workers
        (they share its process group, so the default kills them too)."""
        proc = self._procs["code_server"]
        if with_workers:
            self.kill("code_server", sig)
        elif proc.alive():
            proc.expected = False
            assert proc.pid is not None
            os.kill(proc.pid, sig)
            _reap(proc)

    def kill(self, component: str, sig: int = signal.SIGKILL) -> None:
        proc = self._procs[component]
        proc.expected = False
        if proc.alive():
            _signal_group(proc, sig)
            _reap(proc)

    def kill_run_workers(self, sig: int = signal.SIGKILL) -> dict[int, str | None]:
        """Kill every run worker process; returns what was killed (pid -> run id)."""
        workers = self.run_worker_pids()
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        _wait_gone(set(workers), timeout=10)
        return workers

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Kill daemon, webserver, code server and run workers (and their children) at once,
        like a machine losing power."""
        for proc in self._procs.values():
            proc.expected = False
            if proc.alive():
                _signal_group(proc, sig)
        self._kill_marked(sig)
        for proc in self._procs.values():
            _reap(proc)

    # ------------------------------------------------------------------------ processes

    def pid(self, component: str) -> int | None:
        proc = self._procs[component]
        return proc.pid if proc.alive() else None

    def alive(self, component: str) -> bool:
        return self._procs[component].alive()

    def processes(self) -> dict[int, list[str]]:
        """Every live process carrying this deployment's marker: pid -> argv."""
        found: dict[int, list[str]] = {}
        needle = f"{MARKER_VAR}={self.deployment_id}".encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            try:
                if needle not in (entry / "environ").read_bytes().split(b"\0"):
                    continue
                if _is_zombie(pid):
                    continue
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:  # gone, or not ours to read
                continue
            found[pid] = [a.decode(errors="replace") for a in argv if a]
        return found

    def run_worker_pids(self) -> dict[int, str | None]:
        """Live run worker processes: pid -> run id (None while the worker has not yet logged
        "Started process for run (pid: N)."). A run worker is a multiprocessing child of the
        code server (or a ``dagster api execute_run`` process, should the launcher change)."""
        by_pid = {pid: run_id for run_id, pid in self._worker_pids_from_events().items()}
        server = self.pid("code_server")
        workers: dict[int, str | None] = {}
        for pid, argv in self.processes().items():
            line = " ".join(argv)
            spawned = "spawn_main" in line and _parent(pid) == server
            if spawned or "execute_run" in line or pid in by_pid:
                workers[pid] = by_pid.get(pid)
        return workers

    def _worker_pids_from_events(self) -> dict[str, int]:
        from dagster import DagsterEventType

        from cscoach_pipeline.defs.recovery.policy import worker_pid

        pids: dict[str, int] = {}
        for run in self.runs():
            if run.finished:
                continue
            events = self.instance.all_logs(run.run_id, of_type=DagsterEventType.ENGINE_EVENT)
            pid = worker_pid(events)
            if pid is not None:
                pids[run.run_id] = pid
        return pids

    # --------------------------------------------------------------------------- bucket

    def drop(self, name: str, data: bytes | str | Path) -> Path:
        """Put a file at ``incoming/<name>`` atomically: written under ``root/staging``, then
        renamed into the bucket, so the sensor never sees it half-written. Remembers its
        sha256 for :meth:`originals_unchanged`. Returns the bucket path."""
        if isinstance(data, Path):
            content = data.read_bytes()
        elif isinstance(data, str):
            content = data.encode()
        else:
            content = data
        target = self.incoming / name
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.staging / f"{uuid.uuid4().hex}.tmp"
        temporary.write_bytes(content)
        os.replace(temporary, target)
        self.dropped[self.source_key(name)] = hashlib.sha256(content).hexdigest()
        return target

    @staticmethod
    def source_key(name: str) -> str:
        return f"incoming/{name}"

    def originals_changed(self) -> dict[str, str]:
        """Dropped files whose bytes changed or that disappeared: key -> what happened."""
        changed = {}
        for key, digest in self.dropped.items():
            path = self.bucket / key
            if not path.is_file():
                changed[key] = "missing"
            elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
                changed[key] = "modified"
        return changed

    # ------------------------------------------------------------------------ warehouse

    @property
    def engine(self) -> Any:
        if self._engine is None:
            from sqlalchemy import create_engine
            from sqlalchemy.engine import make_url
            from sqlalchemy.pool import NullPool

            from cscoach_pipeline.defs.warehouse.engine import with_default_driver

            # The same driver choice as the pipeline (postgresql:// means psycopg2).
            url = with_default_driver(make_url(self.warehouse_url))
            self._engine = create_engine(url, poolclass=NullPool)
        return self._engine

    def statuses(self) -> dict[str, dict[str, Any]]:
        """``consultation_status`` rows by source key ({} before the table exists)."""
        from sqlalchemy import inspect, text

        with self.engine.connect() as conn:
            if not inspect(conn).has_table("consultation_status"):
                return {}
            rows = conn.execute(text("SELECT * FROM consultation_status")).mappings().all()
        return {row["source_key"]: dict(row) for row in rows}

    def final_statuses(self) -> dict[str, str]:
        """Source key -> status, only for consultations in a final status."""
        return {
            key: row["status"]
            for key, row in self.statuses().items()
            if row["status"] in FINAL_STATUSES
        }

    def wait_for_final(self, keys: set[str] | list[str], timeout: float) -> dict[str, Any]:
        """Wait until every source key has a final status; returns their rows."""
        wanted = set(keys)

        def done() -> dict[str, Any] | None:
            rows = self.statuses()
            final = {k: rows[k] for k in wanted if rows.get(k, {}).get("status") in FINAL_STATUSES}
            return final if len(final) == len(wanted) else None

        return self.wait_for(done, timeout, f"final status for {sorted(wanted)}")

    # --------------------------------------------------------------------------- dagster

    @property
    def instance(self) -> Any:
        """A DagsterInstance on this deployment's DAGSTER_HOME (read side, in the test)."""
        if self._instance is None:
            from dagster import DagsterInstance

            self._instance = DagsterInstance.from_config(str(self.dagster_home))
        return self._instance

    def runs(self) -> list[RunInfo]:
        """Every consultation run, oldest first: the refreshes of the day aggregates the
        daily_aggregates sensor asks for along the way are in `all_runs`."""
        return [run for run in self.all_runs() if run.job_name not in AGGREGATE_JOBS]

    def all_runs(self) -> list[RunInfo]:
        """Every run, oldest first."""
        records = self.instance.get_run_records()
        runs = [
            RunInfo(
                run_id=r.dagster_run.run_id,
                job_name=r.dagster_run.job_name,
                status=r.dagster_run.status.value,
                tags=dict(r.dagster_run.tags),
                created=r.create_timestamp.timestamp(),
            )
            for r in records
        ]
        return sorted(runs, key=lambda run: run.created)

    def runs_for(self, consultation_id: str) -> list[RunInfo]:
        """Runs of this consultation: its own, and batch runs it is a member of."""
        return [run for run in self.runs() if consultation_id in run.consultations]

    def wait_for_runs_finished(self, consultation_ids: list[str], timeout: float) -> list[RunInfo]:
        """Wait until each consultation has a run and all its runs are finished."""

        def done() -> list[RunInfo] | None:
            runs = [run for cid in consultation_ids for run in self.runs_for(cid)]
            every = all(self.runs_for(cid) for cid in consultation_ids)
            return runs if every and all(run.finished for run in runs) else None

        return self.wait_for(done, timeout, f"finished runs for {consultation_ids}")

    def step_started(self, run_id: str, step_key: str) -> bool:
        from dagster import DagsterEventType

        return any(
            record.step_key == step_key
            for record in self.instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
        )

    def run_messages(self, run_id: str) -> list[str]:
        return [r.message for r in self.instance.all_logs(run_id) if r.message]

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.webserver_port}/graphql",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    # ---------------------------------------------------------------------------- waits

    def wait_for(
        self,
        predicate: Callable[[], T],
        timeout: float,
        what: str = "condition",
        interval: float = 0.5,
    ) -> T:
        """Poll ``predicate`` until it returns something truthy (returned). Fails early if a
        process that should be running has died; on timeout the error shows the statuses
        and runs."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            value = predicate()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"timed out after {timeout:.0f} s waiting for {what}\n{self.describe()}"
                )
            time.sleep(interval)

    def describe(self) -> str:
        lines = ["consultation_status:"]
        with contextlib.suppress(Exception):
            for key, row in sorted(self.statuses().items()):
                lines.append(f"  {key}: {row['status']} stage={row['stage']} {row['error'] or ''}")
        lines.append("runs:")
        with contextlib.suppress(Exception):
            for run in self.runs():
                lines.append(f"  {run.run_id[:8]} {run.status} {run.partition}")
        lines.append("processes: " + ", ".join(f"{n}={self.pid(n)}" for n in COMPONENTS))
        return "\n".join(lines)

    def log_tails(self, lines: int = 40) -> str:
        parts = [f"==== deployment {self.root}\n{self.describe()}"]
        for proc in self._procs.values():
            if proc.log.exists():
                tail = proc.log.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"==== {proc.log.name} (last {lines} lines)\n" + "\n".join(tail))
        return "\n".join(parts)

    # ------------------------------------------------------------------------ internals

    def _environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CSCOACH_", "DAGSTER_"))
            and k not in ("GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL")
        }
        env.update(
            {
                "DAGSTER_HOME": str(self.dagster_home),
                "CSCOACH_BUCKET_URL": self.bucket.as_uri(),
                "CSCOACH_WAREHOUSE_URL": self.warehouse_url,
                "PYTHONUNBUFFERED": "1",
                MARKER_VAR: self.deployment_id,
                **TEST_ENV,
            }
        )
        env.update(extra)
        return env

    def _spawn(self, name: str) -> None:
        proc = self._procs[name]
        with proc.log.open("ab") as log:
            log.write(f"\n==== starting {name} at {time.strftime('%X')}\n".encode())
            log.flush()
            proc.popen = subprocess.Popen(
                proc.cmd,
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: killpg reaches its children
            )
        proc.started_at = time.time()
        proc.expected = True

    def _wait_ready(self, name: str, ready: Callable[[], bool]) -> None:
        self.wait_for(ready, self.startup_timeout, f"{name} to be ready", interval=0.25)

    def _check_alive(self) -> None:
        for proc in self._procs.values():
            if proc.expected and not proc.alive():
                code = proc.popen.returncode if proc.popen else None
                tail = "\n".join(proc.log.read_text(errors="replace").splitlines()[-40:])
                raise DeploymentError(f"{proc.name} exited unexpectedly (code {code}):\n{tail}")

    def _grpc_ready(self) -> bool:
        from dagster._grpc.client import DagsterGrpcClient

        try:
            DagsterGrpcClient(port=self.grpc_port, host="127.0.0.1").ping("ready")
            return True
        except Exception:
            return False

    def _webserver_ready(self) -> bool:
        query = """{ workspaceOrError { __typename ... on Workspace { locationEntries {
            name loadStatus locationOrLoadError { __typename } } } } }"""
        try:
            data = self.graphql(query)["data"]["workspaceOrError"]
        except (OSError, urllib.error.URLError, KeyError, TypeError, ValueError):
            return False
        entries = data.get("locationEntries") or []
        for entry in entries:
            if entry["name"] == LOCATION_NAME and entry["loadStatus"] == "LOADED":
                error = entry["locationOrLoadError"] or {}
                if error.get("__typename") == "PythonError":
                    raise DeploymentError(f"code location failed to load:\n{self.log_tails()}")
                return True
        return False

    def _daemon_ready(self) -> bool:
        since = self._procs["daemon"].started_at
        beats = self.instance.get_daemon_heartbeats()
        needed = self.instance.get_required_daemon_types()
        return all(name in beats and beats[name].timestamp >= since for name in needed)

    def _kill_marked(self, sig: int) -> None:
        pids = set(self.processes())
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        _wait_gone(pids, timeout=5)


@contextlib.contextmanager
def deployment(request: Any, root: Path, **kwargs: Any) -> Iterator[DagsterDeployment]:
    """For pytest fixtures: like the context manager, but also prints the logs when the
    test itself failed (a fixture does not see the test's exception)::

        @pytest.fixture
        def dagster_deployment(request, tmp_path):
            with deployment(request, tmp_path) as d:
                yield d
    """
    failed_before = request.session.testsfailed
    d = DagsterDeployment(root, **kwargs)
    with d:
        yield d
        if request.session.testsfailed > failed_before:
            print(d.log_tails(), file=sys.stderr)


def free_port(exclude: set[int] | None = None) -> int:
    """A TCP port free on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port not in (exclude or set()):
            return port
    raise RuntimeError("no free port")


def _tool(bin_dir: Path, name: str) -> Path:
    candidate = bin_dir / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found next to {sys.executable} nor on PATH")
    return Path(found)


def _deep_merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
                merged[key] = _deep_merge(merged[key], value)
            else:
                merged[key] = copy.deepcopy(value)
    return merged


def _signal_group(proc: _Process, sig: int) -> None:
    if proc.pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _reap(proc: _Process, timeout: float = 10) -> None:
    if proc.popen is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=timeout)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2 :].startswith(("Z", "X"))


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _wait_gone(pids: set[int], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if not _is_zombie(pid)}
        if pids:
            time.sleep(0.05)
