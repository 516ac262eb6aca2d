"""Generates real test recordings: espeak-ng speech in two voices, mixed to mono or put on
separate stereo channels (agent left, customer right), encoded to wav/mp3/mp4 by ffmpeg."""

from __future__ import annotations

import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RATE = 16_000
AGENT_VOICE = "en-us+m3"
CUSTOMER_VOICE = "en-us+f3"


@dataclass(frozen=True)
class Line:
    speaker: str  # "agent" | "customer"
    text: str


def speak(text: str, voice: str, path: Path, words_per_minute: int = 150) -> np.ndarray:
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    resampled = path.with_suffix(".16k.wav")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(path), "-ac", "1",
         "-ar", str(RATE), "-c:a", "pcm_s16le", str(resampled)],
        check=True,
    )  # fmt: skip
    with wave.open(str(resampled), "rb") as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return data.astype(np.float32) / 32768.0


def dialogue_tracks(
    lines: list[Line],
    workdir: Path,
    gap_s: float = 0.6,
    voices: dict[str, str] | None = None,
    pauses: dict[int, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Agent and customer tracks of equal length, turns one after the other; `pauses` puts
    that many seconds of silence on both after the line of that index (a hold)."""
    voices = voices or {"agent": AGENT_VOICE, "customer": CUSTOMER_VOICE}
    workdir.mkdir(parents=True, exist_ok=True)
    agent: list[np.ndarray] = []
    customer: list[np.ndarray] = []
    gap = np.zeros(int(gap_s * RATE), dtype=np.float32)
    for index, line in enumerate(lines):
        clip = speak(line.text, voices[line.speaker], workdir / f"line{index}.wav")
        silence = np.zeros_like(clip)
        pause = np.zeros(int((pauses or {}).get(index, 0.0) * RATE), dtype=np.float32)
        agent += [clip if line.speaker == "agent" else silence, gap, pause]
        customer += [clip if line.speaker == "customer" else silence, gap, pause]
    return np.concatenate(agent), np.concatenate(customer)


def write_wav(path: Path, channels: list[np.ndarray]) -> Path:
    stacked = np.stack(channels, axis=1)
    pcm = (np.clip(stacked, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(len(channels))
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(pcm.tobytes())
    return path


def encode(source_wav: Path, destination: Path, *, video: bool = False) -> Path:
    """wav -> mp3/m4a/ogg/... by extension; video=True muxes a small test picture (mp4/mkv)."""
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
    if video:
        cmd += ["-f", "lavfi", "-i", "testsrc=size=160x120:rate=10"]
    cmd += ["-i", str(source_wav)]
    if video:
        cmd += ["-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "libx264", "-preset",
                "ultrafast", "-pix_fmt", "yuv420p"]  # fmt: skip
    cmd += ["-ar", "16000", str(destination)]
    subprocess.run(cmd, check=True)
    return destination


def silent_wav(path: Path, seconds: float, channels: int = 1) -> Path:
    zeros = np.zeros(int(seconds * RATE), dtype=np.float32)
    return write_wav(path, [zeros] * channels)


def video_without_audio(path: Path, seconds: float = 2.0) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
         f"testsrc=size=160x120:rate=10:duration={seconds}", "-c:v", "libx264", "-preset",
         "ultrafast", "-pix_fmt", "yuv420p", str(path)],
        check=True,
    )  # fmt: skip
    return path


def stereo_call(root: Path, name: str, script: list[Line]) -> Path:
    """`root/<name>.wav`: a stereo call (agent left, customer right) in espeak-ng voices."""
    agent, customer = dialogue_tracks(script, root / "lines")
    return write_wav(root / f"{name}.wav", [agent, customer])


def make_call_recordings(root: Path) -> dict[str, Path]:
    """The standard test set: the good and bad scripted calls as stereo/mono wav, mp3 and
    mp4, plus silence and a video without audio."""
    from tests.support.scripts import BAD_CALL, GOOD_CALL

    agent, customer = dialogue_tracks(GOOD_CALL, root / "good")
    bad_agent, bad_customer = dialogue_tracks(BAD_CALL, root / "bad")
    files = {
        "good_stereo.wav": write_wav(root / "good_stereo.wav", [agent, customer]),
        "good_mono.wav": write_wav(root / "good_mono.wav", [agent + customer]),
        "bad_stereo.wav": write_wav(root / "bad_stereo.wav", [bad_agent, bad_customer]),
    }
    files["good_mono.mp3"] = encode(files["good_mono.wav"], root / "good_mono.mp3")
    files["bad_stereo.mp4"] = encode(files["bad_stereo.wav"], root / "bad.mp4", video=True)
    files["silence.wav"] = silent_wav(root / "silence.wav", 8.0)
    files["no_audio.mp4"] = video_without_audio(root / "no_audio.mp4")
    return files
