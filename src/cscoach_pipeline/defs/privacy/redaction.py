"""A whole transcript redacted: PII found across segment and line boundaries too (a
dictated number is often cut in pieces), counted per kind for the UI."""

from __future__ import annotations

from collections import Counter
from typing import Any

from cscoach_pipeline.defs.ingest.resources import ConsultationArtifacts
from cscoach_pipeline.defs.privacy.pii import redact_segments
from cscoach_pipeline.defs.speech.transcript import Transcript

TRANSCRIPT_ARTIFACT = "transcript.json"


def redact_transcript(raw: Transcript) -> tuple[Transcript, dict[str, int]]:
    """The transcript with every PII span replaced, and how many of each kind were found."""
    redacted = redact_segments(
        [s.text for s in raw.segments],
        starts=[s.start_s for s in raw.segments],
        ends=[s.end_s for s in raw.segments],
        speakers=[s.speaker.value for s in raw.segments],
    )
    counts: Counter[str] = Counter()
    segments = []
    for segment, result in zip(raw.segments, redacted, strict=True):
        counts.update(result.counts)
        segments.append(segment.model_copy(update={"text": result.text}))
    return raw.model_copy(update={"segments": segments}), dict(counts)


def segment_rows(transcript: Transcript) -> list[dict[str, Any]]:
    """`transcript_segments` rows (the consultation id is added by the store)."""
    return [
        {
            "segment_index": index,
            "start_s": s.start_s,
            "end_s": s.end_s,
            "speaker": s.speaker.value,
            "channel": s.channel,
            "text": s.text,
            "confidence": s.confidence,
        }
        for index, s in enumerate(transcript.segments)
    ]


def transcript_details(transcript: Transcript) -> dict[str, Any]:
    """What the redacted transcript adds to the `consultations` row."""
    details: dict[str, Any] = {
        "language": transcript.language,
        "stt_engine": transcript.engine,
        "stt_model": transcript.model,
        "speakers_from": transcript.speakers_from
        or ("text" if transcript.source == "text" else None),
        "speaker_count": transcript.speaker_count,
        "agent_channel_detected": transcript.agent_channel_detected,
        "speaker_role_confidence": transcript.speaker_role_confidence,
    }
    if transcript.duration_s is not None:
        details["duration_s"] = transcript.duration_s
    return details


def preview(transcript: Transcript, segments: int = 8) -> str:
    lines = [f"- **{s.speaker.value}**: {s.text}" for s in transcript.segments[:segments]]
    return "\n".join(lines) or "_no speech_"


def read_redacted_transcript(artifacts: ConsultationArtifacts) -> Transcript | None:
    """The redacted transcript, or None when the consultation was never transcribed."""
    stored = artifacts.store.read_optional(artifacts.key(TRANSCRIPT_ARTIFACT))
    return Transcript.model_validate_json(stored) if stored is not None else None
