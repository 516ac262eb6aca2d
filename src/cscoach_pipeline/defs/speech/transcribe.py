"""Channel-aware speech-to-text: transcribe_recording runs an engine (see `engines/`) per real
channel and merges the result, with the filters that keep Whisper from inventing sentences
out of silence."""

from __future__ import annotations

import math
import re

import numpy as np

from cscoach_pipeline.defs.speech.engines import RecognizedSegment, SpeechToTextEngine
from cscoach_pipeline.defs.speech.media import SAMPLE_RATE, active_seconds, channels_are_duplicates
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript

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
    decodings: set[str] = set()
    for index, samples in channels.items():
        speech = active_seconds(samples)
        if speech < MIN_ACTIVE_SECONDS:
            continue  # a silent channel: never let Whisper "hear" something in it
        recognition = engine.recognize(np.ascontiguousarray(samples, dtype=np.float32), language)
        decodings.add(recognition.decoding)
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
        decoding=(decodings.pop() if len(decodings) == 1 else "mixed") if decodings else None,
    )
