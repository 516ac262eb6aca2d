"""JSON chat exports prove that a top-level list, an object holding the messages (nested
authors, content parts), JSON Lines and a ".txt" holding JSON all read with their speakers and
times; that broken or message-less JSON fails with a readable reason; and that hostile nesting
fails naming the limit while the nesting of a ".txt" holding JSON is scanned only once."""

from __future__ import annotations

import json

import pytest

from cscoach_pipeline.defs.speech.text_import import (
    MAX_JSON_DEPTH,
    TextImportError,
    json_chat,
    parse_text_consultation,
)
from cscoach_pipeline.defs.speech.transcript import Speaker
from tests.defs.speech.text_import.helpers import speakers_and_texts


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
    got = speakers_and_texts(data, ".json")
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
    assert speakers_and_texts(data, ".json") == [
        (Speaker.CUSTOMER, "hi"),
        (Speaker.AGENT, "hello"),
    ]


def test_json_saved_as_txt_is_read_as_json() -> None:
    data = json.dumps({"messages": [{"role": "user", "text": "Agent: not a label"}]}).encode()
    assert speakers_and_texts(b"\n  " + data, ".txt") == [(Speaker.CUSTOMER, "Agent: not a label")]


def test_txt_opening_with_a_bracket_that_is_not_json_is_read_as_lines() -> None:
    data = b"[10:32:05] Agent: Hi\n[10:32:20] Customer: Hello\n"
    assert speakers_and_texts(data, ".txt") == [
        (Speaker.AGENT, "Hi"),
        (Speaker.CUSTOMER, "Hello"),
    ]


def test_json_behind_whitespace_json_rejects_says_where() -> None:
    # str.lstrip() skips U+3000 when sniffing, json does not: the reason names the position.
    data = ("\u3000" + json.dumps([{"role": "user", "text": "hi"}])).encode()
    with pytest.raises(TextImportError, match="invalid JSON at line 1 column 1: Expecting value"):
        parse_text_consultation(data, ".txt")


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


@pytest.mark.parametrize("ext", [".json", ".txt"])
@pytest.mark.parametrize("nesting", ["ok", "too deep"])
def test_nesting_is_scanned_once(ext: str, nesting: str, monkeypatch: pytest.MonkeyPatch) -> None:
    scans: list[int] = []
    real = json_chat.json_too_deep

    def counting(text: str) -> bool:
        scans.append(len(text))
        return real(text)

    monkeypatch.setattr(json_chat, "json_too_deep", counting)
    messages = [{"role": "user", "text": f"message {i}"} for i in range(MAX_JSON_DEPTH + 1)]
    if nesting == "ok":
        assert parse_text_consultation(json.dumps(messages).encode(), ext).segments
    else:
        with pytest.raises(TextImportError, match="nested deeper"):
            parse_text_consultation(b"[" * 200 + b"]" * 200, ext)
    assert len(scans) == 1
