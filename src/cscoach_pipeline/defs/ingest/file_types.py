"""Which objects the pipeline reads, and which are partial uploads to wait for."""

from __future__ import annotations

from enum import StrEnum
from pathlib import PurePosixPath

# Text formats are the text importer's registry: a new one is read here without a line more.
from cscoach_pipeline.defs.speech.text_import import TEXT_EXTENSIONS


class FileType(StrEnum):
    TEXT = "text"
    AUDIO = "audio"
    VIDEO = "video"


AUDIO_EXTENSIONS = frozenset({".wav", ".mp3", ".m4a", ".aac", ".ogg", ".opus", ".flac", ".webm"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".webm", ".avi"})
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS | AUDIO_EXTENSIONS | VIDEO_EXTENSIONS

# Suffixes browsers, rsync, cloud sync clients and editors use while a file is still arriving.
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".temp", ".crdownload", ".download", ".filepart")
# Sidecar metadata files accompany a consultation; they are not consultations themselves.
SIDECAR_SUFFIX = ".meta.json"


def extension_of(key: str) -> str:
    return PurePosixPath(key).suffix.lower()


def is_ignored(key: str) -> bool:
    """Partial uploads, hidden files and sidecars: never a consultation, never a status row."""
    path = PurePosixPath(key)
    if any(part.startswith((".", "~$")) for part in path.parts):
        return True
    name = path.name.lower()
    return name.endswith(PARTIAL_SUFFIXES) or name.endswith(SIDECAR_SUFFIX)


def guess_file_type(key: str) -> FileType | None:
    """Type from the extension; `.webm` says audio here and is refined by probing the media."""
    ext = extension_of(key)
    if ext in TEXT_EXTENSIONS:
        return FileType.TEXT
    if ext in AUDIO_EXTENSIONS:
        return FileType.AUDIO
    if ext in VIDEO_EXTENSIONS:
        return FileType.VIDEO
    return None


def unsupported_reason(key: str) -> str:
    ext = extension_of(key) or "(no extension)"
    return (
        f"unsupported file type {ext!r}: supported are text "
        f"({', '.join(sorted(TEXT_EXTENSIONS))}), audio ({', '.join(sorted(AUDIO_EXTENSIONS))}) "
        f"and video ({', '.join(sorted(VIDEO_EXTENSIONS))})"
    )
