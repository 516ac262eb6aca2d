"""Sample dialogues and a shorthand shared by the text-import tests."""

from __future__ import annotations

from cscoach_pipeline.defs.speech.text_import import parse_text_consultation
from cscoach_pipeline.defs.speech.transcript import Speaker

KOREAN_DIALOGUE = "상담원: 안녕하세요, 고객님.\n고객: 카드 분실 신고하려고요."
ENGLISH_DIALOGUE = "Agent: Hello, how can I help?\r\nCustomer: I lost my card."


def speakers_and_texts(data: bytes, ext: str, **kwargs: object) -> list[tuple[Speaker, str]]:
    transcript = parse_text_consultation(data, ext, **kwargs)  # type: ignore[arg-type]
    return [(s.speaker, s.text) for s in transcript.segments]
