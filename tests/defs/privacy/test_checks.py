"""Proves the `no_pii_left` check can fail and says why without the PII: redacted text
passes; a phone number, e-mail or resident registration number planted after redaction fails
it, each counted by kind, and so does a number dictated across two segments of one speaker;
the outcome's description and metadata never hold the number."""

from __future__ import annotations

import pytest

from cscoach_pipeline.defs.privacy.checks import no_pii_left, residual_pii
from cscoach_pipeline.defs.privacy.pii import redact_text
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker


def _segments(*texts: str, speaker: Speaker = Speaker.CUSTOMER) -> list[Segment]:
    return [Segment(text=t, speaker=speaker) for t in texts]


CLEAN = [
    "Agent: Thank you for calling Acme, how can I help?",
    "Customer: my number is [PHONE] and my card [CARD] was lost",
    "Agent: 주문번호 확인했습니다. 배송은 3일 걸립니다.",
]


def test_redacted_text_passes() -> None:
    outcome = no_pii_left(_segments(*CLEAN))
    assert outcome.passed and outcome.name == "no_pii_left"
    assert outcome.metadata == {"segments_scanned": 3}


@pytest.mark.parametrize(
    ("planted", "kind"),
    [
        ("call me on 010-2345-6789", "phone"),
        ("my US line is (415) 555-2671", "phone"),
        ("write to kim.minsu@example.co.kr", "email"),
        ("주민번호 900101-1234567 입니다", "rrn"),
    ],
)
def test_pii_planted_after_redaction_fails_it_by_kind(planted: str, kind: str) -> None:
    outcome = no_pii_left(_segments(*CLEAN, planted))
    assert not outcome.passed and outcome.error
    assert outcome.metadata[kind] >= 1 and outcome.metadata["findings"] >= 1
    shown = outcome.description + repr(outcome.metadata)
    for token in planted.split():
        if any(ch.isdigit() for ch in token) or "@" in token:
            assert token not in shown


def test_every_text_the_redactor_produced_passes() -> None:
    raw = [
        "Customer: reach me at 010-9876-5432 or 02 345 6789",
        "Customer: email is lee@corp.example.com, card 4111 1111 1111 1111",
        "Customer: 제 번호는 공일공 일이삼사 오육칠팔 입니다",
    ]
    assert residual_pii([redact_text(t) for t in raw]) == {}


def test_a_number_dictated_across_two_segments_of_one_speaker_fails_it() -> None:
    split = _segments("my number is 010 2345", "6789 thanks")
    outcome = no_pii_left(split)
    assert not outcome.passed and outcome.metadata["phone_across_segments"] == 1
    # Two speakers' digits side by side are not one number.
    agent = Segment(text="my number is 010 2345", speaker=Speaker.AGENT)
    other = no_pii_left([agent, Segment(text="6789 thanks", speaker=Speaker.CUSTOMER)])
    assert "phone_across_segments" not in other.metadata
