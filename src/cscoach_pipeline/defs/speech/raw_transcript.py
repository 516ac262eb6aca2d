"""The unredacted transcript of one consultation: Whisper on its prepared audio, or the
imported text of a chat log, transcript or subtitle file. It is kept only in the bucket's
private artifacts area; everything downstream reads the redacted one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cscoach_pipeline.defs.ingest.file_types import FileType
from cscoach_pipeline.defs.ingest.resources import ConsultationArtifacts
from cscoach_pipeline.defs.ingest.storage import ObjectStore
from cscoach_pipeline.defs.speech.audio import load_prepared_audio
from cscoach_pipeline.defs.speech.resources import SpeechToTextResource
from cscoach_pipeline.defs.speech.roles import LOW_CONFIDENCE
from cscoach_pipeline.defs.speech.text_import import parse_text_consultation
from cscoach_pipeline.defs.speech.transcribe import SpeakerSettings, transcribe_recording
from cscoach_pipeline.defs.speech.transcript import Transcript

RAW_TRANSCRIPT_ARTIFACT = "private/transcript.raw.json"  # unredacted: never leaves the bucket


def raw_transcript_of(
    consultation: dict[str, Any],
    store: ObjectStore,
    source_key: str,
    artifacts: ConsultationArtifacts,
    speech_to_text: SpeechToTextResource,
    *,
    max_chat_segments: int,
    max_chat_chars: int,
) -> Transcript:
    """Transcribe a recording, or parse a text consultation (its `consultations` row says
    which)."""
    if consultation["file_type"] == FileType.TEXT:
        return parse_text_consultation(
            store.read_bytes(source_key),
            consultation["extension"],
            max_segments=max_chat_segments,
            max_chars=max_chat_chars,
        )
    audio = load_prepared_audio(store, artifacts)
    speakers = SpeakerSettings(
        agent_channel=speech_to_text.agent_channel,
        roles=speech_to_text.speaker_roles,
        embedder=speech_to_text.voice_embedder,
        max_speakers=speech_to_text.max_speakers,
        # Who speaks first tells the agent only when the customer called.
        inbound=(consultation.get("call_direction") or "inbound").lower() != "outbound",
    )
    return transcribe_recording(
        speech_to_text.load(),
        audio,
        language=speech_to_text.language or None,
        speakers=speakers,
    )


def speaker_metadata(result: Transcript) -> dict[str, Any]:
    """Where the speakers came from and how sure the agent's role is."""
    shown: dict[str, Any] = {"speakers_from": result.speakers_from or "none"}
    if result.speaker_count is not None:
        shown["speaker_count"] = result.speaker_count
    if result.agent_channel_detected is not None:
        shown["agent_channel_detected"] = result.agent_channel_detected
    if result.speaker_role_confidence is not None:
        shown["speaker_role_confidence"] = result.speaker_role_confidence
        shown["speaker_roles_low_confidence"] = result.speaker_role_confidence < LOW_CONFIDENCE
    if result.speaker_note:
        shown["speakers_note"] = result.speaker_note
    return shown


def transcript_metadata(
    result: Transcript,
    elapsed_s: float,
    speech_to_text: SpeechToTextResource | None = None,
    model_was_loaded: bool = False,
) -> dict[str, Any]:
    """The raw transcript's metadata; for speech, how it was decoded and whether this step
    had to load the model (`model_was_loaded`: the process held it already)."""
    metadata: dict[str, Any] = {
        "source": result.source,
        "segments": len(result.segments),
        "language": result.language or "unknown",
        "elapsed_s": round(elapsed_s, 3),
    }
    if result.source == "stt":
        metadata |= {
            "engine": result.engine or "",
            "model": Path(result.model or "").name or (result.model or ""),
            "audio_seconds_per_wall_second": round(
                (result.duration_s or 0) / max(elapsed_s, 1e-6), 2
            ),
        }
        if result.decoding:
            metadata["decoding"] = result.decoding
        metadata |= speaker_metadata(result)
        if speech_to_text is not None:
            engine = speech_to_text.load()
            load_s = 0.0 if model_was_loaded else round(speech_to_text.load_seconds(), 3)
            metadata |= {
                "device": getattr(engine, "device", "cpu"),
                "cpu_threads": getattr(engine, "cpu_threads", speech_to_text.cpu_threads),
                "batch_size": getattr(engine, "batch_size", 1),
                "model_reused": model_was_loaded,
                "model_load_s": load_s,
            }
    return metadata
