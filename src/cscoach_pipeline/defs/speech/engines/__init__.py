"""Speech-to-text engines by name: the registry the resource builds engines from and the
settings validate CSCOACH_STT_ENGINE against.

Adding an engine is one module here (a SpeechToTextEngine subclass) plus one line in ENGINES.
Importing this package is cheap: engines import their library (CTranslate2, torch) only when
constructed."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from cscoach_pipeline.defs.speech.engines.base import (
    EngineFactory,
    EngineSettings,
    Recognition,
    RecognizedSegment,
    SpeechToTextEngine,
)
from cscoach_pipeline.defs.speech.engines.faster_whisper import FasterWhisperEngine
from cscoach_pipeline.defs.speech.engines.openai_whisper import OpenAIWhisperEngine

# Read-only so nothing outside this file can change which engines exist.
ENGINES: Mapping[str, EngineFactory] = MappingProxyType(
    {
        FasterWhisperEngine.name: FasterWhisperEngine.from_settings,
        OpenAIWhisperEngine.name: OpenAIWhisperEngine.from_settings,
    }
)


def available_engines() -> tuple[str, ...]:
    """The known engine names, sorted: the valid values of CSCOACH_STT_ENGINE."""
    return tuple(sorted(ENGINES))


def create_engine(name: str, settings: EngineSettings) -> SpeechToTextEngine:
    """Build the named engine; an unknown name fails with the list of known ones."""
    try:
        factory = ENGINES[name]
    except KeyError:
        raise ValueError(
            f"unknown CSCOACH_STT_ENGINE {name!r}: choose one of {', '.join(available_engines())}"
        ) from None
    return factory(settings)


__all__ = [
    "ENGINES",
    "EngineFactory",
    "EngineSettings",
    "FasterWhisperEngine",
    "OpenAIWhisperEngine",
    "Recognition",
    "RecognizedSegment",
    "SpeechToTextEngine",
    "available_engines",
    "create_engine",
]
