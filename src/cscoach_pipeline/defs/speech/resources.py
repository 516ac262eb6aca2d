"""The speech-to-text resource: which Whisper engine and model, loaded once per process."""

from __future__ import annotations

from functools import lru_cache

from dagster import ConfigurableResource
from pydantic import Field

from cscoach_pipeline.defs.speech.transcribe import (
    ENGINES,
    FasterWhisperEngine,
    OpenAIWhisperEngine,
    SpeechToTextEngine,
    resolve_whisper_model,
)


@lru_cache(maxsize=4)
def _load_engine(engine: str, model: str, compute_type: str, beam_size: int) -> SpeechToTextEngine:
    if engine not in ENGINES:
        raise ValueError(
            f"unknown CSCOACH_STT_ENGINE {engine!r}: choose one of {', '.join(sorted(ENGINES))}"
        )
    if engine == FasterWhisperEngine.name:
        return FasterWhisperEngine(model, compute_type=compute_type, beam_size=beam_size)
    return OpenAIWhisperEngine(model, beam_size=beam_size)


class SpeechToTextResource(ConfigurableResource):
    engine: str = Field(default="faster-whisper", description="faster-whisper | openai-whisper")
    model: str = Field(
        default="",
        description="Whisper model name (downloaded) or local path; empty = bundled tiny.en",
    )
    compute_type: str = Field(default="int8", description="faster-whisper compute type on CPU")
    beam_size: int = 5
    language: str = Field(default="", description="force a language code; empty = detect")
    agent_channel: int = Field(default=0, description="stereo channel carrying the agent (0/1)")

    @property
    def model_path(self) -> str:
        return resolve_whisper_model(self.model)

    def load(self) -> SpeechToTextEngine:
        return _load_engine(self.engine, self.model_path, self.compute_type, self.beam_size)
