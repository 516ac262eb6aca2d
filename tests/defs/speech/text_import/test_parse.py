"""The entry point proves that a text consultation of any supported extension becomes a
Transcript through the format registry (".txt" sniffed for what it really holds), that the
public names stay importable from the package, that an unsupported extension is refused, and
that chats over the segment or character limit fail in every format with a reason naming the
limit and its setting."""

from __future__ import annotations

import json

import pytest

from cscoach_pipeline.defs.speech import text_import
from cscoach_pipeline.defs.speech.text_import import (
    DEFAULT_MAX_CHAT_CHARS,
    DEFAULT_MAX_CHAT_SEGMENTS,
    TEXT_EXTENSIONS,
    TextImportError,
    parse_text_consultation,
)
from cscoach_pipeline.defs.speech.text_import.base import ParseRequest
from cscoach_pipeline.defs.speech.text_import.registry import FORMATS, TextFormat, sniff_format
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker
from tests.defs.speech.text_import.helpers import KOREAN_DIALOGUE

# --- public surface and registry ------------------------------------------------------------


def test_text_extensions() -> None:
    assert frozenset({".txt", ".md", ".json", ".srt", ".vtt"}) == TEXT_EXTENSIONS


def test_public_names_are_importable_from_the_package() -> None:
    for name in text_import.__all__:
        assert getattr(text_import, name) is not None


@pytest.mark.parametrize(
    ("text", "extension", "fmt"),
    [
        ("Agent: hi", ".txt", "lines"),
        ("Agent: hi", ".md", "lines"),
        ("WEBVTT\n\n00:01.000 --> 00:02.000\nhi", ".txt", "vtt"),
        ("1\n00:00:01,000 --> 00:00:02,000\nhi", ".txt", "srt"),
        ('[{"text": "hi"}]', ".txt", "json"),
        ('{"a": 1}\n{"a": 2}', ".txt", "lines"),  # JSON Lines in a .txt stay lines
        ("[10:32] Agent: hi", ".txt", "lines"),
        ("WEBVTT", ".md", "lines"),  # only a .txt is sniffed
        ("Agent: hi", ".srt", "srt"),
    ],
)
def test_sniffing_picks_the_registered_format(text: str, extension: str, fmt: str) -> None:
    sniffed = sniff_format(text, extension)
    assert sniffed.format == fmt
    assert sniffed.format in FORMATS


def test_sniffed_json_is_handed_to_the_parser() -> None:
    assert sniff_format(' [{"text": "hi"}]', ".txt").preloaded == [{"text": "hi"}]


def test_every_extension_has_a_registered_format() -> None:
    assert {ext for fmt in FORMATS.values() for ext in fmt.extensions} == TEXT_EXTENSIONS


def test_the_registry_chooses_the_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[ParseRequest] = []

    def parse(request: ParseRequest) -> list[Segment]:
        seen.append(request)
        return [Segment(speaker=Speaker.AGENT, text=request.text.upper())]

    monkeypatch.setitem(FORMATS, "srt", TextFormat(parse, (".srt",)))
    transcript = parse_text_consultation(b"anything", ".srt", ["Kim"], max_segments=7)
    assert [s.text for s in transcript.segments] == ["ANYTHING"]
    assert (seen[0].agent_names, seen[0].max_segments) == (["Kim"], 7)


def test_unsupported_extension() -> None:
    with pytest.raises(TextImportError, match=r"unsupported text format '\.pdf'"):
        parse_text_consultation(b"Agent: hi", ".pdf")


def test_cp949_korean_dialogue_is_decoded_and_speakers_mapped() -> None:
    transcript = parse_text_consultation(KOREAN_DIALOGUE.encode("cp949"), ".txt")
    assert [(s.speaker, s.text) for s in transcript.segments] == [
        (Speaker.AGENT, "안녕하세요, 고객님."),
        (Speaker.CUSTOMER, "카드 분실 신고하려고요."),
    ]
    assert transcript.language == "ko"
    assert transcript.source == "text"
    assert transcript.duration_s is None
    assert transcript.engine is None
    assert all(s.confidence is None for s in transcript.segments)


def test_utf16_bom_dialogue_parses_like_utf8() -> None:
    utf8 = parse_text_consultation(KOREAN_DIALOGUE.encode("utf-8"), ".txt")
    utf16 = parse_text_consultation(KOREAN_DIALOGUE.encode("utf-16"), "txt")
    assert utf16.segments == utf8.segments


# --- limits ---------------------------------------------------------------------------------


def _chat(fmt: str, n: int) -> tuple[bytes, str]:
    if fmt == "json":
        return json.dumps(
            [{"role": "user", "text": f"message {i}"} for i in range(n)]
        ).encode(), ".json"
    if fmt == "jsonl":
        lines = [json.dumps({"role": "user", "text": f"message {i}"}) for i in range(n)]
        return "\n".join(lines).encode(), ".json"
    if fmt == "json-strings":
        return json.dumps([f"Agent: message {i}" for i in range(n)]).encode(), ".json"
    if fmt == "txt":
        return "\n".join(f"Agent: message {i}" for i in range(n)).encode(), ".txt"
    cues = [
        f"{i + 1}\n00:00:{i % 60:02d},000 --> 00:00:{i % 60:02d},500\nmessage {i}\n"
        for i in range(n)
    ]
    return "\n".join(cues).encode(), ".srt"


@pytest.mark.parametrize("fmt", ["json", "jsonl", "json-strings", "txt", "srt"])
def test_segment_limit_in_every_format(fmt: str) -> None:
    at_limit, ext = _chat(fmt, 50)
    assert len(parse_text_consultation(at_limit, ext, max_segments=50).segments) == 50
    over, ext = _chat(fmt, 51)
    with pytest.raises(TextImportError) as caught:
        parse_text_consultation(over, ext, max_segments=50)
    assert str(caught.value) == (
        "chat is too long: more than 50 messages (the limit is set by CSCOACH_MAX_CHAT_SEGMENTS)"
    )


def test_character_limit_is_checked_on_the_text() -> None:
    data = ("Agent: " + "a" * 93).encode()  # 100 characters
    assert parse_text_consultation(data, ".txt", max_chars=100).segments
    with pytest.raises(TextImportError) as caught:
        parse_text_consultation(data + b"!", ".txt", max_chars=100)
    assert str(caught.value) == (
        "chat is too long: 101 characters, more than the 100 characters allowed (the limit is "
        "set by CSCOACH_MAX_CHAT_CHARS)"
    )


def test_character_limit_is_checked_on_the_bytes_before_decoding() -> None:
    # 401 bytes cannot be 100 characters in any encoding; even non-text is refused as too long.
    data = b"\x00\xff" * 200 + b"!"
    with pytest.raises(TextImportError, match="its 401 bytes hold more than the 100 characters"):
        parse_text_consultation(data, ".txt", max_chars=100)
    # Korean in UTF-8 takes 3 bytes a character: 100 characters fit in 300 bytes.
    korean = ("상담원: " + "가" * 95).encode()
    assert len(korean) > 100
    assert parse_text_consultation(korean, ".txt", max_chars=100).segments


def test_default_limits() -> None:
    assert (DEFAULT_MAX_CHAT_SEGMENTS, DEFAULT_MAX_CHAT_CHARS) == (20_000, 2_000_000)
    data, ext = _chat("json", DEFAULT_MAX_CHAT_SEGMENTS + 1)
    with pytest.raises(TextImportError, match="more than 20,000 messages"):
        parse_text_consultation(data, ext)
