"""Text consultations (txt, md, json, srt, vtt) import into Transcripts, whatever their encoding.

Proves that: every encoding a contact centre emits (UTF-8 with/without BOM, UTF-16 LE/BE, CP949)
decodes to the same text; speaker labels in English and Korean map to agent/customer; chat
exports and subtitles keep their timings; and anything that is not a usable text consultation
(empty, whitespace, binary, broken JSON, broken subtitle timing) fails with a readable reason;
and that hostile shapes (JSON nested 10,000 deep, chats over the segment or character limit,
in every format) fail with a specific reason naming the limit and its setting.
"""

from __future__ import annotations

import json

import pytest

from cscoach_pipeline.defs.speech.text_import import (
    DEFAULT_MAX_CHAT_CHARS,
    DEFAULT_MAX_CHAT_SEGMENTS,
    MAX_JSON_DEPTH,
    TEXT_EXTENSIONS,
    TextImportError,
    decode_text,
    detect_language,
    parse_text_consultation,
)
from cscoach_pipeline.defs.speech.transcript import Speaker
from cscoach_pipeline.errors import ConsultationInputError

KOREAN_DIALOGUE = "상담원: 안녕하세요, 고객님.\n고객: 카드 분실 신고하려고요."
ENGLISH_DIALOGUE = "Agent: Hello, how can I help?\r\nCustomer: I lost my card."


def _speakers_and_texts(data: bytes, ext: str, **kwargs: object) -> list[tuple[Speaker, str]]:
    transcript = parse_text_consultation(data, ext, **kwargs)  # type: ignore[arg-type]
    return [(s.speaker, s.text) for s in transcript.segments]


# --- decoding -------------------------------------------------------------------------------


def test_text_extensions() -> None:
    assert frozenset({".txt", ".md", ".json", ".srt", ".vtt"}) == TEXT_EXTENSIONS


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (ENGLISH_DIALOGUE.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + ENGLISH_DIALOGUE.encode("utf-8"), "utf-8-sig"),
        (b"\xff\xfe" + ENGLISH_DIALOGUE.encode("utf-16-le"), "utf-16"),
        (b"\xfe\xff" + ENGLISH_DIALOGUE.encode("utf-16-be"), "utf-16"),
        (ENGLISH_DIALOGUE.encode("utf-16-le"), "utf-16-le"),
        (ENGLISH_DIALOGUE.encode("utf-16-be"), "utf-16-be"),
    ],
    ids=["utf8", "utf8-bom", "utf16le-bom", "utf16be-bom", "utf16le-nobom", "utf16be-nobom"],
)
def test_decode_english_in_every_encoding(data: bytes, encoding: str) -> None:
    text, name = decode_text(data)
    assert name == encoding
    # BOM stripped, CRLF normalised.
    assert text == "Agent: Hello, how can I help?\nCustomer: I lost my card."


@pytest.mark.parametrize("codec", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "cp949", "euc-kr"])
def test_decode_korean_in_every_encoding(codec: str) -> None:
    text, _ = decode_text(KOREAN_DIALOGUE.encode(codec))
    assert text == KOREAN_DIALOGUE


def test_cp949_korean_dialogue_is_decoded_and_speakers_mapped() -> None:
    data = KOREAN_DIALOGUE.encode("cp949")
    assert decode_text(data)[1] == "cp949"
    transcript = parse_text_consultation(data, ".txt")
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


# --- errors ---------------------------------------------------------------------------------


def test_empty_file() -> None:
    with pytest.raises(TextImportError, match=r"file is empty \(0 bytes\)"):
        decode_text(b"")


def test_whitespace_only_file() -> None:
    with pytest.raises(TextImportError, match="only whitespace"):
        parse_text_consultation(b" \r\n\t \n", ".txt")
    with pytest.raises(TextImportError, match="only whitespace"):
        parse_text_consultation(b"\xef\xbb\xbf\n", ".md")


def test_png_renamed_to_txt_is_rejected_as_binary() -> None:
    png = (
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\x00\x00\x01\x00\x08\x06"
        b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\x0bIDATx\x9cc\x00\x01\x00\x00\x05\x00\x01"
    )
    with pytest.raises(TextImportError, match=r"file is not text: \d+% of bytes are binary"):
        parse_text_consultation(png, ".txt")


def test_random_binary_is_rejected() -> None:
    data = bytes((i * 197 + 13) % 256 for i in range(4096))  # deterministic "random" bytes
    with pytest.raises(TextImportError, match="file is not text"):
        decode_text(data)


def test_zip_header_is_rejected() -> None:
    with pytest.raises(TextImportError, match="file is not text"):
        decode_text(b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + b"\x00\x01\x02\x03" * 10)


def test_text_with_many_control_characters_is_rejected() -> None:
    with pytest.raises(TextImportError, match="binary/control"):
        decode_text(b"Agent: hi\x01\x02\x03\x04\x05\x06\x07\x08")


def test_errors_are_value_errors_and_input_errors() -> None:
    with pytest.raises(ValueError):
        decode_text(b"")
    with pytest.raises(ConsultationInputError):
        decode_text(b"")


def test_unsupported_extension() -> None:
    with pytest.raises(TextImportError, match=r"unsupported text format '\.pdf'"):
        parse_text_consultation(b"Agent: hi", ".pdf")


def test_markdown_with_only_headings_has_no_dialogue() -> None:
    with pytest.raises(TextImportError, match="no dialogue found in text"):
        parse_text_consultation(b"# Title\n\n## Section\n---\n", ".md")


# --- plain text and markdown ----------------------------------------------------------------


def test_english_prefixes_map_to_roles() -> None:
    data = (
        "Agent: a\nRepresentative: b\nREP: c\nCSR: d\nadvisor: e\nSupport: f\nOperator: g\n"
        "Customer: h\nclient: i\nCaller: j\nUser: k\n[Agent]: l\n[Customer] m\n"
        "상담사: n\n직원: o\n손님: p\n고객님: q\n"
    ).encode()
    got = _speakers_and_texts(data, ".txt")
    a, c = Speaker.AGENT, Speaker.CUSTOMER
    assert [s for s, _ in got] == [a] * 7 + [c] * 4 + [a, c] + [a, a, c, c]
    assert [t for _, t in got] == list("abcdefghijklmnopq")


def test_agent_names_and_other_labels() -> None:
    data = b"Sarah: Hello, this is Sarah.\nJohn Smith: Hi Sarah.\nSpeaker 2: hmm\n"
    got = _speakers_and_texts(data, ".txt", agent_names=["sarah"])
    assert got == [
        (Speaker.AGENT, "Hello, this is Sarah."),
        (Speaker.UNKNOWN, "Hi Sarah."),
        (Speaker.UNKNOWN, "hmm"),
    ]


def test_continuation_lines_join_previous_speaker() -> None:
    data = (
        b"Customer: I was charged twice\n"
        b"for the same order.\n"
        b"\n"
        b"Please check: http://example.com/order/1\n"
        b"Agent: Let me look.\n"
    )
    got = _speakers_and_texts(data, ".txt")
    assert got == [
        (
            Speaker.CUSTOMER,
            "I was charged twice for the same order. Please check: http://example.com/order/1",
        ),
        (Speaker.AGENT, "Let me look."),
    ]


def test_lines_before_any_label_start_an_unknown_segment() -> None:
    got = _speakers_and_texts(b"hello?\nAgent: Hi!\n", ".txt")
    assert got == [(Speaker.UNKNOWN, "hello?"), (Speaker.AGENT, "Hi!")]


def test_unlabelled_text_is_one_unknown_utterance_per_line() -> None:
    got = _speakers_and_texts(b"first line\nsecond line\n", ".txt")
    assert got == [(Speaker.UNKNOWN, "first line"), (Speaker.UNKNOWN, "second line")]


def test_prose_with_colons_is_not_a_speaker() -> None:
    got = _speakers_and_texts(b"Agent: Sure.\nnote to self: call back at 10:30\n", ".txt")
    assert got == [(Speaker.AGENT, "Sure. note to self: call back at 10:30")]


def test_markdown_transcript() -> None:
    data = (
        "# Consultation 2024-05-01\n"
        "\n"
        "## Transcript\n"
        "- **Agent:** Thank you for calling.\n"
        "- **Customer**: My card was stolen.\n"
        "  It happened yesterday.\n"
        "* *Agent:* I'll block it now.\n"
        "---\n"
        "**고객:** 감사합니다.\n"
    ).encode()
    transcript = parse_text_consultation(data, ".md")
    assert [(s.speaker, s.text) for s in transcript.segments] == [
        (Speaker.AGENT, "Thank you for calling."),
        (Speaker.CUSTOMER, "My card was stolen. It happened yesterday."),
        (Speaker.AGENT, "I'll block it now."),
        (Speaker.CUSTOMER, "감사합니다."),
    ]
    assert transcript.language == "en"


def test_timestamps_before_and_after_the_name() -> None:
    data = (
        b"00:00:05 Agent: Hello.\n"
        b"Customer [00:00:09]: Hi.\n"
        b"[00:00:15] Agent: How can I help?\n"
        b"Customer (00:00:21.5): Card.\n"
    )
    transcript = parse_text_consultation(data, ".txt")
    assert [(s.start_s, s.end_s, s.speaker) for s in transcript.segments] == [
        (5.0, 9.0, Speaker.AGENT),
        (9.0, 15.0, Speaker.CUSTOMER),
        (15.0, 21.5, Speaker.AGENT),
        (21.5, None, Speaker.CUSTOMER),
    ]
    assert transcript.segments[1].text == "Hi."
    assert transcript.duration_s == 21.5


def test_wall_clock_chat_times_become_relative() -> None:
    data = b"[10:32:05] Agent: Hi\n[10:32:20] Customer: Hello\n[10:33:05] Agent: Bye\n"
    transcript = parse_text_consultation(data, ".txt")
    assert [s.start_s for s in transcript.segments] == [0.0, 15.0, 60.0]
    assert transcript.duration_s == 60.0


# --- JSON -----------------------------------------------------------------------------------


def test_json_top_level_list() -> None:
    data = json.dumps(
        [
            {"speaker": "Agent", "text": "Hello", "start": 0, "end": 2.5},
            {"speaker": "Customer", "text": ["Hi", "there"], "start": "00:00:03.5", "end": 5},
            {"speaker": "Agent", "text": "   "},
            {"speaker": "상담원", "utterance": "네"},
        ]
    ).encode()
    transcript = parse_text_consultation(data, ".json")
    assert [(s.speaker, s.text, s.start_s, s.end_s) for s in transcript.segments] == [
        (Speaker.AGENT, "Hello", 0.0, 2.5),
        (Speaker.CUSTOMER, "Hi there", 3.5, 5.0),
        (Speaker.AGENT, "네", None, None),
    ]
    assert transcript.duration_s == 5.0


def test_json_messages_with_roles() -> None:
    data = json.dumps(
        {
            "id": "chat-1",
            "messages": [
                {"role": "user", "content": "My card is blocked."},
                {"role": "assistant", "content": [{"type": "text", "text": "Let me check."}]},
                {"role": "end-user", "message": "Thanks"},
            ],
        }
    ).encode()
    got = _speakers_and_texts(data, ".json")
    assert got == [
        (Speaker.CUSTOMER, "My card is blocked."),
        (Speaker.AGENT, "Let me check."),
        (Speaker.CUSTOMER, "Thanks"),
    ]


def test_json_nested_authors_with_iso_timestamps() -> None:
    data = json.dumps(
        {
            "conversation": [
                {
                    "author": {"name": "Minji", "type": "staff"},
                    "body": "안녕하세요, 무엇을 도와드릴까요?",
                    "timestamp": "2024-05-01T09:00:00Z",
                },
                {
                    "author": {"name": "Hong", "role": "visitor"},
                    "body": "카드를 잃어버렸어요.",
                    "timestamp": "2024-05-01T18:00:30+09:00",
                },
                {
                    "sender": {"name": "Jisoo"},
                    "body": "분실 신고 도와드리겠습니다.",
                    "timestamp": "2024-05-01T09:01:10Z",
                },
            ]
        }
    ).encode("utf-8")
    transcript = parse_text_consultation(data, ".json", agent_names=["Jisoo"])
    assert [(s.speaker, s.start_s, s.end_s) for s in transcript.segments] == [
        (Speaker.AGENT, 0.0, 30.0),
        (Speaker.CUSTOMER, 30.0, 70.0),
        (Speaker.AGENT, 70.0, None),
    ]
    assert transcript.language == "ko"
    assert transcript.duration_s == 70.0


def test_json_lines() -> None:
    data = b'{"from": "customer", "text": "hi"}\n{"from": "agent", "text": "hello"}\n'
    assert _speakers_and_texts(data, ".json") == [
        (Speaker.CUSTOMER, "hi"),
        (Speaker.AGENT, "hello"),
    ]


def test_invalid_json() -> None:
    with pytest.raises(TextImportError, match=r"invalid JSON at line 1 column \d+"):
        parse_text_consultation(b'{"messages": [', ".json")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"data": []}', "JSON chat export has no messages: expected a list or an object"),
        (b'"hello"', "JSON chat export has no messages"),
        (b"[]", "message list is empty"),
        (b'[{"id": 1}, 2]', "no recognisable messages"),
        (b'[{"role": "user", "text": ""}]', "no dialogue found in text"),
    ],
)
def test_json_without_messages(data: bytes, reason: str) -> None:
    with pytest.raises(TextImportError, match=reason):
        parse_text_consultation(data, ".json")


# --- subtitles ------------------------------------------------------------------------------


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
    assert _speakers_and_texts(data, ".txt") == [(Speaker.CUSTOMER, "hi")]


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


# --- language -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("상담원: 안녕하세요, 고객님.", "ko"),
        ("고객님 iPhone 15 모델 확인해 드릴게요", "ko"),
        ("Agent: Hello, how can I help?", "en"),
        ("Café crème, s'il vous plaît", "en"),
        ("こんにちは、お元気ですか", None),
        ("12:30 -- !!", None),
        ("", None),
    ],
)
def test_detect_language(text: str, language: str | None) -> None:
    assert detect_language(text) == language


# --- limits and hostile structure -----------------------------------------------------------


@pytest.mark.parametrize("ext", [".json", ".txt"])
@pytest.mark.parametrize("opening", ["[", '{"messages": '])
def test_deeply_nested_json_is_a_readable_error(ext: str, opening: str) -> None:
    closing = "]" if opening == "[" else "}"
    data = (opening * 10_000 + closing * 10_000).encode()
    with pytest.raises(TextImportError, match=f"JSON nested deeper than {MAX_JSON_DEPTH} levels"):
        parse_text_consultation(data, ext)


def test_nesting_within_the_limit_and_brackets_in_strings_are_fine() -> None:
    # Brackets inside strings are text, not nesting.
    text = "[" * 300 + "]" * 300
    doc = {"meta": [[[[{"x": 1}]]]], "messages": [{"role": "user", "text": text}]}
    [segment] = parse_text_consultation(json.dumps(doc).encode(), ".json").segments
    assert segment.text == text


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
