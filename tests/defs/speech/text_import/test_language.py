"""Language detection proves that Hangul-dominated text is "ko" even with English product
names in it, Latin text is "en", and other scripts or no letters give None."""

from __future__ import annotations

import pytest

from cscoach_pipeline.defs.speech.text_import import detect_language


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
