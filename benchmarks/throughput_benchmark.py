"""Benchmark (not a test): speech-to-text speed and batch throughput on this machine.

1. STT, interleaved repetitions on a ~280 s two-speaker call (espeak-ng, LONG_CALL), stereo
   and its mono mix, each configuration's word error rate against the script (Whisper's own
   English normalizer, so "$112" and "one hundred and twelve dollars" agree):
   - the project's transcription vs raw faster-whisper with the same settings (the ratio is
     what the wrapper costs);
   - the previous configuration (sequential, CTranslate2's default 4 threads) vs threads
     sized to the machine vs batched decoding, for tiny.en and, if installed, base;
   - two processes at once (as the daemon runs two runs), aggregate audio-s per wall-s.
2. Batch efficiency with the real `dagster dev` and the shipped dagster.yaml: N long calls
   dropped at once; the STT-bound limit is their audio divided by the measured two-process
   throughput of the deployed configuration; efficiency = limit / drop-to-last-succeeded.
3. Many chats dropped at once: time from the drop to the last `succeeded`.

Usage: `make bench` (with the pipeline benchmark) or
`python -m benchmarks.throughput_benchmark [--calls 8] [--chats 200] [--skip-dagster]`.
Results print and are saved to bench-results/throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import jiwer
import numpy as np

from benchmarks.pipeline_benchmark import (
    _run_overheads,
    _wait_for_final,
    dagster_dev,
    multilingual_base_path,
)
from benchmarks.results import save_results, summarize
from cscoach_pipeline.defs.speech.engines import FasterWhisperEngine
from cscoach_pipeline.defs.speech.engines.faster_whisper import VAD_PARAMETERS
from cscoach_pipeline.defs.speech.engines.models import bundled_model_path
from cscoach_pipeline.defs.speech.media import SAMPLE_RATE, read_wav
from cscoach_pipeline.defs.speech.sizing import available_cores, stt_threads
from cscoach_pipeline.defs.speech.transcribe import transcribe_recording
from tests.support import media_factory as mf
from tests.support.scripts import LONG_CALL

ROOT = Path(__file__).resolve().parents[1]
# Processes transcribing at once in the STT-bound limit: one per core of this 2-core machine
# (the shipped dagster.yaml runs 3 at once so that a third launches while two transcribe).
CONCURRENT_RUNS = 2


def _normalizer() -> Any:
    try:  # Whisper's normalizer (numbers, spellings), installed with the openai-whisper extra
        from whisper.normalizers import EnglishTextNormalizer

        return EnglishTextNormalizer()
    except ImportError:
        return lambda text: " ".join(jiwer.RemovePunctuation()(text.lower()).split())


NORMALIZE = _normalizer()


def long_call(cache: Path) -> tuple[Path, Path]:
    stereo, mono = cache / "long_stereo.wav", cache / "long_mono.wav"
    if not stereo.exists():
        agent, customer = mf.dialogue_tracks(LONG_CALL, cache / "long-lines")
        mf.write_wav(stereo, [agent, customer])
        mf.write_wav(mono, [agent + customer])
    return stereo, mono


def _references() -> dict[str, str]:
    said = {
        who: [line.text for line in LONG_CALL if line.speaker == who]
        for who in ("agent", "customer")
    }
    return {
        "agent": NORMALIZE(" ".join(said["agent"])),
        "customer": NORMALIZE(" ".join(said["customer"])),
        "all": NORMALIZE(" ".join(line.text for line in LONG_CALL)),
    }


def _wer(references: list[str], hypotheses: list[str]) -> float:
    return round(100 * float(jiwer.wer(references, [NORMALIZE(h) for h in hypotheses])), 2)


# ---------------------------------------------------------------------------------- STT


def _configurations(base: str | None) -> list[dict[str, Any]]:
    sized = stt_threads(0, available_cores(), CONCURRENT_RUNS)
    models = [("tiny.en", bundled_model_path() or "")] + ([("base", base)] if base else [])
    configs: list[dict[str, Any]] = []
    for label, path in models:
        configs += [
            {"name": f"{label} previous (sequential, 4 threads)", "model": path,
             "batch_size": 1, "cpu_threads": 0},
            {"name": f"{label} sequential, {sized} thread(s)", "model": path,
             "batch_size": 1, "cpu_threads": sized},
            {"name": f"{label} batched 8 beam 1, {sized} thread(s)", "model": path,
             "batch_size": 8, "cpu_threads": sized, "batch_min_audio_s": 0.0},
        ]  # fmt: skip
    return configs


def _engine(config: dict[str, Any]) -> FasterWhisperEngine:
    return FasterWhisperEngine(
        config["model"],
        cpu_threads=config["cpu_threads"],
        batch_size=config["batch_size"],
        batch_min_audio_s=config.get("batch_min_audio_s", 60.0),
    )


def _raw_faster_whisper(engine: FasterWhisperEngine, audio: np.ndarray) -> list[str]:
    """What faster-whisper gives with the engine's sequential settings, without the project."""
    texts = []
    for channel in audio:
        segments, _ = engine._model.transcribe(
            np.ascontiguousarray(channel),
            language="en",
            beam_size=engine.beam_size,
            vad_filter=True,
            vad_parameters=dict(VAD_PARAMETERS),
            word_timestamps=True,
            condition_on_previous_text=False,
        )
        texts.append(" ".join(s.text for s in segments))
    return texts


def stt_comparison(
    stereo_path: Path, mono_path: Path, base: str | None, reps: int
) -> dict[str, Any]:
    stereo, mono = read_wav(stereo_path), read_wav(mono_path)
    refs = _references()
    configs = _configurations(base)
    engines = {c["name"]: _engine(c) for c in configs}
    wall: dict[str, dict[str, list[float]]] = {
        c["name"]: {"stereo": [], "mono": []} for c in configs
    }
    wer: dict[str, dict[str, float]] = {}
    ratio: list[float] = []
    for _ in range(reps):  # interleaved: every configuration once per repetition
        for config in configs:
            engine = engines[config["name"]]
            for kind, audio in (("stereo", stereo), ("mono", mono)):
                started = time.perf_counter()
                transcript = transcribe_recording(engine, audio)
                wall[config["name"]][kind].append(time.perf_counter() - started)
                if kind == "stereo":
                    said = [
                        " ".join(s.text for s in transcript.segments if s.channel == c)
                        for c in (0, 1)
                    ]
                    error = _wer([refs["agent"], refs["customer"]], said)
                else:
                    error = _wer([refs["all"]], [" ".join(s.text for s in transcript.segments)])
                wer.setdefault(config["name"], {})[kind] = error
            if "previous" in config["name"] and config["model"] == (bundled_model_path() or ""):
                started = time.perf_counter()
                _raw_faster_whisper(engine, stereo)
                raw = time.perf_counter() - started
                ratio.append(float(np.median(wall[config["name"]]["stereo"][-1:])) / raw)
    audio_s = {"stereo": stereo.shape[1] / SAMPLE_RATE, "mono": mono.shape[1] / SAMPLE_RATE}
    rows = []
    for config in configs:
        name = config["name"]
        row: dict[str, Any] = {"configuration": name}
        for kind in ("stereo", "mono"):
            median = float(np.median(wall[name][kind]))
            row[f"{kind}_wall_s"] = round(median, 2)
            row[f"{kind}_audio_s_per_wall_s"] = round(audio_s[kind] / median, 1)
            row[f"{kind}_wer_pct"] = wer[name][kind]
        rows.append(row)
    return {
        "audio_s": round(audio_s["stereo"], 1),
        "project_vs_raw_faster_whisper_ratio": summarize(ratio),
        "single_process": rows,
    }


def _concurrent_worker(config: dict[str, Any], audio_path: str, start_at: float) -> None:
    """One of the processes of `concurrent_throughput` (run with --worker)."""
    engine = _engine(config)
    audio = read_wav(Path(audio_path))
    while time.time() < start_at:
        time.sleep(0.005)
    started = time.perf_counter()
    transcribe_recording(engine, audio)
    print(json.dumps({"wall_s": time.perf_counter() - started}))


def concurrent_throughput(stereo_path: Path, base: str | None, reps: int) -> list[dict[str, Any]]:
    """CONCURRENT_RUNS processes transcribe the stereo call at the same moment."""
    audio_s = read_wav(stereo_path).shape[1] / SAMPLE_RATE
    configs = _configurations(base)
    results: dict[str, list[float]] = {c["name"]: [] for c in configs}
    for _ in range(reps):
        for config in configs:
            start_at = time.time() + 6.0  # model loads first, then all start together
            procs = [
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.throughput_benchmark",
                        "--worker",
                        json.dumps(config),
                        str(stereo_path),
                        str(start_at),
                    ],
                    cwd=ROOT,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for _ in range(CONCURRENT_RUNS)
            ]
            walls = [
                json.loads(p.communicate()[0].strip().splitlines()[-1])["wall_s"] for p in procs
            ]
            results[config["name"]].append(CONCURRENT_RUNS * audio_s / max(walls))
    return [
        {"configuration": name, "processes": CONCURRENT_RUNS,
         "audio_s_per_wall_s": round(float(np.median(values)), 1)}
        for name, values in results.items()
    ]  # fmt: skip


# ------------------------------------------------------------------------- Dagster batches


def _drop_all(incoming: Path, files: dict[str, bytes]) -> tuple[float, set[str]]:
    """Write every file under a temporary name, then rename them all at once (as a mover
    does), so the clock starts when the last one is complete."""
    staging = incoming.parent / "staging"
    staging.mkdir(exist_ok=True)
    for name, data in files.items():
        (staging / name).write_bytes(data)
    dropped = time.time()
    for name in files:
        os.replace(staging / name, incoming / name)
    return dropped, {f"incoming/{name}" for name in files}


def long_calls_batch(stereo_path: Path, calls: int, port: int, limit_rate: float) -> dict[str, Any]:
    audio = read_wav(stereo_path)
    files = {}
    for index in range(calls):
        # Distinct content per file (a few samples of silence more), or they would be duplicates.
        tail = np.zeros((audio.shape[0], 16 * (index + 1)), dtype=np.float32)
        path = stereo_path.parent / f"call-{index:02d}.wav"
        mf.write_wav(path, list(np.concatenate([audio, tail], axis=1)))
        files[f"call-{index:02d}.wav"] = path.read_bytes()
    total_audio = calls * audio.shape[1] / SAMPLE_RATE
    with dagster_dev(port) as (incoming, warehouse, home):
        dropped, keys = _drop_all(incoming, files)
        done = _wait_for_final(warehouse, keys, timeout_s=1800)
        overheads = _run_overheads(home)
        timeline = _timeline(home, dropped)
    elapsed = max(t for _, t in done.values()) - dropped if done else None
    limit = total_audio / limit_rate
    return {
        "calls": calls,
        "audio_s": round(total_audio, 1),
        "statuses": sorted({status for status, _ in done.values()}),
        "drop_to_last_succeeded_s": round(elapsed, 1) if elapsed else None,
        "stt_bound_limit_s": round(limit, 1),
        "efficiency_pct": round(100 * limit / elapsed, 1) if elapsed else None,
        **overheads,
        **timeline,
    }


def _timeline(home: Path, dropped: float) -> dict[str, Any]:
    """Where the time of a batch went: drop to the first run queued (the sensor), the
    transcription steps' start and end, and the last run's end."""
    from dagster import DagsterEventType, DagsterInstance

    os.environ["DAGSTER_HOME"] = str(home)
    enqueued, stt_start, stt_end, ends, runs = [], [], [], [], 0
    with DagsterInstance.get() as instance:
        for record in instance.get_run_records():
            runs += 1
            run_id = record.dagster_run.run_id
            for event in instance.all_logs(run_id):
                kind = event.dagster_event.event_type if event.dagster_event else None
                if kind == DagsterEventType.RUN_ENQUEUED:
                    enqueued.append(event.timestamp - dropped)
                elif kind in (DagsterEventType.RUN_SUCCESS, DagsterEventType.RUN_FAILURE):
                    ends.append(event.timestamp - dropped)
            for step in instance.get_run_step_stats(run_id):
                if step.step_key == "raw_transcript" and step.start_time and step.end_time:
                    stt_start.append(step.start_time - dropped)
                    stt_end.append(step.end_time - dropped)
    return {
        "runs": runs,
        "first_run_queued_after_drop_s": round(min(enqueued), 1) if enqueued else None,
        "first_stt_start_s": round(min(stt_start), 1) if stt_start else None,
        "last_stt_end_s": round(max(stt_end), 1) if stt_end else None,
        "last_run_end_s": round(max(ends), 1) if ends else None,
    }


def chat(index: int) -> bytes:
    return (
        f"Agent: Thank you for contacting Northwind, this is chat number {index}. How can I help?\n"
        f"Customer: My order {index} has not arrived and I am worried.\n"
        "Agent: I am sorry about that. I have checked and it will arrive tomorrow.\n"
        "Customer: Thank you, that is all.\n"
        "Agent: You are welcome, have a great day.\n"
    ).encode()


def chats_batch(count: int, port: int) -> dict[str, Any]:
    files = {f"chat-{index:04d}.txt": chat(index) for index in range(count)}
    with dagster_dev(port) as (incoming, warehouse, home):
        dropped, keys = _drop_all(incoming, files)
        done = _wait_for_final(warehouse, keys, timeout_s=1800)
        overheads = _run_overheads(home)
    elapsed = max(t for _, t in done.values()) - dropped if done else None
    return {
        "chats": count,
        "settled": len(done),
        "statuses": sorted({status for status, _ in done.values()}),
        "drop_to_last_succeeded_s": round(elapsed, 1) if elapsed else None,
        "per_chat_s": round(elapsed / count, 2) if elapsed else None,
        **overheads,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        _concurrent_worker(json.loads(sys.argv[2]), sys.argv[3], float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=8)
    parser.add_argument("--chats", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--port", type=int, default=3121)
    parser.add_argument("--skip-stt", action="store_true")
    parser.add_argument("--skip-dagster", action="store_true")
    parser.add_argument(
        "--limit-rate", type=float, help="audio-s per wall-s of the STT-bound limit (else measured)"
    )
    args = parser.parse_args()
    cache = Path(tempfile.mkdtemp(prefix="cscoach-throughput-media-"))
    stereo, mono = long_call(cache)
    base = multilingual_base_path(cache)
    results: dict[str, Any] = {"machine": f"{available_cores()} cores"}
    deployed = stt_threads(0, available_cores(), CONCURRENT_RUNS)
    limit_rate = args.limit_rate
    if not args.skip_stt:
        results["stt"] = stt_comparison(stereo, mono, base, args.reps)
        results["concurrent"] = concurrent_throughput(stereo, base, args.reps)
        deployed_name = f"tiny.en sequential, {deployed} thread(s)"
        limit_rate = next(
            r["audio_s_per_wall_s"]
            for r in results["concurrent"]
            if r["configuration"] == deployed_name
        )
    if not args.skip_dagster:
        if limit_rate is None:
            limit_rate = concurrent_throughput(stereo, None, 1)[1]["audio_s_per_wall_s"]
        if args.calls:
            results["long_calls"] = long_calls_batch(stereo, args.calls, args.port, limit_rate)
        if args.chats:
            results["chats"] = chats_batch(args.chats, args.port + 1)
    save_results("throughput", results)
    shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    main()
