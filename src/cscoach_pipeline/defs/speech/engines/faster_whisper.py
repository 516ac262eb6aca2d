"""The faster-whisper engine (CTranslate2 Whisper), the default CSCOACH_STT_ENGINE."""

from __future__ import annotations

from typing import Self

import numpy as np

from cscoach_pipeline.defs.speech.engines.base import (
    EngineSettings,
    Recognition,
    RecognizedSegment,
    SpeechToTextEngine,
    split_at_pauses,
)
from cscoach_pipeline.defs.speech.engines.models import resolve_model


class FasterWhisperEngine(SpeechToTextEngine):
    """CTranslate2 Whisper: the same weights as openai-whisper, ~4x faster on CPU with int8."""

    name = "faster-whisper"

    def __init__(
        self, model: str, *, compute_type: str = "int8", beam_size: int = 5, vad: bool = True
    ) -> None:
        from faster_whisper import WhisperModel  # heavy import, only when transcribing

        choice = resolve_model(model)
        self.model_name = choice.name
        self.beam_size = beam_size
        self.vad = vad
        self._model = WhisperModel(choice.source, device="cpu", compute_type=compute_type)

    @classmethod
    def from_settings(cls, settings: EngineSettings) -> Self:
        return cls(settings.model, compute_type=settings.compute_type, beam_size=settings.beam_size)

    def recognize(self, audio: np.ndarray, language: str | None) -> Recognition:
        if not self._model.model.is_multilingual:
            language = "en"  # an English-only model (*.en) cannot be asked for another language
        segments, info = self._model.transcribe(
            audio,
            language=language,
            beam_size=self.beam_size,
            vad_filter=self.vad,
            # On a call channel, turns are separated by the other party's talk: split on
            # half-second pauses instead of Silero's 2 s default so turns stay apart.
            vad_parameters={"min_silence_duration_ms": 500, "speech_pad_ms": 200},
            # Word timings give true turn boundaries (talk time, overlaps, latency).
            word_timestamps=True,
            # Feeding previous text back in is the main cause of repetition loops on calls.
            condition_on_previous_text=False,
        )
        recognized: list[RecognizedSegment] = []
        for segment in segments:  # a generator: decoding happens here
            recognized.extend(split_at_pauses(segment))
        return Recognition(
            segments=recognized,
            language=info.language,
            language_probability=float(info.language_probability),
        )
