"""FFmpeg: probe a recording and extract 16 kHz PCM audio, always under a timeout.

The ffmpeg CLI is called directly: `ffmpeg-python` (named in the design card) has been
unmaintained since 2019 and cannot time out a stuck process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cscoach_pipeline.errors import ConsultationInputError

SAMPLE_RATE = 16_000


class MediaError(ConsultationInputError):
    pass


@dataclass(frozen=True)
class MediaInfo:
    format_name: str
    duration_s: float | None
    has_audio: bool
    has_video: bool
    audio_channels: int
    audio_codec: str | None
    video_codec: str | None


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise RuntimeError(f"{tool} is not installed; run `make setup` (installs Debian ffmpeg)")
    return path


def _last_error_line(stderr: str, path: Path | None = None) -> str:
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    line = lines[-1] if lines else "no error output"
    # FFmpeg prefixes the (temporary, meaningless to users) input path.
    return line.replace(f"{path}: ", "") if path else line


def probe_media(path: Path, timeout_s: float) -> MediaInfo:
    cmd = [
        _require("ffprobe"),
        "-v", "error",
        "-print_format", "json",
        "-show_format",
        "-show_streams",
        str(path),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"ffprobe timed out after {timeout_s:.0f} s reading the file") from exc
    if proc.returncode != 0:
        reason = _last_error_line(proc.stderr, path)
        raise MediaError(f"corrupt or unreadable media: FFmpeg cannot decode it ({reason})")
    info = json.loads(proc.stdout or "{}")
    streams = info.get("streams", [])
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    # Cover art in mp3/m4a shows up as a one-frame video stream; it is not a video.
    video = [
        s
        for s in streams
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]
    if not streams:
        raise MediaError("corrupt or unreadable media: no audio or video streams found")
    duration = info.get("format", {}).get("duration")
    return MediaInfo(
        format_name=info.get("format", {}).get("format_name", "unknown"),
        duration_s=float(duration) if duration not in (None, "N/A") else None,
        has_audio=bool(audio),
        has_video=bool(video),
        audio_channels=int(audio[0].get("channels", 1)) if audio else 0,
        audio_codec=audio[0].get("codec_name") if audio else None,
        video_codec=video[0].get("codec_name") if video else None,
    )


def extract_audio(source: Path, destination: Path, channels: int, timeout_s: float) -> None:
    """Decode the first audio stream to 16 kHz signed 16-bit PCM WAV with 1 or 2 channels."""
    cmd = [
        _require("ffmpeg"),
        "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-i", str(source),
        "-map", "0:a:0", "-vn", "-sn", "-dn",
        "-ac", str(channels), "-ar", str(SAMPLE_RATE), "-c:a", "pcm_s16le",
        str(destination),
    ]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(
            f"ffmpeg timed out after {timeout_s:.0f} s extracting audio "
            "(raise CSCOACH_FFMPEG_TIMEOUT_S for very long recordings)"
        ) from exc
    if proc.returncode != 0:
        raise MediaError(f"could not decode the audio: {_last_error_line(proc.stderr, source)}")


def read_wav(path: Path) -> np.ndarray:
    """PCM16 WAV -> float32 array of shape (channels, samples) in [-1, 1]."""
    with wave.open(str(path), "rb") as wav:
        channels = wav.getnchannels()
        if wav.getsampwidth() != 2 or wav.getframerate() != SAMPLE_RATE:
            raise ValueError(f"{path} is not 16 kHz PCM16")
        frames = wav.readframes(wav.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
    return samples.reshape(-1, channels).T.copy()


def channels_are_duplicates(audio: np.ndarray, tolerance: float = 1e-3) -> bool:
    """True for 'dual mono': two channels carrying the same signal, i.e. really one speaker mix."""
    if audio.shape[0] < 2:
        return True
    return float(np.mean(np.abs(audio[0] - audio[1]))) < tolerance


def active_seconds(channel: np.ndarray, threshold_dbfs: float = -45.0) -> float:
    """Seconds of 30 ms frames louder than the threshold: a cheap 'is anything here' check."""
    frame = int(0.03 * SAMPLE_RATE)
    usable = channel[: len(channel) // frame * frame]
    if usable.size == 0:
        return 0.0
    rms = np.sqrt(np.mean(usable.reshape(-1, frame) ** 2, axis=1) + 1e-12)
    loud = 20 * np.log10(rms) > threshold_dbfs
    return float(loud.sum() * frame / SAMPLE_RATE)
