"""Speech: audio from the original (ffmpeg), then the raw transcript (Whisper or text)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from cscoach_pipeline.defs.speech.assets import consultation_audio, raw_transcript
from cscoach_pipeline.defs.speech.resources import MediaResource, SpeechToTextResource
from cscoach_pipeline.defs.speech.sizing import available_cores, concurrent_stt_steps, stt_threads
from cscoach_pipeline.settings import Settings


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(assets=[consultation_audio, raw_transcript])


def resources(settings: Settings) -> dict[str, Any]:
    steps = concurrent_stt_steps(settings.executor, settings.stt_concurrency, settings.dagster_home)
    return {
        "media": MediaResource(ffmpeg_timeout_s=settings.ffmpeg_timeout_s),
        "speech_to_text": SpeechToTextResource(
            engine=settings.stt_engine,
            model=settings.whisper_model,
            language=settings.whisper_language,
            agent_channel=settings.agent_channel,
            speaker_roles=settings.speaker_roles,
            diarization=settings.diarization,
            max_speakers=settings.max_speakers,
            device=settings.stt_device,
            compute_type=settings.stt_compute_type,
            beam_size=settings.stt_beam_size,
            cpu_threads=stt_threads(settings.stt_cpu_threads, available_cores(), steps),
            batch_size=settings.stt_batch_size,
            batch_beam_size=settings.stt_batch_beam_size,
            batch_min_audio_s=settings.stt_batch_min_audio_s,
        ),
    }
