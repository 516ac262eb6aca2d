"""The speech-to-text resource: which engine and model, built from the engine registry and
loaded once per process."""

from __future__ import annotations

from functools import lru_cache

from dagster import ConfigurableResource
from pydantic import Field

from cscoach_pipeline.defs.speech.engines import (
    EngineSettings,
    SpeechToTextEngine,
    available_engines,
    create_engine,
)
from cscoach_pipeline.defs.speech.engines.models import resolve_model


@lru_cache(maxsize=4)
def _load_engine(engine: str, settings: EngineSettings) -> SpeechToTextEngine:
    # Loading a model takes seconds and hundreds of MB: one per process and settings.
    return create_engine(engine, settings)


class SpeechToTextResource(ConfigurableResource):
    engine: str = Field(default="faster-whisper", description=" | ".join(available_engines()))
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
        """What gets loaded: a local path, or a model name the engine downloads."""
        return resolve_model(self.model).source

    @property
    def model_name(self) -> str:
        """What transcripts and consultations.stt_model record (tiny.en, small, a folder name)."""
        return resolve_model(self.model).name

    def load(self) -> SpeechToTextEngine:
        settings = EngineSettings(
            model=self.model_path, compute_type=self.compute_type, beam_size=self.beam_size
        )
        return _load_engine(self.engine, settings)


class MediaResource(ConfigurableResource):
    """How originals become audio: ffmpeg's time limit per probe or extraction."""

    ffmpeg_timeout_s: float = Field(default=900.0, gt=0, description="seconds per ffmpeg call")
