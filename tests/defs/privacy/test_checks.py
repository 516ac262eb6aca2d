"""Proves the `no_pii_left` check can fail and says why without the PII: redacted text
passes; a phone number, e-mail or resident registration number planted after redaction fails
it, each counted by kind; the outcome's description and metadata never hold the number."""

from __future__ import annotations

import pytest

from cscoach_pipeline.defs.privacy.checks import no_pii_left, residual_pii
from cscoach_pipeline.defs.privacy.pii import redact_text

CLEAN = [
    "Agent: Thank you for calling Acme, how can I help?",
    "Customer: my number is [PHONE] and my card [CARD] was lost",
    "Agent: 주문번호 확인했습니다. 배송은 3일 걸립니다.",
]


def test_redacted_text_passes() -> None:
    outcome = no_pii_left(CLEAN)
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
    outcome = no_pii_left([*CLEAN, planted])
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
