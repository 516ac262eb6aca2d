"""Proves which objects the pipeline reads: `guess_file_type` maps every supported extension
(case-insensitively) to text, audio or video and anything else to None; `is_ignored` skips
partial uploads (.part, .crdownload, .tmp, ...), hidden files and folders, Office lock files
(~$) and .meta.json sidecars, but not ordinary files; `unsupported_reason` names the offending
extension and what is supported.
"""

from __future__ import annotations

import pytest

from cscoach_pipeline.defs.ingest.file_types import (
    AUDIO_EXTENSIONS,
    SUPPORTED_EXTENSIONS,
    TEXT_EXTENSIONS,
    VIDEO_EXTENSIONS,
    FileType,
    extension_of,
    guess_file_type,
    is_ignored,
    unsupported_reason,
)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("incoming/chat.txt", FileType.TEXT),
        ("incoming/notes.md", FileType.TEXT),
        ("incoming/chat.json", FileType.TEXT),
        ("incoming/call.srt", FileType.TEXT),
        ("incoming/call.vtt", FileType.TEXT),
        ("incoming/call.wav", FileType.AUDIO),
        ("incoming/call.mp3", FileType.AUDIO),
        ("incoming/call.m4a", FileType.AUDIO),
        ("incoming/call.aac", FileType.AUDIO),
        ("incoming/call.ogg", FileType.AUDIO),
        ("incoming/call.opus", FileType.AUDIO),
        ("incoming/call.flac", FileType.AUDIO),
        ("incoming/call.webm", FileType.AUDIO),  # refined later by probing the media
        ("incoming/call.mp4", FileType.VIDEO),
        ("incoming/call.mov", FileType.VIDEO),
        ("incoming/call.mkv", FileType.VIDEO),
        ("incoming/call.avi", FileType.VIDEO),
    ],
)
def test_guess_file_type_by_extension(key: str, expected: FileType) -> None:
    assert guess_file_type(key) is expected
    assert guess_file_type(key.upper()) is expected
    stem, ext = key.rsplit(".", 1)
    assert guess_file_type(f"{stem}.{ext.capitalize()}") is expected  # e.g. .Wav


def test_every_supported_extension_has_a_type() -> None:
    for ext in SUPPORTED_EXTENSIONS:
        assert guess_file_type(f"incoming/x{ext}") is not None, ext
    assert TEXT_EXTENSIONS.isdisjoint(AUDIO_EXTENSIONS | VIDEO_EXTENSIONS)


@pytest.mark.parametrize(
    "key", ["incoming/photo.png", "incoming/report.pdf", "incoming/README", "incoming/a.wav.bak"]
)
def test_other_extensions_have_no_type(key: str) -> None:
    assert guess_file_type(key) is None


def test_extension_is_lower_case_last_suffix() -> None:
    assert extension_of("incoming/Team.A/CALL.Final.MP3") == ".mp3"
    assert extension_of("incoming/no_extension") == ""


@pytest.mark.parametrize(
    "key",
    [
        "incoming/call.wav.part",
        "incoming/call.mp4.crdownload",
        "incoming/chat.txt.tmp",
        "incoming/call.wav.partial",
        "incoming/call.wav.temp",
        "incoming/call.wav.download",
        "incoming/call.wav.filepart",
        "incoming/CALL.WAV.PART",
        "incoming/.hidden.txt",
        "incoming/.sync/call.wav",
        "incoming/team/.Trash-1000/call.wav",
        "incoming/~$report.txt",
        "incoming/team/~$lock/call.wav",
        "incoming/call.wav.meta.json",
        "incoming/call.wav.META.JSON",
    ],
)
def test_partial_hidden_lock_and_sidecar_files_are_ignored(key: str) -> None:
    assert is_ignored(key)


@pytest.mark.parametrize(
    "key",
    [
        "incoming/call.wav",
        "incoming/team.a/call.mp3",  # a dot inside a folder name is not a hidden folder
        "incoming/meta.json",  # a chat export named meta.json is not a sidecar
        "incoming/call~1.txt",
        "incoming/part.wav",
        "incoming/상담/통화.mp3",
    ],
)
def test_ordinary_files_are_not_ignored(key: str) -> None:
    assert not is_ignored(key)


@pytest.mark.parametrize("key", ["incoming/photo.PNG", "incoming/report.pdf"])
def test_unsupported_reason_mentions_the_extension(key: str) -> None:
    reason = unsupported_reason(key)

    assert repr(extension_of(key)) in reason
    assert "unsupported file type" in reason
    for ext in (".txt", ".wav", ".mp3", ".mp4"):
        assert ext in reason


def test_unsupported_reason_without_extension() -> None:
    assert "(no extension)" in unsupported_reason("incoming/README")
