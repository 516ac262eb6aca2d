"""Mono diarization on this machine: its cost per audio minute next to speech-to-text's, and
its time-weighted speaker attribution accuracy, on generated two-voice calls (espeak-ng) of
the test scripts. `python -m benchmarks.diarization_benchmark` (part of `make bench`)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.results import save_results
from cscoach_pipeline.defs.speech.resources import SpeechToTextResource
from cscoach_pipeline.defs.speech.transcribe import SpeakerSettings, transcribe_recording
from tests.support import media_factory as mf
from tests.support.scripts import GOOD_CALL, LONG_CALL
from tests.support.speakers import attribution_accuracy


def main() -> None:
    stt = SpeechToTextResource(cpu_threads=2)
    engine = stt.load()
    embedder = stt.voice_embedder()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        # Warm both models up first: the figures are per audio minute, not per model load.
        warm = mf.speak("Warming up the models.", mf.AGENT_VOICE, Path(tmp) / "warm.wav")
        transcribe_recording(engine, warm[None, :])
        embedder.windows(np.concatenate([warm, warm]))
        for name, script in (("good_call", GOOD_CALL), ("long_call", LONG_CALL)):
            agent, customer = mf.dialogue_tracks(script, Path(tmp) / name)
            mono = agent + customer
            minutes = len(mono) / mf.RATE / 60
            started = time.perf_counter()
            transcribe_recording(engine, mono[None, :])  # speakers unknown: STT alone
            stt_s = time.perf_counter() - started
            started = time.perf_counter()
            embedder.windows(mono)
            embed_s = time.perf_counter() - started
            who = SpeakerSettings(embedder=lambda: embedder)
            started = time.perf_counter()
            diarized = transcribe_recording(engine, mono[None, :], speakers=who)
            total_s = time.perf_counter() - started
            results.append(
                {
                    "recording": name,
                    "audio_min": round(minutes, 2),
                    "stt_s_per_audio_min": round(stt_s / minutes, 2),
                    "diarization_s_per_audio_min": round(embed_s / minutes, 2),
                    "stt_plus_diarization_s_per_audio_min": round(total_s / minutes, 2),
                    "speakers": diarized.speaker_count,
                    "attribution_accuracy": round(
                        attribution_accuracy(diarized, agent, customer), 3
                    ),
                    "role_confidence": diarized.speaker_role_confidence,
                }
            )
    save_results("diarization", results)


if __name__ == "__main__":
    main()
