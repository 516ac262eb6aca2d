"""Read a consultation that arrives as text (chat log, transcript, subtitles) into a Transcript.

Supported inputs, chosen by file extension (see :mod:`.registry`):

* ``.txt`` / ``.md`` - one utterance per line with optional speaker prefixes
  ("Agent:", "**Customer:**", "[10:32:05] 상담원:"), markdown decoration dropped (:mod:`.lines`);
* ``.json`` - chat exports (a list of messages, or an object holding one, or JSON Lines)
  (:mod:`.json_chat`);
* ``.srt`` / ``.vtt`` - subtitle cues with timings and optional voice tags (:mod:`.subtitles`).

Bytes are decoded defensively (:mod:`.decoding`: BOM, UTF-8, BOM-less UTF-16, CP949) because
contact-centre systems export in whatever their vendor chose; speaker labels are mapped to roles
by :mod:`.speakers`. Anything that is not really text fails with a :class:`TextImportError`
whose message says why in plain words, since it is shown to users.
"""

from __future__ import annotations

from collections.abc import Sequence

from cscoach_pipeline.defs.speech.text_import.base import ParseRequest, TextImportError
from cscoach_pipeline.defs.speech.text_import.decoding import MAX_BYTES_PER_CHAR, decode_text
from cscoach_pipeline.defs.speech.text_import.json_chat import MAX_JSON_DEPTH
from cscoach_pipeline.defs.speech.text_import.language import detect_language
from cscoach_pipeline.defs.speech.text_import.registry import (
    FORMATS,
    TEXT_EXTENSIONS,
    sniff_format,
)
from cscoach_pipeline.defs.speech.transcript import Transcript

__all__ = [
    "DEFAULT_MAX_CHAT_CHARS",
    "DEFAULT_MAX_CHAT_SEGMENTS",
    "MAX_JSON_DEPTH",
    "TEXT_EXTENSIONS",
    "TextImportError",
    "decode_text",
    "detect_language",
    "parse_text_consultation",
]

# A real consultation is a few hundred messages; a 50 MB export (832,202 messages) took 2 GB
# of memory and 455 s of analysis while every other consultation waited.
DEFAULT_MAX_CHAT_SEGMENTS = 20_000
DEFAULT_MAX_CHAT_CHARS = 2_000_000

_TOO_LONG = (
    "chat is too long: {} more than the {:,} characters allowed (the limit is set by "
    "CSCOACH_MAX_CHAT_CHARS)"
)


def parse_text_consultation(
    data: bytes,
    extension: str,
    agent_names: Sequence[str] = (),
    *,
    max_segments: int = DEFAULT_MAX_CHAT_SEGMENTS,
    max_chars: int = DEFAULT_MAX_CHAT_CHARS,
) -> Transcript:
    """Parse a text consultation file into a Transcript (``source="text"``).

    ``extension`` is the file's suffix (".txt", "txt", ".VTT" all work); ``agent_names`` are
    names that should be read as the agent when used as speaker labels. Raises
    :class:`TextImportError` with a user-readable reason when the file cannot be used.

    A chat longer than ``max_chars`` characters (checked on the bytes before decoding, then
    on the text before parsing) or with more than ``max_segments`` messages (checked while
    parsing) is refused, so memory and analysis time stay bounded.
    """
    ext = extension.strip().lower()
    if not ext.startswith("."):
        ext = f".{ext}"
    if ext not in TEXT_EXTENSIONS:
        raise TextImportError(
            f"unsupported text format '{ext}': expected one of {', '.join(sorted(TEXT_EXTENSIONS))}"
        )

    if len(data) > max_chars * MAX_BYTES_PER_CHAR:
        raise TextImportError(_TOO_LONG.format(f"its {len(data):,} bytes hold", max_chars))
    text, _encoding = decode_text(data)
    if len(text) > max_chars:
        raise TextImportError(_TOO_LONG.format(f"{len(text):,} characters,", max_chars))
    sniffed = sniff_format(text, ext)
    request = ParseRequest(text, agent_names, max_segments, preloaded=sniffed.preloaded)
    segments = [s for s in FORMATS[sniffed.format].parse(request) if s.text.strip()]
    if not segments:
        raise TextImportError("no dialogue found in text")

    # The last timing we know bounds the consultation; untimed text has no duration.
    ends = [t for s in segments for t in (s.end_s, s.start_s) if t is not None]
    return Transcript(
        segments=segments,
        language=detect_language(" ".join(s.text for s in segments)),
        duration_s=max(ends) if ends else None,
        source="text",
        engine=None,
        model=None,
    )
