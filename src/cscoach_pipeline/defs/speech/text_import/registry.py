"""Which parser reads a text consultation: the registry of formats (name -> parser and the file
extensions that name it) and the sniffing that reads a ".txt" as what it really holds.

Adding a format is its module plus one line in :data:`FORMATS` (and a check in
:func:`sniff_format` if a ".txt" may hold it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from cscoach_pipeline.defs.speech.text_import import json_chat, subtitles
from cscoach_pipeline.defs.speech.text_import.base import Parser
from cscoach_pipeline.defs.speech.text_import.lines import parse_lines


@dataclass(frozen=True)
class TextFormat:
    """A readable format: its parser and the file extensions that name it."""

    parse: Parser
    extensions: tuple[str, ...]


FORMATS: dict[str, TextFormat] = {
    "lines": TextFormat(parse_lines, (".txt", ".md")),
    "json": TextFormat(json_chat.parse_json, (".json",)),
    "srt": TextFormat(subtitles.parse_srt, (".srt",)),
    "vtt": TextFormat(subtitles.parse_vtt, (".vtt",)),
}

_FORMAT_OF_EXTENSION = {ext: name for name, fmt in FORMATS.items() for ext in fmt.extensions}
TEXT_EXTENSIONS = frozenset(_FORMAT_OF_EXTENSION)


class Sniffed(NamedTuple):
    """The format chosen for a file and what choosing it already worked out."""

    format: str  # a key of FORMATS
    preloaded: Any = None  # handed to the parser (ParseRequest.preloaded)


def sniff_format(text: str, extension: str) -> Sniffed:
    """The format to parse ``text`` as: the extension's, except that a ".txt" that is really
    WebVTT, SRT or JSON is parsed as what it is. ``extension`` is one of TEXT_EXTENSIONS."""
    fmt = _FORMAT_OF_EXTENSION[extension]
    if extension != ".txt":
        return Sniffed(fmt)
    head = text.lstrip()
    if subtitles.looks_like_vtt(head):
        return Sniffed("vtt")
    if subtitles.looks_like_srt(head):
        return Sniffed("srt")
    if head[:1] in "[{":
        doc = json_chat.sniff_document(text, head)
        if doc is not None:
            return Sniffed("json", doc)
    return Sniffed(fmt)
