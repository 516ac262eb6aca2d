"""Proves the call categories of categories/v1.yaml and the rule engine behind them.

- A category fires with its evidence: the segment, its start time and the quote; a mention
  the speaker negates does not fire it ("I don't want to cancel", "해지는 안 할게요"), while
  "no choice but to cancel" does (the stop word ends the negated stretch).
- Korean categories fire from Korean phrases; 불친절 is no compliment.
- Speaker and window: the customer's phrase said by the agent does not count; a greeting
  after the first 30 s is a missing greeting; a chat uses its first turns; a mono call with
  only unknown speakers cannot miss a greeting.
- Non-talk, interruptions and sentiment rules, each with its measured evidence, and only on
  timed calls where they need timing; `match: any`.
- A broken categories file fails with one error naming the file and the bad key; an unknown
  version names the ones available.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cscoach_pipeline.defs.scoring.categories import (
    CategoryFileError,
    compile_categories,
    load_categories,
    match_categories,
    parse_categories,
)
from cscoach_pipeline.defs.scoring.sentiment import segment_sentiments
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript

A, C, U = Speaker.AGENT, Speaker.CUSTOMER, Speaker.UNKNOWN
V1 = load_categories("v1")


def _chat(rows: list[tuple[Speaker, str]]) -> Transcript:
    return Transcript(segments=[Segment(speaker=s, text=t) for s, t in rows], source="text")


def _timed(rows: list[tuple[float, float, Speaker, str]]) -> Transcript:
    segments = [Segment(start_s=s, end_s=e, speaker=sp, text=t) for s, e, sp, t in rows]
    return Transcript(segments=segments, source="stt")


def _fired(transcript: Transcript, categories=V1) -> dict:
    matches = match_categories(transcript, segment_sentiments(transcript), categories)
    return {m.category_id: m for m in matches}


def test_v1_ships_the_categories_a_contact_centre_recognises() -> None:
    ids = {c.id for c in V1.categories}
    assert {
        "cancellation_intent", "escalation_request", "complaint", "repeat_contact",
        "compliment", "legal_threat", "long_hold", "greeting_missing",
    } <= ids  # fmt: skip


def test_a_category_fires_with_its_evidence_segment_and_time() -> None:
    call = _timed(
        [
            (0.0, 4.0, A, "Thank you for calling Acme, my name is Jo."),
            (4.5, 9.0, C, "Hi, I'm calling about my bill."),
            (9.5, 15.0, C, "Honestly I want to cancel my subscription."),
            (15.5, 18.0, A, "I'm sorry to hear that."),
        ]
    )
    fired = _fired(call)
    match = fired["cancellation_intent"]
    assert (match.segment_index, match.start_s) == (2, 9.5)
    assert match.evidence == 'customer: "Honestly I want to cancel my subscription."'
    assert match.hits == 1 and match.severity.value == "high"
    assert match.row()["category_id"] == "cancellation_intent"
    assert "greeting_missing" not in fired


@pytest.mark.parametrize(
    "said",
    [
        "I don't want to cancel my account, I just need a new router.",
        "No, I'm not going to cancel.",
        "I never said cancel my plan.",
    ],
)
def test_a_negated_mention_does_not_fire(said: str) -> None:
    chat = _chat([(A, "Hello, how can I help?"), (C, said)])
    assert "cancellation_intent" not in _fired(chat)


def test_a_stop_word_ends_the_negated_stretch() -> None:
    chat = _chat([(A, "Hello."), (C, "You leave me no choice but to cancel my contract.")])
    assert "cancellation_intent" in _fired(chat)


def test_negation_in_one_clause_does_not_reach_the_next() -> None:
    chat = _chat([(A, "Hi."), (C, "Not happy. I want to cancel my account.")])
    assert "cancellation_intent" in _fired(chat)


def test_korean_categories() -> None:
    chat = _chat(
        [
            (A, "안녕하세요, 고객센터 상담원 김민지입니다."),
            (C, "인터넷이 또 끊겼어요. 몇 번이나 전화했는지 몰라요."),
            (C, "해지하고 싶어요. 책임자 바꿔 주세요."),
            (C, "계속 이러면 소비자원에 신고하겠습니다."),
        ]
    )
    fired = _fired(chat)
    assert {"repeat_contact", "cancellation_intent", "escalation_request", "legal_threat"} <= set(
        fired
    )
    assert fired["repeat_contact"].segment_index == 1
    assert fired["legal_threat"].evidence == 'customer: "계속 이러면 소비자원에 신고하겠습니다."'
    assert "greeting_missing" not in fired


@pytest.mark.parametrize(
    "said",
    ["해지는 안 할게요. 요금제만 바꿔 주세요.", "해지하고 싶지 않아요.", "해지할 생각은 없어요."],
)
def test_korean_negation_does_not_fire(said: str) -> None:
    assert "cancellation_intent" not in _fired(_chat([(A, "안녕하세요."), (C, said)]))


def test_korean_compliment_but_not_its_negation() -> None:
    assert "compliment" in _fired(_chat([(A, "안녕하세요."), (C, "정말 친절하시네요.")]))
    assert "compliment" not in _fired(_chat([(A, "안녕하세요."), (C, "너무 불친절하네요.")]))


def test_the_speaker_must_be_the_rules() -> None:
    chat = _chat([(A, "Hello. If you want to cancel your plan, I can do that."), (C, "No thanks.")])
    assert "cancellation_intent" not in _fired(chat)


def test_greeting_missing_on_calls_and_chats() -> None:
    late = _timed(
        [
            (0.0, 5.0, C, "Hello?"),
            (5.0, 31.0, A, "Account number please."),
            (35.0, 40.0, A, "Thank you for calling, my name is Jo."),
        ]
    )
    match = _fired(late)["greeting_missing"]
    assert (match.segment_index, match.start_s) == (None, None)
    assert match.evidence == "not said by the agent in the first 30 s"
    on_time = _timed([(0.0, 5.0, C, "Hello?"), (25.0, 28.0, A, "Good morning, Acme.")])
    assert "greeting_missing" not in _fired(on_time)
    # A chat: the first two turns (a run of one speaker's messages is one turn).
    late_chat = _chat([(C, "hi"), (A, "order number?"), (A, "ok"), (C, "123"), (A, "hello")])
    assert "greeting_missing" in _fired(late_chat)
    assert "greeting_missing" not in _fired(_chat([(C, "hi"), (A, "Hello, welcome to Acme.")]))
    # Nobody labelled agent: whether the agent greeted cannot be told.
    assert "greeting_missing" not in _fired(_chat([(U, "order number?"), (U, "yes")]))


def test_long_hold_reports_the_gap() -> None:
    call = _timed(
        [
            (0.0, 4.0, A, "Hello, thanks for calling."),
            (5.0, 9.0, A, "Let me check, one moment please."),
            (75.0, 80.0, A, "Thank you for holding."),
        ]
    )
    match = _fired(call)["long_hold"]
    assert match.evidence == "66 s with nobody talking from 9 s"
    assert (match.segment_index, match.start_s) == (1, 9.0)
    short = _timed([(0.0, 4.0, A, "Hello."), (50.0, 52.0, A, "Thanks for holding.")])
    assert "long_hold" not in _fired(short)
    # Untimed text has no non-talk time.
    assert "long_hold" not in _fired(_chat([(A, "Hello."), (A, "One moment.")]))


def test_agent_talks_over_the_customer() -> None:
    rows = [(0.0, 2.0, A, "Hello.")]
    for n in range(3):
        start = 3.0 + n * 10
        rows += [(start, start + 5, C, "So the thing is"), (start + 2, start + 6, A, "Right, ok")]
    match = _fired(_timed(rows))["agent_talks_over"]
    assert match.hits == 3 and match.segment_index == 2 and match.start_s == 5.0
    assert _fired(_timed(rows[:5])).get("agent_talks_over") is None  # two are not enough


def test_unhappy_ending_uses_the_customer_sentiment_at_the_end() -> None:
    call = _timed(
        [
            (0.0, 5.0, A, "Hello, thanks for calling."),
            (5.0, 10.0, C, "Thanks, great to talk to you."),
            (60.0, 70.0, A, "There is nothing more I can do."),
            (70.0, 80.0, C, "This is terrible and I am very angry."),
        ]
    )
    match = _fired(call)["unhappy_ending"]
    assert match.segment_index == 3 and match.start_s == 70.0
    assert match.evidence.startswith("sentiment of the customer -0.")
    assert "in the last 60 s (below -0.25)" in match.evidence
    happy = _timed([(0.0, 5.0, C, "This is terrible."), (70.0, 80.0, C, "Thank you, perfect.")])
    assert "unhappy_ending" not in _fired(happy)


RULES = """
version: test
normalization: {contractions: [], bare_contractions: {}}
negation:
  en: {words: [not], within_words: 3}
  ko: {after: "않", within_chars: 4, before: "안$"}
categories:
"""


def _file(categories: str) -> str:
    return RULES + categories


def test_match_any() -> None:
    categories = compile_categories(
        parse_categories(
            _file(
                """
  - id: unhappy
    title: Unhappy
    description: either
    match: any
    rules:
      - said: {speaker: customer, en: [refund]}
      - sentiment: {speaker: customer, below: -0.5}
"""
            ),
            "test.yaml",
        )
    )
    assert "unhappy" in _fired(_chat([(C, "I want a refund.")]), categories)
    assert "unhappy" in _fired(_chat([(C, "This is horrible and awful.")]), categories)
    assert "unhappy" not in _fired(_chat([(C, "Thanks.")]), categories)


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        ("- said: {en: [refund]}\n        sentiment: {below: 0}", "exactly one of said"),
        ("- sentiment: {below: -0.5, above: 0.5}", "exactly one of below or above"),
        ("- said: {ko: [refund]}", "a Korean phrase needs Hangul"),
        ("- said: {en: [환불]}", "Korean phrases go under ko"),
        ("- said: {en: [refund], window: {first_s: 10, last_s: 5}}", "first or the last"),
        ("- non_talk: {min_s: 0}", "greater than 0"),
        ("- said: {en: [refund], speakr: customer}", "speakr"),
    ],
)
def test_a_broken_file_names_the_problem(rule: str, problem: str) -> None:
    text = _file(f"  - id: x\n    title: X\n    description: x\n    rules:\n      {rule}\n")
    with pytest.raises(CategoryFileError, match=r"invalid categories file test\.yaml") as error:
        parse_categories(text, "test.yaml")
    assert problem in str(error.value)
    assert "categories[0].rules[0]" in str(error.value)


def test_unknown_version_names_the_available(tmp_path: Path) -> None:
    with pytest.raises(CategoryFileError, match=r"unknown categories version 'v9'.*v1"):
        load_categories("v9")
    (tmp_path / "v2.yaml").write_text(_file("  - id: a\n"), encoding="utf-8")
    with pytest.raises(CategoryFileError, match="title"):
        load_categories("v2", tmp_path)
