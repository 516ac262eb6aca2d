"""Tests for ``cscoach_pipeline.defs.privacy.pii``.

They prove that every PII kind (phone, email, card, RRN, account, spoken number runs) is
replaced by its typed placeholder in English and Korean context, in typed-chat and in
Whisper speech-to-text form; that ordinary small numbers, prices, years, times, dates and
words like "one moment" survive unchanged; that replacement counts are exact; and that
redaction is idempotent; and that ``redact_segments`` redacts numbers and emails split over
consecutive segments or chat lines (card, phone, RRN, spoken digits) piece by piece, counted
once, while unrelated numbers in adjacent segments stay.
"""

from __future__ import annotations

import re

import pytest

from cscoach_pipeline.defs.privacy.pii import (
    PiiKind,
    RedactionResult,
    redact,
    redact_segments,
    redact_text,
)

# (input, expected redacted text, expected counts)
POSITIVE_CASES: list[tuple[str, str, dict[str, int]]] = [
    # Phones: Korean mobile / landline / service, +82, North American, local.
    ("Call me at 010-1234-5678 please.", "Call me at [PHONE] please.", {"PHONE": 1}),
    ("제 번호는 010-1234-5678입니다", "제 번호는 [PHONE]입니다", {"PHONE": 1}),
    ("휴대폰 01012345678로 연락 주세요", "휴대폰 [PHONE]로 연락 주세요", {"PHONE": 1}),
    ("서울 02-123-4567, 경기 031 123 4567", "서울 [PHONE], 경기 [PHONE]", {"PHONE": 2}),
    ("대표번호 1588-1234로 문의하세요", "대표번호 [PHONE]로 문의하세요", {"PHONE": 1}),
    ("my number is +82 10 1234 5678.", "my number is [PHONE].", {"PHONE": 1}),
    ("US office: +1 415 555 0100", "US office: [PHONE]", {"PHONE": 1}),
    ("Call (415) 555-0100 today", "Call [PHONE] today", {"PHONE": 1}),
    ("dial 555-0100 or 555 1234", "dial [PHONE] or [PHONE]", {"PHONE": 2}),
    ("call 010-1234-5678 2 times", "call [PHONE] 2 times", {"PHONE": 1}),
    # Whisper dictation written as single digits.
    ("my number is 0 1 0 1 2 3 4 5 6 7 8", "my number is [PHONE]", {"PHONE": 1}),
    # Emails: written and spoken.
    ("mail john.smith@example.com now", "mail [EMAIL] now", {"EMAIL": 1}),
    ("이메일은 hong@example.co.kr입니다", "이메일은 [EMAIL]입니다", {"EMAIL": 1}),
    ("my email is john dot smith at example dot com", "my email is [EMAIL]", {"EMAIL": 1}),
    ("It's Kim At Naver Dot Co Dot KR, thanks", "It's [EMAIL], thanks", {"EMAIL": 1}),
    ("reach me at john at gmail dot com", "reach me at [EMAIL]", {"EMAIL": 1}),
    # Resident registration numbers.
    ("주민번호 900101-1234567", "주민번호 [RRN]", {"RRN": 1}),
    (
        "my resident registration number is 900101 1234567",
        "my resident registration number is [RRN]",
        {"RRN": 1},
    ),
    ("9001011234567", "[RRN]", {"RRN": 1}),
    # Cards (Luhn-valid).
    ("card 4111 1111 1111 1111 exp soon", "card [CARD] exp soon", {"CARD": 1}),
    ("카드번호 5555-5555-5555-4444 입니다", "카드번호 [CARD] 입니다", {"CARD": 1}),
    ("amex 3782 822463 10005", "amex [CARD]", {"CARD": 1}),
    # Accounts and other long digit runs.
    ("계좌 110-123-456789로 보내주세요", "계좌 [ACCOUNT]로 보내주세요", {"ACCOUNT": 1}),
    ("My account is 123-456789.", "My account is [ACCOUNT].", {"ACCOUNT": 1}),
    ("계좌번호는 1234567 입니다", "계좌번호는 [ACCOUNT] 입니다", {"ACCOUNT": 1}),
    # Implausible month, or 7th digit 9: not an RRN, still a long run.
    ("901301-1234567", "[ACCOUNT]", {"ACCOUNT": 1}),
    ("900101-9234567", "[ACCOUNT]", {"ACCOUNT": 1}),
    # Spoken number runs, typed by the nearest cue word.
    (
        "My phone number is zero ten one thousand two hundred thirty four "
        "five thousand six hundred seventy eight.",
        "My phone number is [PHONE].",
        {"PHONE": 1},
    ),
    ("call one eight hundred five five five one two one two", "call [PHONE]", {"PHONE": 1}),
    ("my mobile is oh ten 1234 5678", "my mobile is [PHONE]", {"PHONE": 1}),
    (
        "my account number is one two three four five six seven eight",
        "my account number is [ACCOUNT]",
        {"ACCOUNT": 1},
    ),
    (
        "my card number is four one one one, one one one one",
        "my card number is [CARD]",
        {"CARD": 1},
    ),
    ("주민 번호 nine zero zero one zero one", "주민 번호 [RRN]", {"RRN": 1}),
    ("카드 four one one one one one one one", "카드 [CARD]", {"CARD": 1}),
    ("계좌 one one zero one two three", "계좌 [ACCOUNT]", {"ACCOUNT": 1}),
    ("전화 zero one zero, one two three four", "전화 [PHONE]", {"PHONE": 1}),
    ("the code is one two three four five six", "the code is [NUMBER]", {"NUMBER": 1}),
    ("reference double five triple seven eight nine", "reference [NUMBER]", {"NUMBER": 1}),
    ("he said 12 34 56", "he said [NUMBER]", {"NUMBER": 1}),
]

NEGATIVE_CASES: list[str] = [
    "It takes 3 days.",
    "an order of 2 items",
    "wait 10 minutes",
    "It costs $49.99 per month.",
    "since 2024",
    "see you at 10:30",
    "delivered on 2024-05-01",
    "at 10:30 on 2024-05-01 for 3 days",
    "from 2023-2024",
    "one moment please",
    "I have one question",
    "Oh, one moment.",
    "I need twenty-four hours",
    "twenty twenty four",
    "two hundred thirty dollars",
    "one hundred twenty five thousand customers",
    "ninety nine dollars and ninety nine cents",
    "총 150,000원입니다",
    "I paid 150000 won",
    "version 1.2.3",
    "Look at example dot com",
    "1990년 1월 1일",
    "",
]

_NUMBER_WORD_RE = re.compile(
    r"\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen"
    r"|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty"
    r"|seventy|eighty|ninety|hundred|thousand|million)\b",
    re.IGNORECASE,
)


@pytest.mark.parametrize(("text", "expected", "counts"), POSITIVE_CASES)
def test_redacts_each_kind(text: str, expected: str, counts: dict[str, int]) -> None:
    result = redact(text)
    assert result.text == expected
    assert result.counts == counts
    assert result.total == sum(counts.values())


@pytest.mark.parametrize("text", NEGATIVE_CASES)
def test_ordinary_text_is_unchanged(text: str) -> None:
    result = redact(text)
    assert result.text == text
    assert result.counts == {}
    assert result.total == 0


@pytest.mark.parametrize(
    "text", [case[0] for case in POSITIVE_CASES] + [case[1] for case in POSITIVE_CASES]
)
def test_redaction_is_idempotent(text: str) -> None:
    once = redact_text(text)
    again = redact(once)
    assert again.text == once
    assert again.counts == {}


def test_luhn_decides_card_versus_account() -> None:
    assert redact_text("card 4111 1111 1111 1111") == "card [CARD]"
    # Same shape, last digit changed: fails Luhn, so it is only an account-like run.
    invalid = redact("card 4111 1111 1111 1112")
    assert invalid.text == "card [ACCOUNT]"
    assert invalid.counts == {"ACCOUNT": 1}
    assert redact_text("1234-5678-9012-3456") == "[ACCOUNT]"


def test_spoken_phone_number_leaves_no_digit_words() -> None:
    text = (
        "My phone number is zero ten one thousand two hundred thirty four "
        "five thousand six hundred seventy eight."
    )
    out = redact_text(text)
    assert "[PHONE]" in out
    assert _NUMBER_WORD_RE.search(out) is None
    assert out.endswith(".")


def test_spoken_email_is_redacted() -> None:
    out = redact_text("my email is john dot smith at example dot com")
    assert "[EMAIL]" in out
    assert "john" not in out and "example" not in out


def test_multiple_kinds_in_one_string_are_all_counted() -> None:
    text = (
        "Hi, call 010-1234-5678 or 02-123-4567, mail a.b@example.io, "
        "card 4111-1111-1111-1111, 계좌 110-123-456789, 주민번호 900101-1234567, "
        "code one two three four five six. Thanks for 3 items."
    )
    result = redact(text)
    assert result.text == (
        "Hi, call [PHONE] or [PHONE], mail [EMAIL], card [CARD], 계좌 [ACCOUNT], "
        "주민번호 [RRN], code [NUMBER]. Thanks for 3 items."
    )
    assert result.counts == {
        "PHONE": 2,
        "EMAIL": 1,
        "CARD": 1,
        "RRN": 1,
        "ACCOUNT": 1,
        "NUMBER": 1,
    }
    assert result.total == 7


def test_whitespace_and_lines_are_preserved() -> None:
    text = "  line one\n010-1234-5678\n\t2 items  "
    assert redact_text(text) == "  line one\n[PHONE]\n\t2 items  "


def test_public_types() -> None:
    assert [kind.value for kind in PiiKind] == [
        "PHONE",
        "EMAIL",
        "CARD",
        "RRN",
        "ACCOUNT",
        "NUMBER",
    ]
    assert PiiKind.CARD.placeholder == "[CARD]"
    result = redact("nothing here")
    assert isinstance(result, RedactionResult)
    with pytest.raises(AttributeError):
        result.text = "changed"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A cue is consumed by the first finding after it.
        ("phone 010-1234-5678, then one two three four five six", "phone [PHONE], then [NUMBER]"),
        # Cues do not reach across a sentence end.
        ("My card expired. one two three four five six", "My card expired. [NUMBER]"),
        # Cues more than five words back are ignored.
        (
            "call me, well, let me see, hmm, one two three four five six",
            "call me, well, let me see, hmm, [NUMBER]",
        ),
        # A specific cue beats the generic "number".
        ("account number one two three four five six", "account number [ACCOUNT]"),
    ],
)
def test_cue_window(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Speech-to-text garbles dictated numbers and addresses; these shapes come from the
        # bundled tiny.en model transcribing our own test calls.
        ("You can reach me at 0.04,321,", "You can reach me at [PHONE],"),
        ("You can reach me at 0.43218765.", "You can reach me at [NUMBER]."),
        ("call me back on 010.1234.5678 please", "call me back on [PHONE] please"),
        ("My email is jongofimple.com.", "My email is [EMAIL]."),
        ("my email address is john and have an ample dot com thanks",
         "my email address is [EMAIL] thanks"),
    ],
)  # fmt: skip
def test_redacts_speech_to_text_garbled_pii(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text", ["It costs 150,000 won", "pi is 3.14", "I will email you. It is done.", "1975."]
)
def test_garbled_pii_rules_leave_ordinary_text(text: str) -> None:
    assert redact_text(text) == text


# --------------------------------------------------------------------------------------
# Across segment and line boundaries
# --------------------------------------------------------------------------------------


def _texts(results: list[RedactionResult]) -> list[str]:
    return [r.text for r in results]


def _total(results: list[RedactionResult]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for r in results:
        for kind, n in r.counts.items():
            totals[kind] = totals.get(kind, 0) + n
    return totals


def test_card_dictated_over_three_segments() -> None:
    results = redact_segments(
        ["my card is 4111", "1111 1111", "1111"],
        starts=[0.0, 2.1, 4.0],
        ends=[2.0, 3.9, 5.0],
        speakers=["customer"] * 3,
    )
    assert _texts(results) == ["my card is [CARD]", "[CARD]", "[CARD]"]
    # One card, counted once, in the segment where it starts.
    assert [r.counts for r in results] == [{"CARD": 1}, {}, {}]


def test_card_pieces_around_a_backchannel_of_the_other_speaker() -> None:
    results = redact_segments(
        ["my card is 4111 1111", "mm-hmm", "1111 1111"],
        starts=[0.0, 2.0, 3.0],
        ends=[2.0, 2.5, 5.0],
        speakers=["customer", "agent", "customer"],
    )
    assert _texts(results) == ["my card is [CARD]", "mm-hmm", "[CARD]"]
    assert _total(results) == {"CARD": 1}


def test_phone_over_two_untimed_chat_lines() -> None:
    results = redact_segments(["제 번호는 010-1234", "5678 입니다"], speakers=["customer"] * 2)
    assert _texts(results) == ["제 번호는 [PHONE]", "[PHONE] 입니다"]
    assert _total(results) == {"PHONE": 1}


def test_one_digit_group_per_line() -> None:
    results = redact_segments(["010", "9876", "5432", "thanks"])
    assert _texts(results) == ["[PHONE]", "[PHONE]", "[PHONE]", "thanks"]
    assert _total(results) == {"PHONE": 1}


@pytest.mark.parametrize(
    "texts", [["주민번호는 900101-", "1234567 입니다"], ["주민번호는 900101", "-1234567 입니다"]]
)
def test_rrn_split_at_the_hyphen(texts: list[str]) -> None:
    results = redact_segments(texts)
    assert _texts(results) == ["주민번호는 [RRN]", "[RRN] 입니다"]
    assert _total(results) == {"RRN": 1}


def test_spoken_digits_split_over_segments() -> None:
    texts = ["my phone number is zero one zero", "one two three four", "five six seven eight."]
    # On their own, no piece is long enough to be a number.
    assert [redact_text(t) for t in texts] == texts
    results = redact_segments(texts, starts=[0.0, 3.0, 6.0], ends=[3.0, 6.0, 9.0])
    assert _texts(results) == ["my phone number is [PHONE]", "[PHONE]", "[PHONE]."]
    assert _total(results) == {"PHONE": 1}
    assert all(_NUMBER_WORD_RE.search(t) is None for t in _texts(results))


def test_spoken_email_split_over_segments() -> None:
    results = redact_segments(["it is john dot smith at", "example dot com"])
    assert _texts(results) == ["it is [EMAIL]", "[EMAIL]"]


def test_cue_in_the_previous_segment_types_the_number() -> None:
    # "1234567" alone is a 7-digit amount-like group; after "my number is" it is a phone.
    assert redact_text("1234567") == "1234567"
    results = redact_segments(["my number is", "1234567"])
    assert _texts(results) == ["my number is", "[PHONE]"]


def test_whisper_spacing_is_kept_around_pieces() -> None:
    results = redact_segments([" my card is 4111 ", " 1111 1111", "1111.  "])
    assert _texts(results) == [" my card is [CARD] ", " [CARD]", "[CARD].  "]


@pytest.mark.parametrize(
    "texts",
    [
        ["We have 1234", "5678 customers"],  # would be an 8-digit account if joined
        ["room 12", "34 56 left"],  # would be a 6-digit number
        ["I paid 300", "2000 was the deposit"],  # would be a local phone 300-2000
        ["see you at 10:30", "2 people are coming"],
        ["it costs $49.99", "15 minutes"],
        ["since 2023", "2024 was better"],
    ],
)
def test_unrelated_numbers_in_adjacent_segments_stay(texts: list[str]) -> None:
    results = redact_segments(texts)
    assert _texts(results) == texts
    assert _total(results) == {}


def test_segments_far_apart_in_time_are_not_joined() -> None:
    texts = ["my card is 4111", "1111 1111 1111"]
    results = redact_segments(texts, starts=[0.0, 60.0], ends=[2.0, 62.0])
    assert _texts(results)[0] == "my card is 4111"
    # The second piece is still redacted on its own rules (a 12-digit run).
    assert _texts(results)[1] == "[ACCOUNT]"
    joined = redact_segments(texts, starts=[0.0, 3.0], ends=[2.0, 5.0])
    assert _texts(joined) == ["my card is [CARD]", "[CARD]"]


def test_long_conversations_are_scanned_in_overlapping_windows() -> None:
    # Windows of 6 segments overlapping by 3 see any number cut into up to 4 pieces whole,
    # wherever it falls; the filler lines hold digits, so nothing is skipped as number-free.
    filler = [f"item {i} is fine" for i in range(20)]
    texts = [*filler[:11], "card 4111", "1111", "1111", "1111", *filler[11:]]
    results = redact_segments(texts, window_segments=6)
    assert _texts(results)[11:15] == ["card [CARD]", "[CARD]", "[CARD]", "[CARD]"]
    assert _total(results) == {"CARD": 1}
    assert _texts(results)[:11] + _texts(results)[15:] == filler


@pytest.mark.parametrize("text", [c[0] for c in POSITIVE_CASES] + NEGATIVE_CASES)
def test_a_single_segment_is_redacted_as_redact_does(text: str) -> None:
    [result] = redact_segments([text])
    assert result == redact(text)


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="starts has 1 items for 2 texts"):
        redact_segments(["a", "b"], starts=[0.0])


def test_email_written_as_a_domain_in_the_next_segment_is_redacted() -> None:
    # The cue ("my email is") and an address without "@" sit in neighbouring segments.
    results = redact_segments(["my email is", "jongofimple.com"])
    assert [r.text for r in results] == ["my email is", "[EMAIL]"]
