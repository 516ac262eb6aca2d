"""Tests for ``cscoach_pipeline.lib.pii``.

They prove that every PII kind (phone, email, card, RRN, account, spoken number runs) is
replaced by its typed placeholder in English and Korean context, in typed-chat and in
Whisper speech-to-text form; that ordinary small numbers, prices, years, times, dates and
words like "one moment" survive unchanged; that replacement counts are exact; and that
redaction is idempotent.
"""

from __future__ import annotations

import re

import pytest

from cscoach_pipeline.lib.pii import PiiKind, RedactionResult, redact, redact_text

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
