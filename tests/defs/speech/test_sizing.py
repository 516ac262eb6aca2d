"""Proves how speech-to-text threads are sized to the machine.

Threads per engine are the cores shared by the STT steps that run at once: on the in-process
executor as many as the instance's `max_concurrent_runs` (read from the `dagster.yaml` in
DAGSTER_HOME, Dagster's default 10 when it sets none), on Celery the worker's concurrency (the
cores, unless CSCOACH_STT_CONCURRENCY says otherwise); a configured CSCOACH_STT_CPU_THREADS
wins, and an engine never gets fewer than one thread. The built resource carries the result.
A burst of new recordings is spread over the recordings transcribed at once: in process the
runs at once capped by the cores, on Celery the runs at once; the bucket resource carries it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cscoach_pipeline.defs.ingest import definitions as ingest
from cscoach_pipeline.defs.speech import definitions as speech
from cscoach_pipeline.defs.speech import sizing
from cscoach_pipeline.defs.speech.sizing import (
    available_cores,
    cgroup_cpu_quota,
    concurrent_stt_steps,
    instance_max_concurrent_runs,
    stt_threads,
    transcriptions_at_once,
)
from cscoach_pipeline.settings import PROJECT_ROOT, load_settings


def _home(tmp_path: Path, text: str) -> Path:
    (tmp_path / "dagster.yaml").write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("cores", "steps", "configured", "expected"),
    [(2, 2, 0, 1), (8, 2, 0, 4), (16, 3, 0, 5), (2, 10, 0, 1), (2, 2, 3, 3), (1, 0, 0, 1)],
)
def test_threads_are_an_even_share_of_the_cores(
    cores: int, steps: int, configured: int, expected: int
) -> None:
    assert stt_threads(configured, cores, steps) == expected


def test_the_shipped_instance_runs_three_at_once(tmp_path: Path) -> None:
    home = _home(tmp_path, (PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())

    assert instance_max_concurrent_runs(home) == 3
    assert concurrent_stt_steps("in_process", 0, home) == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("concurrency:\n  runs:\n    max_concurrent_runs: 6\n", 6),
        ("run_queue:\n  max_concurrent_runs: 3\n", 3),
        ("run_coordinator:\n  config:\n    max_concurrent_runs: 4\n", 4),
        ("telemetry:\n  enabled: false\n", 10),  # Dagster's default
        ("concurrency:\n  runs:\n    max_concurrent_runs: -1\n", None),  # unlimited
        ("concurrency: [unclosed\n", None),
    ],
)
def test_max_concurrent_runs_is_read_from_dagster_yaml(
    tmp_path: Path, text: str, expected: int | None
) -> None:
    assert instance_max_concurrent_runs(_home(tmp_path, text)) == expected


def test_without_an_instance_or_on_celery_the_cores_are_the_steps(tmp_path: Path) -> None:
    assert instance_max_concurrent_runs(None) is None
    assert instance_max_concurrent_runs(tmp_path) is None  # no dagster.yaml
    assert concurrent_stt_steps("in_process", 0, None) == available_cores()
    assert concurrent_stt_steps("celery", 0, _home(tmp_path, "")) == available_cores()
    assert concurrent_stt_steps("celery", 3, None) == 3


def test_recordings_transcribed_at_once_are_runs_capped_by_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sizing, "available_cores", lambda: 2)
    shipped = _home(tmp_path, (PROJECT_ROOT / "deploy" / "dagster.yaml").read_text())
    assert transcriptions_at_once("in_process", shipped) == 2  # 3 runs at once, 2 cores
    assert transcriptions_at_once("celery", shipped) == 3  # the STT workers are elsewhere
    assert transcriptions_at_once("in_process", None) == 2
    monkeypatch.setenv("DAGSTER_HOME", str(shipped))
    assert ingest.resources(load_settings())["bucket"].transcriptions_at_once == 2


def test_the_built_resource_carries_the_sized_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = _home(tmp_path, "concurrency:\n  runs:\n    max_concurrent_runs: 1\n")
    monkeypatch.setattr(speech, "available_cores", lambda: 6)

    auto = speech.resources(load_settings(dagster_home=home))["speech_to_text"]
    forced = speech.resources(load_settings(dagster_home=home, stt_cpu_threads=2))
    celery = speech.resources(
        load_settings(
            dagster_home=home, executor="celery", celery_broker_url="redis://x", stt_concurrency=3
        )
    )

    assert auto.cpu_threads == 6
    assert forced["speech_to_text"].cpu_threads == 2
    assert celery["speech_to_text"].cpu_threads == 2


def test_stt_settings_reach_the_resource() -> None:
    built = speech.resources(
        load_settings(
            stt_batch_size="4", stt_batch_beam_size="2", stt_batch_min_audio_s="30",
            stt_beam_size="3", stt_device="cpu", stt_compute_type="float32",
        )
    )["speech_to_text"]  # fmt: skip

    assert (built.batch_size, built.batch_beam_size, built.batch_min_audio_s) == (4, 2, 30.0)
    assert (built.beam_size, built.device, built.compute_type) == (3, "cpu", "float32")


@pytest.mark.parametrize(
    ("text", "expected"),
    [("max 100000\n", None), ("200000 100000\n", 2), ("150000 100000\n", 2),
     ("50000 100000\n", 1), ("", None)],
)  # fmt: skip
def test_a_container_cpu_quota_caps_the_cores(
    tmp_path: Path, text: str, expected: int | None
) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(text)

    assert cgroup_cpu_quota(cpu_max) == expected
    assert cgroup_cpu_quota(tmp_path / "absent") is None
