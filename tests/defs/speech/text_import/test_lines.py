"""Plain-text and Markdown consultations prove that labelled lines become segments, unlabelled
lines continue the speaker above (or stand alone when nothing is labelled), Markdown headings,
rules and bullets are dropped, prose and URLs with colons are not labels, and timestamps before
or after the name become seconds, wall-clock times relative to the first message."""

from __future__ import annotations

import pytest

from cscoach_pipeline.defs.speech.text_import import TextImportError, parse_text_consultation
from cscoach_pipeline.defs.speech.transcript import Speaker
from tests.defs.speech.text_import.helpers import speakers_and_texts


def test_continuation_lines_join_previous_speaker() -> None:
    data = (
        b"Customer: I was charged twice\n"
        b"for the same order.\n"
        b"\n"
        b"Please check: http://example.com/order/1\n"
        b"Agent: Let me look.\n"
    )
    got = speakers_and_texts(data, ".txt")
    assert got == [
        (
            Speaker.CUSTOMER,
            "I was charged twice for the same order. Please check: http://example.com/order/1",
        ),
        (Speaker.AGENT, "Let me look."),
    ]


def test_lines_before_any_label_start_an_unknown_segment() -> None:
    got = speakers_and_texts(b"hello?\nAgent: Hi!\n", ".txt")
    assert got == [(Speaker.UNKNOWN, "hello?"), (Speaker.AGENT, "Hi!")]


def test_unlabelled_text_is_one_unknown_utterance_per_line() -> None:
    got = speakers_and_texts(b"first line\nsecond line\n", ".txt")
    assert got == [(Speaker.UNKNOWN, "first line"), (Speaker.UNKNOWN, "second line")]


def test_prose_with_colons_is_not_a_speaker() -> None:
    got = speakers_and_texts(b"Agent: Sure.\nnote to self: call back at 10:30\n", ".txt")
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


def test_markdown_with_only_headings_has_no_dialogue() -> None:
    with pytest.raises(TextImportError, match="no dialogue found in text"):
        parse_text_consultation(b"# Title\n\n## Section\n---\n", ".md")


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


def test_chat_past_midnight_keeps_increasing() -> None:
    data = b"[23:59:50] Agent: Hi\n[00:00:10] Customer: Hello\n"
    transcript = parse_text_consultation(data, ".txt")
    assert [s.start_s for s in transcript.segments] == [0.0, 20.0]
