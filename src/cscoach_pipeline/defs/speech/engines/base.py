"""The speech-to-text engine interface: what an engine is given (EngineSettings), what it
returns (Recognition of RecognizedSegments), and the pause splitting Whisper engines share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np


@dataclass(frozen=True)
class RecognizedWord:
    start_s: float
    end_s: float
    text: str  # as Whisper gives it, with its leading space
    probability: float


@dataclass(frozen=True)
class RecognizedSegment:
    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    # Mean word probability when the engine gives word timings; else from avg_logprob.
    word_confidence: float | None = None
    # The words with their timings, where the engine gives them (mono diarization uses them).
    words: tuple[RecognizedWord, ...] = ()


@dataclass(frozen=True)
class Recognition:
    segments: list[RecognizedSegment]
    language: str | None
    language_probability: float | None
    decoding: str = "sequential"  # or "batched": how this channel was decoded


@dataclass(frozen=True)
class EngineSettings:
    """The speech-to-text resource's settings, as every engine factory receives them.

    Frozen (hashable) so the resource can cache one loaded engine per distinct settings."""

    model: str = ""  # a model name, a local path, or "" for the bundled model (see models.py)
    compute_type: str = "int8"
    beam_size: int = 5
    device: str = "auto"  # auto (a CUDA GPU when one is visible) | cpu | cuda
    cpu_threads: int = 0  # threads per engine; 0 = the library's default (4 in CTranslate2)
    batch_size: int = 0  # 0 = chosen by model and device (see auto_batch_size), 1 = never batch
    batch_beam_size: int = 1
    batch_min_audio_s: float = 60.0  # shorter channels decode sequentially


def auto_batch_size(model_name: str, device: str) -> int:
    """How many 30 s chunks to decode at once when the setting is 0 (auto).

    Measured on generated calls (benchmarks/stt_benchmark.py, README): batched decoding
    (chunks without timestamp tokens) keeps base's word error rate, but tiny drops whole
    sentences on it (+5 points stereo, +10 mono), so tiny models decode sequentially on CPU."""
    if device == "cuda":
        return 16
    return 1 if Path(model_name).name.lower().startswith("tiny") else 8


class SpeechToTextEngine(ABC):
    """Turns one channel of 16 kHz mono float32 audio into timed text.

    Subclasses import their heavy library in __init__, never at module level, so the registry
    (and the settings validation that reads it) stays cheap to import."""

    name: ClassVar[str]  # the CSCOACH_STT_ENGINE value, recorded as the transcript's engine
    model_name: str  # recorded as the transcript's model: a name, never a site-packages path

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: EngineSettings) -> Self:
        """Build the engine from the resource's settings (the registry's factory)."""

    @abstractmethod
    def recognize(self, audio: np.ndarray, language: str | None) -> Recognition: ...


EngineFactory = Callable[[EngineSettings], SpeechToTextEngine]

PAUSE_SPLIT_S = 0.8


def split_at_pauses(segment: Any) -> list[RecognizedSegment]:
    """One Whisper segment -> utterances, cut where the speaker paused longer than
    PAUSE_SPLIT_S; start/end come from the first/last word, not the 30 s decoding window."""

    def make(words: list[Any]) -> RecognizedSegment:
        return RecognizedSegment(
            start_s=float(words[0].start),
            end_s=float(words[-1].end),
            text="".join(w.word for w in words).strip(),
            avg_logprob=float(segment.avg_logprob),
            no_speech_prob=float(segment.no_speech_prob),
            compression_ratio=float(segment.compression_ratio),
            word_confidence=float(np.mean([w.probability for w in words])),
            words=tuple(
                RecognizedWord(float(w.start), float(w.end), w.word, float(w.probability))
                for w in words
            ),
        )

    words = list(segment.words or [])
    if not words:
        return [
            RecognizedSegment(
                start_s=float(segment.start),
                end_s=float(segment.end),
                text=segment.text,
                avg_logprob=float(segment.avg_logprob),
                no_speech_prob=float(segment.no_speech_prob),
                compression_ratio=float(segment.compression_ratio),
            )
        ]
    pieces: list[RecognizedSegment] = []
    current = [words[0]]
    for word in words[1:]:
        if word.start - current[-1].end > PAUSE_SPLIT_S:
            pieces.append(make(current))
            current = []
        current.append(word)
    pieces.append(make(current))
    return pieces
