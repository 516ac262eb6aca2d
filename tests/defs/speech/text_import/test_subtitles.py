"""Subtitles prove that SRT and WebVTT cues keep their timings, that speakers come from voice
tags or labels in the cue text, that WebVTT headers, NOTE and STYLE blocks and markup are
dropped, that a ".txt" holding WebVTT or SRT is read as such, and that broken timing names the
cue it is in."""

from __future__ import annotations

import pytest

from cscoach_pipeline.defs.speech.text_import import TextImportError, parse_text_consultation
from cscoach_pipeline.defs.speech.transcript import Speaker
from tests.defs.speech.text_import.helpers import speakers_and_texts


def test_srt_cues() -> None:
    data = (
        b"1\r\n00:00:01,000 --> 00:00:04,000\r\nAgent: Hello,\r\nhow can I help?\r\n\r\n"
        b"2\r\n00:00:04,500 --> 00:00:06,250\r\n<i>Customer: I lost my card.</i>\r\n\r\n"
        b"3\r\n00:00:07,000 --> 00:00:08,000\r\nmm-hmm\r\n"
    )
    transcript = parse_text_consultation(data, ".srt")
    assert [(s.start_s, s.end_s, s.speaker, s.text) for s in transcript.segments] == [
        (1.0, 4.0, Speaker.AGENT, "Hello, how can I help?"),
        (4.5, 6.25, Speaker.CUSTOMER, "I lost my card."),
        (7.0, 8.0, Speaker.UNKNOWN, "mm-hmm"),
    ]
    assert transcript.duration_s == 8.0
    assert transcript.is_timed


def test_vtt_voice_tags_and_timings() -> None:
    data = (
        "WEBVTT\nKind: captions\nLanguage: ko\n\n"
        "NOTE exported by the recorder\n\n"
        "STYLE\n::cue { color: yellow }\n\n"
        "intro\n00:01.000 --> 00:04.000 align:start position:10%\n"
        "<v Agent>안녕하세요 &amp; 반갑습니다</v>\n\n"
        "00:04.500 --> 00:06.000\n<v.loud Customer>카드를 <b>잃어버렸어요</b></v>\n\n"
        "01:00:06.000 --> 01:00:08.500\n<c.yellow>상담원: 확인해 <00:00:07.000>드릴게요</c>\n"
    ).encode()
    transcript = parse_text_consultation(data, ".vtt")
    assert [(s.start_s, s.end_s, s.speaker, s.text) for s in transcript.segments] == [
        (1.0, 4.0, Speaker.AGENT, "안녕하세요 & 반갑습니다"),
        (4.5, 6.0, Speaker.CUSTOMER, "카드를 잃어버렸어요"),
        (3606.0, 3608.5, Speaker.AGENT, "확인해 드릴게요"),
    ]
    assert transcript.language == "ko"
    assert transcript.duration_s == 3608.5


def test_vtt_saved_as_txt_is_read_as_vtt() -> None:
    data = b"WEBVTT\n\n00:01.000 --> 00:02.000\n<v Customer>hi\n"
    assert speakers_and_texts(data, ".txt") == [(Speaker.CUSTOMER, "hi")]


def test_srt_saved_as_txt_is_read_as_srt() -> None:
    transcript = parse_text_consultation(b"1\n00:00:01,000 --> 00:00:02,500\nAgent: hi\n", ".txt")
    assert [(s.start_s, s.end_s, s.speaker) for s in transcript.segments] == [
        (1.0, 2.5, Speaker.AGENT)
    ]


@pytest.mark.parametrize(
    ("data", "cue"),
    [
        (b"1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:0x,000 --> 00:00:05,000\nno\n", "2"),
        (b"7\n00:00:01,000 -> 00:00:04,000\nhello\n", "7"),
        (b"1\n00:00:05,000 --> 00:00:04,000\nbackwards\n", "1"),
    ],
    ids=["bad-digit", "bad-arrow", "end-before-start"],
)
def test_malformed_srt_timing_names_the_cue(data: bytes, cue: str) -> None:
    with pytest.raises(TextImportError, match=rf"cue {cue} has malformed timing"):
        parse_text_consultation(data, ".srt")


@pytest.mark.parametrize(
    "data",
    [
        b"WEBVTT 00:01.000 --> 00:02.000\nNote: x\n",
        b"WEBVTT: 00:00:01,000 --> 00:00:02,000\nSam: hi",
    ],
    ids=["timing-on-header", "timing-after-colon"],
)
def test_timing_on_the_webvtt_line_is_a_readable_error_not_a_crash(data: bytes) -> None:
    with pytest.raises(TextImportError, match="no dialogue found"):
        parse_text_consultation(data, ".vtt")
