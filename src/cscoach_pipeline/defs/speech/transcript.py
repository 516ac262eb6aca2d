"""The transcript data model shared by every stage after speech-to-text or text import."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class Speaker(StrEnum):
    AGENT = "agent"
    CUSTOMER = "customer"
    UNKNOWN = "unknown"


class Segment(BaseModel):
    """One utterance. Times are seconds from the start; None for untimed text sources."""

    start_s: float | None = None
    end_s: float | None = None
    speaker: Speaker = Speaker.UNKNOWN
    text: str
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    channel: int | None = None
    # Mono diarization's speaker (0 = the first voice heard); None on stereo and text.
    speaker_label: int | None = None
    # RMS level of the segment's own audio (its channel on stereo), dB below full scale.
    loudness_dbfs: float | None = None


class Transcript(BaseModel):
    """A consultation as ordered segments, whatever its source (speech or text)."""

    segments: list[Segment]
    language: str | None = None
    duration_s: float | None = None
    source: str = Field(description="'stt' for speech-to-text, 'text' for imported text")
    engine: str | None = None
    model: str | None = None
    # How speech was decoded: "sequential", "batched", or "mixed" (channels differed).
    decoding: str | None = None
    # Where speakers come from: "channels" (stereo), "diarization" (mono), "text" (a chat's
    # labels) or "none" (mono without diarization: all unknown); `speaker_note` says why.
    speakers_from: str | None = None
    speaker_count: int | None = None
    # The channel (stereo) or diarized speaker (mono) decided to be the agent, and how sure.
    agent_channel_detected: int | None = None
    speaker_role_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    speaker_note: str | None = None

    @property
    def is_timed(self) -> bool:
        return bool(self.segments) and all(
            s.start_s is not None and s.end_s is not None for s in self.segments
        )

    @property
    def text(self) -> str:
        return "\n".join(f"{s.speaker.value}: {s.text}" for s in self.segments)
