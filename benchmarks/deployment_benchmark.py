"""Benchmark (not a test): the pipeline as deployed, under the real code server, dagster-daemon
and webserver (tests/support/daemon.py), with Dagster's storage and the warehouse both on
PostgreSQL, in two parts.

A. Throughput (`--part throughput`): one batch of `--files` espeak-ng calls (~8-50 s each,
   distinct bytes per file) plus `--batch-chats` chats, dropped into the bucket at once, for
   each executor setup:
     in_process  - steps run inside each run's own process (the default);
     celery_1    - CSCOACH_EXECUTOR=celery, one `dagster-celery` worker on every queue
                   (stt,analysis,dagster), --concurrency=1;
     celery_2    - the same with two such workers, both on every queue, --concurrency=1 each.
   Instance: deploy/dagster.yaml (max_concurrent_runs 2, gemini pool 1) + the PostgreSQL
   storage of deploy/dagster.postgres.yaml; analysis is offline local rules.
   Reported: consultations per hour (succeeded / (last succeeded - first drop) * 3600), drop
   to final status per consultation, and from Dagster's run stats per run: queue wait
   (enqueued -> starting), run launch (starting -> started: a new process, imports, code
   load) and in-run overhead (run wall time minus the sum of its step durations; with Celery
   this includes waiting for a free worker and the broker round trips), split into before
   the first step, between steps and after the last one; plus checks that every step has a
   start, an end and a status and that no run's steps add up to more than its wall time.

B. Backfill quota (`--part backfill`): `--chats` consultations seeded as an earlier pass
   leaves them (redacted transcripts in the bucket, inventory/consultation rows, partitions
   in the instance), then analysed once with prompt v1 by local rules in-process (so they
   are "analysed" as `python -m cscoach_pipeline.reanalyze` selects them). Then the real
   deployment: the fake Gemini server (tests/support/fake_gemini.py, `--latency` per reply)
   behind the real google-genai client, the shared Redis quota (CSCOACH_REDIS_URL) of
   CSCOACH_GEMINI_RPM=`--rpm`, the Celery executor with two workers on every queue
   (--concurrency=1 each), the `gemini` pool raised to 8 and `--max-runs` concurrent runs.
   A reanalysis backfill with prompt v2 is launched through the webserver's GraphQL
   (cscoach_pipeline.reanalyze.launch_backfill); the backfill daemon makes one run per 100
   consultations. From the arrival times of the generateContent requests at the fake
   server: the overall rate (first -> last request), the most requests in any sliding 60 s
   window (must not exceed the quota) and the sustained rate (mean count of the 60 s windows
   that start at a request and end before the last one; needs a batch well above the quota,
   since the sliding-window limiter lets one quota's worth through at once at the start,
   which also inflates the first -> last rate of short runs). Also the limiter's own view:
   its admissions, sampled from its sliding log in Redis, the most of them in any 60 s, and
   the delay from admission to arrival at the server. The shared limiter's window is one
   second longer than the minute (shared_limits.WINDOW_MARGIN_MS): with an exact 60 s window,
   the tens of ms of jitter in that delay put one or two requests more than the quota into a
   60 s window as the server counts it.

The machine this was written on has 2 cores: the daemon, webserver, code server, run workers
and Celery workers all compete for them, so more workers cannot scale linearly there.

Needs Redis on 127.0.0.1:6379 (db 11: Celery broker, db 10: shared limits; both flushed
before and after), PostgreSQL on 127.0.0.1:5432 (tests/support/postgres.py: temporary
databases), espeak-ng and ffmpeg.

Usage:
    python -m benchmarks.deployment_benchmark                      # both parts, defaults
    python -m benchmarks.deployment_benchmark --part throughput --files 8 [--batch-chats 2]
        [--configs in_process celery_1 celery_2]
    python -m benchmarks.deployment_benchmark --part backfill --chats 300 --rpm 120
        [--latency 0.3] [--concurrency 4] [--max-runs 3]
Results print as tables and are saved to bench-results/deployment.json (a part that did not
run keeps its previous figures there, each part with its own `measured_at`).
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import io
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from benchmarks.results import RESULTS_DIR, save_results, summarize
from tests.support.celery import start_worker, stop_worker
from tests.support.daemon import DagsterDeployment, RunInfo
from tests.support.media_factory import Line, dialogue_tracks, write_wav
from tests.support.postgres import temporary_database
from tests.support.scripts import BAD_CALL, GOOD_CALL

ROOT = Path(__file__).resolve().parents[1]
BROKER_URL = "redis://127.0.0.1:6379/11"
LIMITS_URL = "redis://127.0.0.1:6379/10"
ALL_QUEUES = ["stt", "analysis", "dagster"]
API_KEY = "bench-key-deployment"
POSTGRES_STORAGE = yaml.safe_load((ROOT / "deploy" / "dagster.postgres.yaml").read_text())
CONFIGS = {"in_process": 0, "celery_1": 1, "celery_2": 2}  # name -> Celery workers
SHORT_CALL = [
    Line("agent", "Thank you for calling Acme support. How can I help you today?"),
    Line("customer", "Hi, I would like to check my order status, please."),
]
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}  # in-process seeding
CORES_NOTE = (
    "{cores} cores: daemon, webserver, code server, run workers and Celery workers share "
    "them, so extra workers cannot scale linearly here"
)


# ----------------------------------------------------------------------------- plumbing


@contextlib.contextmanager
def flushed_redis(url: str) -> Iterator[Any]:
    from cscoach_pipeline.shared_limits import redis_client

    client = redis_client(url)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()


@contextlib.contextmanager
def postgres_deployment(
    root: Path, env: dict[str, str], overrides: dict[str, Any] | None = None
) -> Iterator[DagsterDeployment]:
    """A DagsterDeployment with Dagster's storage and the warehouse in two temporary
    PostgreSQL databases (as tests/integration/test_postgres_instance.py). Not started yet:
    enter it with `with`."""
    with temporary_database() as dagster_db, temporary_database() as warehouse_db:
        previous = os.environ.get("DAGSTER_PG_URL")
        os.environ["DAGSTER_PG_URL"] = dagster_db  # this process's own instance reads it too
        try:
            yield DagsterDeployment(
                root,
                env={"DAGSTER_PG_URL": dagster_db, **env},
                warehouse_url=warehouse_db,
                instance_overrides={**POSTGRES_STORAGE, **(overrides or {})},
            )
        finally:
            if previous is None:
                os.environ.pop("DAGSTER_PG_URL", None)
            else:
                os.environ["DAGSTER_PG_URL"] = previous


@contextlib.contextmanager
def celery_workers(d: DagsterDeployment, count: int, queues: list[str]) -> Iterator[list[Path]]:
    """`count` real `dagster-celery` workers (as tests/integration/test_celery_workers.py),
    each on `queues` with --concurrency=1, ready (connected to the broker) when yielded;
    stopped (SIGTERM, then SIGKILL) on exit. They carry the deployment's marker, so its
    close() would also catch any straggler."""
    workers: list[tuple[Path, subprocess.Popen[bytes]]] = []
    try:
        for index in range(count):
            log, worker = start_worker(d, f"bench{index}", queues)
            workers.append((log, worker))
        for log, worker in workers:
            d.wait_for(
                lambda log=log, worker=worker: _worker_ready(log, worker),
                timeout=120,
                what=f"celery worker {log.name} to be ready",
            )
        yield [log for log, _ in workers]
    except BaseException:
        for log, _ in workers:
            if log.exists():
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
                print(f"==== {log.name} (last 40 lines)\n{tail}", file=sys.stderr)
        raise
    finally:
        for _, worker in workers:
            stop_worker(worker)


def _worker_ready(log: Path, worker: subprocess.Popen[bytes]) -> bool:
    if worker.poll() is not None:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"celery worker exited (code {worker.returncode}):\n{tail}")
    return log.exists() and " ready." in log.read_text(errors="replace")


def _median(summary: dict[str, float] | None) -> float | None:
    return summary["median"] if summary else None


def _epoch(value: datetime) -> float:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def print_table(title: str, rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> None:
    """`columns`: (header, key) pairs; None shows as '-'."""
    cells = [[header for header, _ in columns]]
    for row in rows:
        cells.append(["-" if row.get(key) is None else str(row.get(key)) for _, key in columns])
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    print(f"\n{title}")
    for number, line in enumerate(cells):
        print("  " + "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))
        if number == 0:
            print("  " + "  ".join("-" * width for width in widths))


# ------------------------------------------------------------------- part A: throughput


def make_batch(media_dir: Path, files: int, chats: int) -> dict[str, bytes]:
    """`files` recordings cycling through four calls of ~8-50 s (the good call stereo, a short
    call stereo, the bad call stereo, the good call mono), each with its own few samples of silence
    appended so the sensor sees distinct content; plus `chats` distinct chats."""
    tracks = {
        name: dialogue_tracks(script, media_dir / name)
        for name, script in (("good", GOOD_CALL), ("short", SHORT_CALL), ("bad", BAD_CALL))
    }
    # Cycled in this order, so that even a batch of two has a long and a short call.
    bases: list[tuple[str, bytes, int]] = [  # name, frames, channels
        (f"{name}_stereo", *_frames(write_wav(media_dir / f"{name}.wav", list(tracks[name]))))
        for name in ("good", "short", "bad")
    ]
    good_mono = write_wav(media_dir / "good_mono.wav", [tracks["good"][0] + tracks["good"][1]])
    bases.append(("good_mono", *_frames(good_mono)))
    batch: dict[str, bytes] = {}
    for index in range(files):
        name, frames, channels = bases[index % len(bases)]
        tail = b"\0\0" * channels * 16 * (index + 1)
        out = io.BytesIO()
        with wave.open(out, "wb") as wav:
            wav.setnchannels(channels)
            wav.setsampwidth(2)
            wav.setframerate(16_000)
            wav.writeframes(frames + tail)
        batch[f"call-{index:03d}-{name}.wav"] = out.getvalue()
    for index in range(chats):
        batch[f"chat-{index:03d}.txt"] = (
            f"Agent: Hello, Acme support, this is Sam speaking, ticket {index}. How can I help?\n"
            f"Customer: My parcel number {1000 + index} has not arrived yet.\n"
            "Agent: I am sorry about that; I have sent a replacement, it arrives tomorrow.\n"
            "Customer: Thank you, that helps.\n"
        ).encode()
    return batch


def _frames(path: Path) -> tuple[bytes, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.readframes(wav.getnframes()), wav.getnchannels()


def _audio_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def run_stats(d: DagsterDeployment, runs: list[RunInfo]) -> dict[str, Any]:
    """Per finished run, from Dagster's own run and step stats (the event log)."""
    queued, launch, overhead, wall, stt, steps_per_run = [], [], [], [], [], []
    first_step, between, after_last = [], [], []
    incomplete, overlapping = 0, 0
    step_keys: set[str] = set()
    for run in runs:
        stats = d.instance.get_run_stats(run.run_id)
        steps = d.instance.get_run_step_stats(run.run_id)
        if stats.start_time is None or stats.end_time is None:
            continue
        if stats.enqueued_time and stats.launch_time:
            queued.append(stats.launch_time - stats.enqueued_time)
        if stats.launch_time:
            launch.append(stats.start_time - stats.launch_time)
        durations = []
        for step in steps:
            step_keys.add(step.step_key)
            if step.start_time is None or step.end_time is None or step.status is None:
                incomplete += 1
                continue
            durations.append(step.end_time - step.start_time)
            if step.step_key == "raw_transcript":
                stt.append(step.end_time - step.start_time)
        timed = sorted(
            (step.start_time, step.end_time)
            for step in steps
            if step.start_time is not None and step.end_time is not None
        )
        if timed:
            first_step.append(timed[0][0] - stats.start_time)
            between += [nxt[0] - prev[1] for prev, nxt in itertools.pairwise(timed)]
            after_last.append(stats.end_time - max(end for _, end in timed))
        run_wall = stats.end_time - stats.start_time
        if sum(durations) > run_wall + 0.01:
            overlapping += 1  # steps are a chain here: their sum cannot exceed the run
        wall.append(run_wall)
        overhead.append(run_wall - sum(durations))
        steps_per_run.append(len(steps))
    return {
        "queue_wait_s": summarize(queued),
        "run_launch_s": summarize(launch),
        "run_wall_s": summarize(wall),
        "in_run_overhead_s": summarize(overhead),
        # Where the in-run overhead goes: before the first step, between steps (with Celery:
        # task dispatch, a free worker, the worker loading the job), after the last one.
        "run_start_to_first_step_s": summarize(first_step),
        "between_steps_s": summarize(between),
        "last_step_to_run_end_s": summarize(after_last),
        "stt_step_s": summarize(stt),
        "steps_per_run": sorted(set(steps_per_run)),
        "step_keys": sorted(step_keys),
        "steps_without_end_or_status": incomplete,
        "runs_whose_steps_exceed_wall": overlapping,
    }


def throughput_config(
    name: str, workers: int, batch: dict[str, bytes], timeout_s: float
) -> dict[str, Any]:
    env = {"CSCOACH_ANALYZER": "local-rules"}
    if workers:
        env |= {"CSCOACH_EXECUTOR": "celery", "CSCOACH_CELERY_BROKER_URL": BROKER_URL}
    with (
        tempfile.TemporaryDirectory(prefix=f"cscoach-bench-{name}-") as tmp,
        flushed_redis(BROKER_URL) if workers else contextlib.nullcontext(),
        postgres_deployment(Path(tmp), env) as d,
        d,
        celery_workers(d, workers, ALL_QUEUES) if workers else contextlib.nullcontext(),
    ):
        first_drop = time.time()
        dropped: dict[str, float] = {}
        for file_name, data in batch.items():
            d.drop(file_name, data)
            dropped[d.source_key(file_name)] = time.time()
        final = d.wait_for_final(set(dropped), timeout=timeout_s)
        ids = [row["consultation_id"] for row in final.values()]
        runs = d.wait_for_runs_finished(ids, timeout=120)
        stats = run_stats(d, [r for r in runs if r.job_name == "process_consultation"])
    finished = {key: _epoch(row["updated_at"]) for key, row in final.items()}
    succeeded = {k: t for k, t in finished.items() if final[k]["status"] == "succeeded"}
    makespan = max(succeeded.values()) - first_drop if succeeded else None
    statuses: dict[str, int] = {}
    for row in final.values():
        statuses[row["status"]] = statuses.get(row["status"], 0) + 1
    return {
        "config": name,
        "celery_workers": workers,
        "worker_queues": ",".join(ALL_QUEUES) if workers else None,
        "consultations": len(batch),
        "statuses": statuses,
        "first_drop_to_last_succeeded_s": round(makespan, 1) if makespan else None,
        "consultations_per_hour": (
            round(len(succeeded) / makespan * 3600, 1) if makespan else None
        ),
        "drop_to_final_s": summarize([finished[k] - dropped[k] for k in finished]),
        "runs": len(runs),
        **stats,
    }


def throughput(files: int, chats: int, configs: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cscoach-bench-media-") as media:
        batch = make_batch(Path(media), files, chats)
    audio = [_audio_seconds(v) for k, v in batch.items() if k.endswith(".wav")]
    timeout = 300 + 120 * len(batch)
    rows = []
    for name in configs:
        print(f"[throughput] {name}: {len(batch)} consultations ...", flush=True)
        rows.append(throughput_config(name, CONFIGS[name], batch, timeout))
    return {
        "measured_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "machine": CORES_NOTE.format(cores=os.cpu_count()),
        "batch": {
            "recordings": len(audio),
            "chats": chats,
            "audio_s": {"total": round(sum(audio), 1), **(summarize(audio) or {})},
        },
        "instance": "deploy/dagster.yaml (max_concurrent_runs 2) + PostgreSQL storage; "
        "warehouse on PostgreSQL; analyzer local-rules",
        "configs": rows,
    }


def print_throughput(result: dict[str, Any]) -> None:
    rows = [
        {
            **row,
            "drop_to_final": _median(row["drop_to_final_s"]),
            "queue": _median(row["queue_wait_s"]),
            "launch": _median(row["run_launch_s"]),
            "overhead": _median(row["in_run_overhead_s"]),
            "gap": _median(row["between_steps_s"]),
            "stt": _median(row["stt_step_s"]),
            "ok": row["statuses"].get("succeeded", 0),
        }
        for row in result["configs"]
    ]
    print_table(
        f"A. Throughput ({result['machine']}); medians in seconds",
        rows,
        [
            ("config", "config"),
            ("workers", "celery_workers"),
            ("ok/n", "ok"),
            ("makespan", "first_drop_to_last_succeeded_s"),
            ("per hour", "consultations_per_hour"),
            ("drop->final", "drop_to_final"),
            ("queue wait", "queue"),
            ("run launch", "launch"),
            ("in-run ovh", "overhead"),
            ("step gap", "gap"),
            ("stt step", "stt"),
            ("bad step stats", "steps_without_end_or_status"),
        ],
    )


# ------------------------------------------------------------------ part B: backfill quota


def seed_analysed(d: DagsterDeployment, count: int) -> list[str]:
    """What an earlier pipeline pass leaves for `count` chats: redacted transcripts in the
    bucket, inventory, consultation and status rows, dynamic partitions in the deployment's
    instance (as benchmarks/backfill_benchmark.py seeds them), then analysed once with
    prompt v1 by local rules, in-process on an ephemeral instance: the v1 analyses a
    reanalysis replaces. Returns the consultations `reanalyze` selects."""
    from dagster import DagsterInstance

    from benchmarks.backfill_benchmark import seed_consultations
    from cscoach_pipeline.definitions import build_defs
    from cscoach_pipeline.defs.analysis.assets import BACKFILL_PARTITIONS_PER_RUN
    from cscoach_pipeline.defs.analysis.prompts import PROMPT_VERSION_TAG
    from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
    from cscoach_pipeline.defs.ingest.resources import BucketResource
    from cscoach_pipeline.defs.jobs import reanalyze_consultations_job
    from cscoach_pipeline.defs.partitions import consultation_partitions
    from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
    from cscoach_pipeline.reanalyze import select_consultations
    from cscoach_pipeline.settings import Settings

    bucket = BucketResource(url=d.bucket.as_uri())
    warehouse = WarehouseResource(url=d.warehouse_url)
    keys = seed_consultations(bucket, warehouse, d.instance, count)

    analyzer = AnalyzerResource(analyzer="local-rules", max_concurrent=4)
    settings = Settings(bucket_url=bucket.url, warehouse_url=warehouse.url, analyzer="local-rules")
    defs = build_defs(
        settings, resources={"bucket": bucket, "warehouse": warehouse, "analyzer": analyzer}
    )
    job = defs.resolve_job_def(reanalyze_consultations_job.name)
    with DagsterInstance.ephemeral() as scratch:
        scratch.add_dynamic_partitions(consultation_partitions.name, keys)
        for start in range(0, count, BACKFILL_PARTITIONS_PER_RUN):
            chunk = keys[start : start + BACKFILL_PARTITIONS_PER_RUN]
            result = job.execute_in_process(
                instance=scratch,
                tags={
                    PROMPT_VERSION_TAG: "v1",
                    "dagster/asset_partition_range_start": chunk[0],
                    "dagster/asset_partition_range_end": chunk[-1],
                },
                run_config=QUIET,
                raise_on_error=False,
            )
            if not result.success:
                raise RuntimeError(f"seeding the v1 analyses failed for {chunk[0]}..")
    return select_consultations(d.warehouse_url)


class AdmissionLog:
    """What the shared limiter admitted: pyrate-limiter's sliding log in Redis (a sorted set
    `cscoach:rpm:<name>`, one member per admitted request, scored by its admission time in
    ms), sampled every half second, since entries older than the window are leaked away."""

    def __init__(self, url: str) -> None:
        from cscoach_pipeline.shared_limits import redis_client

        self._client = redis_client(url)
        self._seen: dict[bytes, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="admissions", daemon=True)

    def __enter__(self) -> AdmissionLog:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._sample()

    def _poll(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(Exception):
                self._sample()

    def _sample(self) -> None:
        for key in self._client.scan_iter(match="cscoach:rpm:*"):
            for member, score in self._client.zrange(key, 0, -1, withscores=True):
                self._seen.setdefault(member, score / 1000)

    @property
    def times(self) -> list[float]:
        return sorted(self._seen.values())


def windows_60s(times: list[float]) -> list[int]:
    """For each time (sorted), how many fall in [t, t + 60 s): the window the quota binds."""
    return [bisect.bisect_left(times, t + 60.0) - i for i, t in enumerate(times)]


def admission_figures(admitted: list[float], arrivals: list[float]) -> dict[str, Any]:
    """The limiter's own view, and how late requests reached the server after admission
    (admissions and arrivals paired in order: approximate while requests overlap)."""
    if not admitted:
        return {"limiter_admissions": 0}
    lags = [a - b for a, b in zip(sorted(arrivals), admitted, strict=False)]
    return {
        "limiter_admissions": len(admitted),
        "limiter_max_in_any_60s": max(windows_60s(admitted)),
        "admission_to_arrival_s": summarize(lags),
    }


def rate_figures(arrivals: list[float], quota: float) -> dict[str, Any]:
    """Requests per minute from arrival times (epoch seconds)."""
    times = sorted(arrivals)
    if len(times) < 2:
        return {"requests": len(times)}
    span = times[-1] - times[0]
    windows = windows_60s(times)
    full = [count for count, t in zip(windows, times, strict=True) if t + 60.0 <= times[-1]]
    per_minute = [0] * (int(span // 60) + 1)
    for t in times:
        per_minute[int((t - times[0]) // 60)] += 1
    sustained = statistics.mean(full) if full else None
    overall = (len(times) - 1) / span * 60 if span > 0 else None
    return {
        "requests": len(times),
        "first_to_last_s": round(span, 1),
        "overall_rpm": round(overall, 1) if overall else None,
        "overall_pct_of_quota": round(100 * overall / quota, 1) if overall else None,
        "max_in_any_60s": max(windows),
        "max_60s_pct_of_quota": round(100 * max(windows) / quota, 1),
        "sustained_rpm": round(sustained, 1) if sustained else None,
        "sustained_pct_of_quota": round(100 * sustained / quota, 1) if sustained else None,
        "full_windows": len(full),
        "per_minute_from_first": per_minute,
        "over_quota": max(windows) > quota,
    }


def backfill(
    chats: int, rpm: float, latency_s: float, concurrency: int, max_runs: int
) -> dict[str, Any]:
    from sqlalchemy import text

    from cscoach_pipeline.reanalyze import launch_backfill
    from tests.support.fake_gemini import FakeGemini, RecordedRequest, Reply, default_responder

    arrivals: list[float] = []
    lock = threading.Lock()

    def slow(request: RecordedRequest) -> Reply:
        # Only generateContent reaches the default responder (models.get is answered first).
        with lock:
            arrivals.append(time.time())
        time.sleep(latency_s)
        return default_responder(request)

    overrides = {
        "concurrency": {"pools": {"default_limit": 8}, "runs": {"max_concurrent_runs": max_runs}}
    }
    env = {
        "CSCOACH_EXECUTOR": "celery",
        "CSCOACH_CELERY_BROKER_URL": BROKER_URL,
        "CSCOACH_REDIS_URL": LIMITS_URL,
        "CSCOACH_GEMINI_RPM": str(rpm),
        "CSCOACH_GEMINI_MAX_CONCURRENCY": str(concurrency),
        "GEMINI_API_KEY": API_KEY,
    }
    with (
        FakeGemini(api_key=API_KEY) as fake,
        tempfile.TemporaryDirectory(prefix="cscoach-bench-backfill-") as tmp,
        flushed_redis(BROKER_URL),
        flushed_redis(LIMITS_URL),
        postgres_deployment(Path(tmp), {**env, "GOOGLE_GEMINI_BASE_URL": fake.url}, overrides) as d,
        d,
    ):
        fake.set_default(slow)
        print(f"[backfill] seeding {chats} analysed consultations ...", flush=True)
        started = time.perf_counter()
        keys = seed_analysed(d, chats)
        seed_s = time.perf_counter() - started
        with celery_workers(d, 2, ALL_QUEUES), AdmissionLog(LIMITS_URL) as admissions:
            print(f"[backfill] reanalysing {len(keys)} with prompt v2 ...", flush=True)
            launched = time.time()
            backfill_id = launch_backfill(
                f"http://127.0.0.1:{d.webserver_port}", keys, prompt_version="v2"
            )
            timeout = 300 + len(keys) / rpm * 60 * 1.5
            status = d.wait_for(
                lambda: _backfill_done(d, backfill_id), timeout, f"backfill {backfill_id}"
            )
            runs = d.wait_for(lambda: _backfill_runs_finished(d, backfill_id), 120, "its runs")
            finished = time.time()
        with d.engine.connect() as conn:
            written = conn.execute(
                text("SELECT count(*) FROM analyses WHERE prompt_version = 'v2'")
            ).scalar_one()
        run_walls = [
            s.end_time - s.start_time
            for s in (d.instance.get_run_stats(r.run_id) for r in runs)
            if s.start_time and s.end_time
        ]
        with lock:
            times = list(arrivals)
    return {
        "measured_at": datetime.now(tz=UTC).isoformat(timespec="seconds"),
        "machine": CORES_NOTE.format(cores=os.cpu_count()),
        "consultations": len(keys),
        "seed_s": round(seed_s, 1),
        "quota_rpm": rpm,
        "latency_s": latency_s,
        "gemini_max_concurrency": concurrency,
        "celery_workers": f"2 x {','.join(ALL_QUEUES)} --concurrency=1",
        "max_concurrent_runs": max_runs,
        "gemini_pool_limit": 8,
        "backfill_status": status,
        "runs": len(runs),
        "failed_runs": sum(r.status != "SUCCESS" for r in runs),
        "run_wall_s": summarize(run_walls),
        "analyses_v2_written": written,
        "launch_to_done_s": round(finished - launched, 1),
        "first_request_after_launch_s": round(min(times) - launched, 1) if times else None,
        **rate_figures(times, rpm),
        **admission_figures(admissions.times, times),
        "arrivals_s": [round(t - times[0], 2) for t in sorted(times)],
        "admissions_s": [round(t - times[0], 2) for t in admissions.times] if times else [],
    }


_DONE = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}


def _backfill_done(d: DagsterDeployment, backfill_id: str) -> str | None:
    backfill = d.instance.get_backfill(backfill_id)
    return backfill.status.value if backfill and backfill.status.value in _DONE else None


def _backfill_runs_finished(d: DagsterDeployment, backfill_id: str) -> list[RunInfo] | None:
    runs = [r for r in d.runs() if r.tags.get("dagster/backfill") == backfill_id]
    return runs if runs and all(r.finished for r in runs) else None


def print_backfill(result: dict[str, Any]) -> None:
    print_table(
        f"B. Backfill quota ({result['machine']})",
        [result],
        [
            ("n", "consultations"),
            ("quota rpm", "quota_rpm"),
            ("runs", "runs"),
            ("failed", "failed_runs"),
            ("v2 rows", "analyses_v2_written"),
            ("requests", "requests"),
            ("span s", "first_to_last_s"),
            ("overall rpm", "overall_rpm"),
            ("max 60s", "max_in_any_60s"),
            ("max %", "max_60s_pct_of_quota"),
            ("sustained rpm", "sustained_rpm"),
            ("sustained %", "sustained_pct_of_quota"),
            ("over quota", "over_quota"),
            ("limiter max 60s", "limiter_max_in_any_60s"),
        ],
    )
    lag = result.get("admission_to_arrival_s")
    if lag:
        print(f"  admission -> arrival at the server: median {lag['median']} s, max {lag['max']} s")
    print(f"  requests per minute from the first: {result.get('per_minute_from_first')}")
    if not result.get("full_windows"):
        print(
            "  no full 60 s window: the batch fit inside one quota, so the limiter never "
            "bound; use --chats well above --rpm for a sustained rate"
        )


# ---------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["throughput", "backfill", "all"], default="all")
    parser.add_argument("--files", type=int, default=8, help="recordings in the batch (A)")
    parser.add_argument("--batch-chats", type=int, default=0, help="chats in the batch (A)")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--chats", type=int, default=300, help="consultations to reanalyse (B)")
    parser.add_argument("--rpm", type=float, default=120, help="shared Gemini quota (B)")
    parser.add_argument("--latency", type=float, default=0.3, help="fake Gemini reply, s (B)")
    parser.add_argument("--concurrency", type=int, default=4, help="Gemini requests in flight")
    parser.add_argument("--max-runs", type=int, default=3, help="max_concurrent_runs (B)")
    args = parser.parse_args()

    path = RESULTS_DIR / "deployment.json"
    results: dict[str, Any] = {}
    if path.exists():
        with contextlib.suppress(ValueError):
            results = json.loads(path.read_text())
    if args.part in ("throughput", "all"):
        results["throughput"] = throughput(args.files, args.batch_chats, args.configs)
        print_throughput(results["throughput"])
    if args.part in ("backfill", "all"):
        results["backfill"] = backfill(
            args.chats, args.rpm, args.latency, args.concurrency, args.max_runs
        )
        print_backfill(results["backfill"])
    print(f"\nsaved to {save_results('deployment', results, echo=False)}")


if __name__ == "__main__":
    main()
