"""The speech-to-text resource: which engine and model, built from the engine registry and
loaded once per process."""

from __future__ import annotations

import threading
import time

from dagster import ConfigurableResource
from pydantic import Field

from cscoach_pipeline.defs.speech.diarization import (
    DiarizationUnavailable,
    ResemblyzerEmbedder,
    VoiceEmbedder,
)
from cscoach_pipeline.defs.speech.engines import (
    EngineSettings,
    SpeechToTextEngine,
    available_engines,
    create_engine,
)
from cscoach_pipeline.defs.speech.engines.models import resolve_model

# Loading a model takes seconds and hundreds of MB: one per process and settings, kept for
# the life of the process, so a long-lived Celery worker loads it once for every consultation.
_ENGINES: dict[tuple[str, EngineSettings], tuple[SpeechToTextEngine, float]] = {}
_ENGINES_LOCK = threading.Lock()
MAX_LOADED_ENGINES = 4


def _load_engine(engine: str, settings: EngineSettings) -> tuple[SpeechToTextEngine, float]:
    with _ENGINES_LOCK:
        key = (engine, settings)
        if key not in _ENGINES:
            if len(_ENGINES) >= MAX_LOADED_ENGINES:
                _ENGINES.pop(next(iter(_ENGINES)))
            started = time.perf_counter()
            built = create_engine(engine, settings)
            _ENGINES[key] = (built, time.perf_counter() - started)
        return _ENGINES[key]


# The voice encoder likewise: one per process and thread count (or why it cannot load).
_EMBEDDERS: dict[int, VoiceEmbedder | DiarizationUnavailable] = {}


def _load_embedder(threads: int) -> VoiceEmbedder:
    with _ENGINES_LOCK:
        if threads not in _EMBEDDERS:
            try:
                _EMBEDDERS[threads] = ResemblyzerEmbedder(threads)
            except DiarizationUnavailable as exc:
                _EMBEDDERS[threads] = exc
        loaded = _EMBEDDERS[threads]
    if isinstance(loaded, DiarizationUnavailable):
        raise loaded
    return loaded


class SpeechToTextResource(ConfigurableResource):
    engine: str = Field(default="faster-whisper", description=" | ".join(available_engines()))
    model: str = Field(
        default="",
        description="Whisper model name (downloaded) or local path; empty = bundled tiny.en",
    )
    compute_type: str = Field(default="int8", description="faster-whisper compute type on CPU")
    beam_size: int = Field(default=5, description="beam of sequential decoding")
    device: str = Field(default="auto", description="auto (GPU when visible) | cpu | cuda")
    cpu_threads: int = Field(default=0, description="threads per engine; 0 = library default")
    batch_size: int = Field(default=0, description="chunks decoded at once; 0 auto, 1 off")
    batch_beam_size: int = Field(default=1, description="beam of batched decoding")
    batch_min_audio_s: float = Field(default=60.0, description="shorter channels: sequential")
    language: str = Field(default="", description="force a language code; empty = detect")
    agent_channel: int = Field(
        default=0, description="stereo channel carrying the agent (0/1): a hint, or forced"
    )
    speaker_roles: str = Field(
        default="detect",
        description="detect: what they say decides who is the agent (agent_channel a prior) "
        "| channel: agent_channel is the agent, always",
    )
    diarization: str = Field(default="auto", description="auto: mono speakers | off")
    max_speakers: int = Field(default=3, description="most speakers diarization finds")

    @property
    def model_path(self) -> str:
        """What gets loaded: a local path, or a model name the engine downloads."""
        return resolve_model(self.model).source

    @property
    def model_name(self) -> str:
        """What transcripts and consultations.stt_model record (tiny.en, small, a folder name)."""
        return resolve_model(self.model).name

    @property
    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            model=self.model_path,
            compute_type=self.compute_type,
            beam_size=self.beam_size,
            device=self.device,
            cpu_threads=self.cpu_threads,
            batch_size=self.batch_size,
            batch_beam_size=self.batch_beam_size,
            batch_min_audio_s=self.batch_min_audio_s,
        )

    def is_loaded(self) -> bool:
        """Whether this process already holds the engine (no model load on the next use)."""
        return (self.engine, self.engine_settings) in _ENGINES

    def load(self) -> SpeechToTextEngine:
        return _load_engine(self.engine, self.engine_settings)[0]

    def voice_embedder(self) -> VoiceEmbedder:
        """The mono diarization's voice encoder; DiarizationUnavailable when off or absent."""
        if self.diarization == "off":
            raise DiarizationUnavailable("mono diarization is off (CSCOACH_DIARIZATION=off)")
        return _load_embedder(max(1, self.cpu_threads))

    def load_seconds(self) -> float:
        """How long loading this process's engine took (once per process and settings)."""
        return _load_engine(self.engine, self.engine_settings)[1]


class MediaResource(ConfigurableResource):
    """How originals become audio: ffmpeg's time limit per probe or extraction."""

    ffmpeg_timeout_s: float = Field(default=900.0, gt=0, description="seconds per ffmpeg call")
