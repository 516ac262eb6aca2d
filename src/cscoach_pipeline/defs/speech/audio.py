"""From an original recording (audio or video, any container ffmpeg reads) to the 16 kHz PCM
WAV the speech-to-text step reads: two channels stay apart (agent and customer), anything
without usable audio fails with its reason."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cscoach_pipeline.defs.ingest.file_types import FileType
from cscoach_pipeline.defs.ingest.resources import ConsultationArtifacts
from cscoach_pipeline.defs.ingest.storage import ObjectStore
from cscoach_pipeline.defs.speech.media import (
    SAMPLE_RATE,
    MediaError,
    MediaInfo,
    extract_audio,
    probe_media,
    read_wav,
)

AUDIO_ARTIFACT = "audio.wav"
# Shorter recordings hold no word Whisper could recognise.
MIN_DURATION_S = 0.1


@dataclass(frozen=True)
class PreparedAudio:
    info: MediaInfo
    file_type: FileType
    channels: int
    duration_s: float

    def consultation_update(self) -> dict[str, Any]:
        """What the audio adds to the `consultations` row."""
        return {
            "file_type": self.file_type.value,
            "duration_s": round(self.duration_s, 3),
            "channels": self.channels,
        }

    def metadata(self) -> dict[str, Any]:
        return {
            "duration_s": round(self.duration_s, 2),
            "channels": self.channels,
            "source_channels": self.info.audio_channels,
            "file_type": self.file_type.value,
            "container": self.info.format_name,
            "audio_codec": self.info.audio_codec or "",
            "video_codec": self.info.video_codec or "",
        }


def prepare_audio(
    store: ObjectStore,
    source_key: str,
    extension: str,
    artifacts: ConsultationArtifacts,
    *,
    ffmpeg_timeout_s: float,
) -> PreparedAudio:
    """Download the original, probe it, extract the WAV into the artifacts."""
    with tempfile.TemporaryDirectory(prefix="cscoach-audio-") as tmp:
        original = Path(tmp) / f"original{extension}"
        store.download_to(source_key, original)
        info = probe_media(original, ffmpeg_timeout_s)
        if not info.has_audio:
            raise MediaError(
                "the video has no audio track" if info.has_video else "the file has no audio stream"
            )
        channels = 2 if info.audio_channels >= 2 else 1
        wav = Path(tmp) / AUDIO_ARTIFACT
        extract_audio(original, wav, channels, ffmpeg_timeout_s)
        duration_s = read_wav(wav).shape[1] / SAMPLE_RATE
        if duration_s < MIN_DURATION_S:
            raise MediaError(f"the recording is too short to transcribe ({duration_s:.2f} s)")
        store.upload_file(wav, artifacts.key(AUDIO_ARTIFACT), "audio/wav")
    file_type = FileType.VIDEO if info.has_video else FileType.AUDIO
    return PreparedAudio(info, file_type, channels, duration_s)


def load_prepared_audio(store: ObjectStore, artifacts: ConsultationArtifacts) -> np.ndarray:
    """The WAV `prepare_audio` stored, as (channels, samples) float32."""
    with tempfile.TemporaryDirectory(prefix="cscoach-stt-") as tmp:
        wav = Path(tmp) / AUDIO_ARTIFACT
        store.download_to(artifacts.key(AUDIO_ARTIFACT), wav)
        return read_wav(wav)
