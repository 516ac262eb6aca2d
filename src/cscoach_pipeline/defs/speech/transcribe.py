"""Channel-aware speech-to-text: transcribe_recording runs an engine (see `engines/`) per real
channel and merges the result, with the filters that keep Whisper from inventing sentences
out of silence; then finds who spoke (channels, or mono diarization), which of them is the
agent (from what they say) and each segment's loudness."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cscoach_pipeline.defs.speech.diarization import (
    DiarizationUnavailable,
    VoiceEmbedder,
    diarize,
)
from cscoach_pipeline.defs.speech.engines import RecognizedSegment, SpeechToTextEngine
from cscoach_pipeline.defs.speech.media import SAMPLE_RATE, active_seconds, channels_are_duplicates
from cscoach_pipeline.defs.speech.roles import RoleDecision, decide_roles
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


@dataclass(frozen=True)
class SpeakerSettings:
    """How speakers are found: `roles` "detect" (content decides; the channel is a prior)
    or "channel" (forced); `embedder` builds mono diarization's voice encoder (raising
    DiarizationUnavailable when it cannot); `inbound`: the customer called."""

    agent_channel: int = 0
    roles: str = "detect"
    embedder: Callable[[], VoiceEmbedder] | None = None
    max_speakers: int = 3
    inbound: bool = True


def loudness_dbfs(samples: np.ndarray, start_s: float, end_s: float) -> float | None:
    """RMS level of [start, end), in dB below full scale; None for an empty span."""
    piece = samples[int(start_s * SAMPLE_RATE) : int(end_s * SAMPLE_RATE)]
    if piece.size == 0:
        return None
    rms = float(np.sqrt(np.mean(np.square(piece, dtype=np.float64))))
    return round(20 * math.log10(max(rms, 1e-6)), 2)


def _kept(recognition_segments: list[RecognizedSegment]) -> list[RecognizedSegment]:
    return [rec for rec in recognition_segments if not is_hallucination(rec)]


def _segment(
    rec: RecognizedSegment,
    samples: np.ndarray,
    speaker: Speaker,
    channel: int | None = None,
    label: int | None = None,
) -> Segment:
    return Segment(
        start_s=round(rec.start_s, 3),
        end_s=round(rec.end_s, 3),
        speaker=speaker,
        text=rec.text.strip(),
        confidence=round(_confidence(rec), 4),
        channel=channel,
        speaker_label=label,
        loudness_dbfs=loudness_dbfs(samples, rec.start_s, rec.end_s),
    )


@dataclass(frozen=True)
class _Speakers:
    segments: list[Segment]
    source: str
    count: int | None = None
    agent: int | None = None
    confidence: float | None = None
    note: str | None = None


def _stereo_speakers(
    recognized: dict[int, list[RecognizedSegment]],
    channels: dict[int, np.ndarray],
    who: SpeakerSettings,
) -> _Speakers:
    if who.roles == "channel":
        agent, confidence, note = who.agent_channel, None, "agent channel forced by settings"
    else:
        decision = decide_roles(
            [(ch, rec.text, rec.start_s) for ch, recs in recognized.items() for rec in recs],
            prior=who.agent_channel,
            inbound=who.inbound,
        )
        agent = decision.agent if decision.agent is not None else who.agent_channel
        confidence = decision.confidence
        note = _role_note(decision, "channel")
    segments = [
        _segment(rec, channels[ch], Speaker.AGENT if ch == agent else Speaker.CUSTOMER, ch)
        for ch, recs in recognized.items()
        for rec in recs
    ]
    return _Speakers(segments, "channels", len(recognized), agent, confidence, note)


def _mono_speakers(
    recognized: list[RecognizedSegment], samples: np.ndarray, who: SpeakerSettings
) -> _Speakers:
    def unknown(note: str, source: str = "none") -> _Speakers:
        return _Speakers(
            [_segment(rec, samples, Speaker.UNKNOWN) for rec in recognized], source, note=note
        )

    if not recognized:
        return unknown("no speech")
    if who.embedder is None:
        return unknown("mono diarization is not configured")
    try:
        embedder = who.embedder()
    except DiarizationUnavailable as exc:
        return unknown(str(exc))
    found = diarize(samples, recognized, embedder, who.max_speakers)
    if found.speaker_count < 2:
        return _Speakers(
            [_segment(rec, samples, Speaker.UNKNOWN, label=0) for rec, _ in found.segments],
            "diarization",
            found.speaker_count,
            note="one voice heard: roles cannot be told apart",
        )
    decision = decide_roles(
        [(label, rec.text, rec.start_s) for rec, label in found.segments], inbound=who.inbound
    )
    segments = [
        _segment(
            rec,
            samples,
            Speaker.AGENT if label in decision.agents else Speaker.CUSTOMER,
            label=label,
        )
        for rec, label in found.segments
    ]
    return _Speakers(
        segments,
        "diarization",
        found.speaker_count,
        decision.agent,
        decision.confidence,
        _role_note(decision, "speaker"),
    )


def _role_note(decision: RoleDecision, what: str) -> str:
    evidence = ", ".join(f"{what} {k}: {v:+.2f}" for k, v in decision.evidence.items())
    sure = "LOW CONFIDENCE, check the roles" if decision.low_confidence else "confident"
    return f"agent = {what} {decision.agent} ({sure}; evidence {evidence})"


def transcribe_recording(
    engine: SpeechToTextEngine,
    audio: np.ndarray,
    *,
    agent_channel: int = 0,
    language: str | None = None,
    speakers: SpeakerSettings | None = None,
) -> Transcript:
    """Transcribe (channels, samples) audio. Two real channels are transcribed separately and
    merged in time order, the agent's channel decided from what each says (or forced); a
    mono recording's speakers come from diarization when it can run, else stay 'unknown'."""
    who = speakers or SpeakerSettings(agent_channel=agent_channel)
    duration = audio.shape[1] / SAMPLE_RATE
    stereo = audio.shape[0] == 2 and not channels_are_duplicates(audio)
    if stereo:
        channels = {0: audio[0], 1: audio[1]}
    else:
        channels = {0: audio.mean(axis=0) if audio.shape[0] > 1 else audio[0]}

    recognized: dict[int, list[RecognizedSegment]] = {}
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
        recognized[index] = _kept(recognition.segments)

    if stereo:
        found = _stereo_speakers(recognized, channels, who)
    else:
        found = _mono_speakers(recognized.get(0, []), channels[0], who)
    segments = sorted(found.segments, key=lambda s: (s.start_s or 0.0, s.channel or 0))
    detected = max(languages)[1] if languages else None
    return Transcript(
        segments=segments,
        language=detected if segments else None,
        duration_s=round(duration, 3),
        source="stt",
        engine=engine.name,
        model=engine.model_name,
        decoding=(decodings.pop() if len(decodings) == 1 else "mixed") if decodings else None,
        speakers_from=found.source,
        speaker_count=found.count,
        agent_channel_detected=found.agent,
        speaker_role_confidence=found.confidence,
        speaker_note=found.note,
    )
