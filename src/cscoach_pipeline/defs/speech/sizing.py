"""How many CPU threads a speech-to-text engine gets: the machine's cores shared by the STT
steps that run at once, so two runs on two cores do not start eight CTranslate2 threads.

STT steps at once are, unless set (CSCOACH_STT_CONCURRENCY): on the in-process executor, the
instance's `max_concurrent_runs` (each run transcribes one recording at a time); on Celery,
the worker's concurrency, which is the number of cores unless `make worker CONCURRENCY=n`
sets both."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import yaml

# Dagster's own default when dagster.yaml sets no limit.
DAGSTER_DEFAULT_MAX_CONCURRENT_RUNS = 10


def available_cores() -> int:
    """Cores this process may use: its CPU set, capped by a container's CPU quota (cgroup v2
    `cpu.max`, as `docker --cpus` and Kubernetes CPU limits set it), never the host's count."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(Path("/sys/fs/cgroup/cpu.max"))
    return max(1, min(cores, quota)) if quota else cores


def cgroup_cpu_quota(cpu_max: Path) -> int | None:
    """Whole cores a cgroup v2 `cpu.max` ("200000 100000") allows; None when unlimited."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.ceil(int(quota) / int(period)))


def instance_max_concurrent_runs(dagster_home: Path | None) -> int | None:
    """`max_concurrent_runs` of the instance in `dagster_home`, None when there is none."""
    if dagster_home is None:
        return None
    try:
        config: Any = yaml.safe_load((dagster_home / "dagster.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    runs = (config.get("concurrency") or {}).get("runs") or {}
    queue = config.get("run_queue") or (config.get("run_coordinator") or {}).get("config") or {}
    value = runs.get("max_concurrent_runs", queue.get("max_concurrent_runs"))
    if value is None:
        return DAGSTER_DEFAULT_MAX_CONCURRENT_RUNS
    try:
        return int(value) if int(value) > 0 else None  # -1: unlimited
    except (TypeError, ValueError):
        return None


def concurrent_stt_steps(executor: str, configured: int, dagster_home: Path | None) -> int:
    if configured > 0:
        return configured
    cores = available_cores()
    if executor == "celery":
        return cores  # Celery's default worker concurrency
    return instance_max_concurrent_runs(dagster_home) or cores


def transcriptions_at_once(executor: str, dagster_home: Path | None) -> int:
    """Recordings usefully transcribed at once, which a burst of new recordings is spread over:
    in process, the runs at once but no more than the cores (a third run on two cores only
    slows the other two: measured 98 s against 78 s for 8 calls); on Celery, the runs at once
    (the STT workers are elsewhere)."""
    runs = instance_max_concurrent_runs(dagster_home) or available_cores()
    return runs if executor == "celery" else min(runs, available_cores())


def stt_threads(configured: int, cores: int, concurrent_steps: int) -> int:
    """Threads per engine: as configured, else an even share of the cores (at least one)."""
    if configured > 0:
        return configured
    return max(1, cores // max(1, concurrent_steps))
