"""The reference openai-whisper engine (PyTorch), an optional extra selectable with
CSCOACH_STT_ENGINE=openai-whisper."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, Self

import numpy as np

from cscoach_pipeline.defs.speech.engines.base import (
    EngineSettings,
    Recognition,
    RecognizedSegment,
    SpeechToTextEngine,
    split_at_pauses,
)
from cscoach_pipeline.defs.speech.engines.models import resolve_model


class OpenAIWhisperEngine(SpeechToTextEngine):
    """The reference `openai-whisper` package (PyTorch), selectable with CSCOACH_STT_ENGINE."""

    name = "openai-whisper"

    def __init__(self, model: str, *, beam_size: int = 5, cpu_threads: int = 0) -> None:
        try:
            import whisper  # heavy import (torch), only when transcribing
        except ImportError as exc:
            raise RuntimeError(
                "CSCOACH_STT_ENGINE=openai-whisper needs the optional extra: "
                "`make setup-openai-whisper` (installs CPU torch, then openai-whisper)"
            ) from exc
        choice = resolve_model(model)
        if Path(choice.source).is_dir() and (Path(choice.source) / "model.bin").exists():
            raise RuntimeError(
                f"{choice.source} is a CTranslate2 model (faster-whisper format); openai-whisper "
                "needs a model name such as 'small' or a PyTorch .pt checkpoint"
            )
        self.model_name = choice.name
        self.beam_size = beam_size
        self.cpu_threads = cpu_threads
        if cpu_threads:
            import torch  # installed with openai-whisper

            # torch's pool is per process, like CTranslate2's: sized by the same rule.
            torch.set_num_threads(cpu_threads)
        self._model = whisper.load_model(choice.source, device="cpu")

    @classmethod
    def from_settings(cls, settings: EngineSettings) -> Self:
        # compute_type and batching are CTranslate2 settings; openai-whisper on CPU runs fp32.
        return cls(settings.model, beam_size=settings.beam_size, cpu_threads=settings.cpu_threads)

    def recognize(self, audio: np.ndarray, language: str | None) -> Recognition:
        if not self._model.is_multilingual:
            language = "en"
        # Same decoding as FasterWhisperEngine (beam, word timings, no text conditioning), so
        # the two engines differ only in runtime; openai-whisper has no VAD.
        result: dict[str, Any] = self._model.transcribe(
            audio,
            language=language,
            fp16=False,
            beam_size=self.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
        )
        recognized: list[RecognizedSegment] = []
        for raw in result["segments"]:
            segment = SimpleNamespace(
                **{k: v for k, v in raw.items() if k != "words"},
                words=[SimpleNamespace(**w) for w in raw.get("words", [])],
            )
            recognized.extend(split_at_pauses(segment))
        return Recognition(
            segments=recognized,
            language=result.get("language"),
            language_probability=None,
        )
