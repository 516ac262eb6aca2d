"""Proves the ffmpeg layer on real files generated here with espeak-ng and ffmpeg.

`probe_media` reports format, duration, audio channels and codecs for mono/stereo WAV, MP3,
MP4 with and without an audio track, and does not mistake MP3 cover art for video; corrupt or
empty bytes raise `MediaError("corrupt or unreadable media ...")`. `extract_audio` resamples to
16 kHz signed 16-bit PCM with the requested channel count, which `read_wav` returns as a
(channels, samples) float array; a file without audio and a stuck ffmpeg/ffprobe (a tiny
timeout) raise readable `MediaError`s. `channels_are_duplicates` tells dual-mono from real
stereo, and `active_seconds` measures loud time (zero on silence, the tone's length on a tone).
"""

from __future__ import annotations

import json
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from cscoach_pipeline.defs.speech.media import (
    SAMPLE_RATE,
    MediaError,
    MediaInfo,
    active_seconds,
    channels_are_duplicates,
    extract_audio,
    probe_media,
    read_wav,
)
from cscoach_pipeline.errors import ConsultationInputError
from tests.support import media_factory as mf

TIMEOUT_S = 30.0


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A small set of real recordings, made once for this module."""
    root = tmp_path_factory.mktemp("media")
    clip = mf.speak("Hello, my parcel is late.", mf.AGENT_VOICE, root / "clip.wav")
    silence = np.zeros_like(clip)
    files: dict[str, Path] = {
        "mono.wav": mf.write_wav(root / "mono.wav", [clip]),
        "stereo.wav": mf.write_wav(root / "stereo.wav", [clip, silence]),
        "dual_mono.wav": mf.write_wav(root / "dual_mono.wav", [clip, clip]),
        "silence.wav": mf.silent_wav(root / "silence.wav", 2.0),
        "long_silence.wav": mf.silent_wav(root / "long_silence.wav", 60.0, channels=2),
        "no_audio.mp4": mf.video_without_audio(root / "no_audio.mp4"),
    }
    files["mono.mp3"] = mf.encode(files["mono.wav"], root / "mono.mp3")
    files["call.mp4"] = mf.encode(files["stereo.wav"], root / "call.mp4", video=True)
    # 3 s, 44.1 kHz stereo AAC with a different tone per channel: resampling is needed.
    files["tones.m4a"] = root / "tones.m4a"
    _ffmpeg("-f", "lavfi", "-i",
            "aevalsrc=0.5*sin(440*2*PI*t)|0.5*sin(660*2*PI*t):s=44100:d=3",
            "-c:a", "aac", str(files["tones.m4a"]))  # fmt: skip
    # MP3 with an embedded cover picture: ffprobe lists it as a one-frame video stream.
    cover = root / "cover.png"
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x64", "-frames:v", "1", str(cover))
    files["cover_art.mp3"] = root / "cover_art.mp3"
    _ffmpeg("-i", str(files["mono.mp3"]), "-i", str(cover), "-map", "0:a", "-map", "1:v",
            "-c", "copy", "-disposition:v:0", "attached_pic", "-id3v2_version", "3",
            str(files["cover_art.mp3"]))  # fmt: skip
    files["corrupt.wav"] = root / "corrupt.wav"
    files["corrupt.wav"].write_bytes(b"this is not a recording at all\n" * 200)
    files["empty.mp3"] = root / "empty.mp3"
    files["empty.mp3"].write_bytes(b"")
    return files


def _wav_params(path: Path) -> tuple[int, int, int, int]:
    with wave.open(str(path), "rb") as wav:
        return wav.getnchannels(), wav.getsampwidth(), wav.getframerate(), wav.getnframes()


# ---------------------------------------------------------------------------- probe_media


def test_probe_mono_wav(media: dict[str, Path]) -> None:
    info = probe_media(media["mono.wav"], TIMEOUT_S)

    assert isinstance(info, MediaInfo)
    assert info.format_name == "wav"
    assert info.has_audio and not info.has_video
    assert info.audio_channels == 1
    assert info.audio_codec == "pcm_s16le"
    assert info.video_codec is None
    frames = _wav_params(media["mono.wav"])[3]
    assert info.duration_s == pytest.approx(frames / SAMPLE_RATE, abs=0.01)


def test_probe_stereo_wav_keeps_two_channels(media: dict[str, Path]) -> None:
    info = probe_media(media["stereo.wav"], TIMEOUT_S)

    assert info.audio_channels == 2
    assert info.has_audio and not info.has_video


def test_probe_mp3(media: dict[str, Path]) -> None:
    info = probe_media(media["mono.mp3"], TIMEOUT_S)

    assert info.format_name == "mp3"
    assert info.audio_codec == "mp3"
    assert info.has_audio and not info.has_video
    assert info.duration_s is not None and info.duration_s > 1.0


def test_probe_mp4_video_with_audio(media: dict[str, Path]) -> None:
    info = probe_media(media["call.mp4"], TIMEOUT_S)

    assert "mp4" in info.format_name
    assert info.has_video and info.has_audio
    assert info.video_codec == "h264"
    assert info.audio_codec == "aac"
    assert info.audio_channels == 2


def test_probe_video_without_audio(media: dict[str, Path]) -> None:
    info = probe_media(media["no_audio.mp4"], TIMEOUT_S)

    assert info.has_video
    assert not info.has_audio
    assert info.audio_channels == 0
    assert info.audio_codec is None


def test_mp3_cover_art_is_not_video(media: dict[str, Path]) -> None:
    raw = subprocess.run(
        ["ffprobe", "-v", "error", "-print_format", "json", "-show_streams",
         str(media["cover_art.mp3"])],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    kinds = [s["codec_type"] for s in json.loads(raw.stdout)["streams"]]
    assert "video" in kinds  # the picture really is there as a stream...

    info = probe_media(media["cover_art.mp3"], TIMEOUT_S)

    assert not info.has_video  # ...but it is not a video
    assert info.video_codec is None
    assert info.has_audio


@pytest.mark.parametrize("name", ["corrupt.wav", "empty.mp3"])
def test_corrupt_bytes_raise_media_error(media: dict[str, Path], name: str) -> None:
    with pytest.raises(MediaError, match="corrupt or unreadable media") as caught:
        probe_media(media[name], TIMEOUT_S)
    # An input error, shown to supervisors, not a crash of the pipeline.
    assert isinstance(caught.value, ConsultationInputError)


def test_probe_timeout_raises_media_error(media: dict[str, Path]) -> None:
    with pytest.raises(MediaError, match="ffprobe timed out"):
        probe_media(media["long_silence.wav"], 0.001)


# --------------------------------------------------------------------------- extract_audio


@pytest.mark.parametrize("channels", [1, 2])
def test_extract_audio_resamples_to_16k_pcm16(
    media: dict[str, Path], tmp_path: Path, channels: int
) -> None:
    destination = tmp_path / "out.wav"

    extract_audio(media["tones.m4a"], destination, channels, TIMEOUT_S)

    n_channels, sample_width, rate, frames = _wav_params(destination)
    assert (n_channels, sample_width, rate) == (channels, 2, SAMPLE_RATE)
    assert frames / SAMPLE_RATE == pytest.approx(3.0, abs=0.1)
    audio = read_wav(destination)
    assert audio.dtype == np.float32
    assert audio.shape == (channels, frames)
    assert float(np.abs(audio).max()) <= 1.0
    # Each channel is a 0.5-amplitude sine (RMS 0.354); mono is their average (RMS 0.25).
    rms = np.sqrt(np.mean(audio**2, axis=1))
    expected = [0.25] if channels == 1 else [0.354, 0.354]
    assert rms.tolist() == pytest.approx(expected, abs=0.02)


def test_extract_audio_from_video_keeps_only_the_audio(
    media: dict[str, Path], tmp_path: Path
) -> None:
    destination = tmp_path / "call.wav"

    extract_audio(media["call.mp4"], destination, 2, TIMEOUT_S)

    audio = read_wav(destination)
    assert audio.shape[0] == 2
    # Speech was on the left channel only; the right stays (nearly) silent after AAC.
    assert active_seconds(audio[0]) > 0.5
    assert active_seconds(audio[1]) == 0.0


def test_extract_audio_without_audio_stream_fails_readably(
    media: dict[str, Path], tmp_path: Path
) -> None:
    with pytest.raises(MediaError, match="could not decode the audio"):
        extract_audio(media["no_audio.mp4"], tmp_path / "none.wav", 1, TIMEOUT_S)


def test_extract_audio_timeout_raises_media_error(media: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="timed out") as caught:
        extract_audio(media["long_silence.wav"], tmp_path / "slow.wav", 1, 0.001)
    assert "CSCOACH_FFMPEG_TIMEOUT_S" in str(caught.value)


def test_read_wav_rejects_other_sample_rates(tmp_path: Path) -> None:
    path = tmp_path / "8k.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x00" * 800)

    with pytest.raises(ValueError, match="not 16 kHz PCM16"):
        read_wav(path)


# ------------------------------------------------------- channels_are_duplicates, activity


def test_dual_mono_is_duplicates_and_real_stereo_is_not(
    media: dict[str, Path], tmp_path: Path
) -> None:
    extract_audio(media["dual_mono.wav"], tmp_path / "dual.wav", 2, TIMEOUT_S)
    extract_audio(media["stereo.wav"], tmp_path / "stereo.wav", 2, TIMEOUT_S)
    extract_audio(media["tones.m4a"], tmp_path / "tones.wav", 2, TIMEOUT_S)

    assert channels_are_duplicates(read_wav(tmp_path / "dual.wav"))
    assert not channels_are_duplicates(read_wav(tmp_path / "stereo.wav"))
    assert not channels_are_duplicates(read_wav(tmp_path / "tones.wav"))


def test_single_channel_counts_as_duplicates() -> None:
    assert channels_are_duplicates(np.zeros((1, SAMPLE_RATE), dtype=np.float32))


def test_active_seconds_silence_vs_speech(media: dict[str, Path]) -> None:
    silence = read_wav(media["silence.wav"])[0]
    speech = read_wav(media["mono.wav"])[0]
    speech_duration = len(speech) / SAMPLE_RATE

    assert active_seconds(silence) == 0.0
    assert 0.5 < active_seconds(speech) <= speech_duration


def test_active_seconds_measures_a_tone() -> None:
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    quiet_tone = tone * 10 ** (-40 / 20)  # about -50 dBFS RMS: below the -45 dBFS threshold
    signal = np.concatenate([tone, np.zeros(SAMPLE_RATE, dtype=np.float32), quiet_tone])

    assert active_seconds(signal) == pytest.approx(1.0, abs=0.06)
    assert active_seconds(quiet_tone) == 0.0
    assert active_seconds(np.zeros(10, dtype=np.float32)) == 0.0  # shorter than one frame
