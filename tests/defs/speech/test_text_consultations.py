"""Text consultations flow end to end through the real sensor and job: chat logs in every
supported format and encoding (UTF-8, UTF-8 BOM, UTF-16, CP949 Korean), speaker prefixes
mapped to agent/customer, Korean detected, PII redacted before any table sees it."""

from __future__ import annotations

import json

import pytest

from tests.support.pipeline import PipelineHarness

pytestmark = pytest.mark.integration

KOREAN_CHAT = (
    "상담원: 안녕하세요, 고객님. 무엇을 도와드릴까요?\n"
    "고객: 카드를 분실했어요. 제 번호는 010-1234-5678이고 주민번호는 900101-1234567입니다.\n"
    "상담원: 불편을 드려 죄송합니다. 본인 확인 후 카드를 정지하고 재발급해 드렸습니다.\n"
    "고객: 감사합니다, 다행이네요.\n"
    "상담원: 더 궁금하신 점 있으신가요? 좋은 하루 되세요.\n"
)
ENGLISH_CHAT = (
    "Agent: Thank you for calling, my name is Dana. How can I help you?\n"
    "Customer: My card 4111 1111 1111 1111 was charged twice. Email me at a.kim@example.com\n"
    "Agent: I'm sorry to hear that. Let me check. I have issued a refund.\n"
    "Customer: Great, thanks.\n"
)
SRT = """1
00:00:01,000 --> 00:00:03,500
Agent: Hello, thank you for calling.

2
00:00:04,000 --> 00:00:06,000
Customer: My parcel never arrived.
"""
VTT = """WEBVTT

00:00.500 --> 00:02.000
<v Agent>Good morning, how can I help?

00:02.500 --> 00:05.000
<v Customer>I want to cancel my order.
"""
CHAT_JSON = {
    "messages": [
        {"role": "assistant", "text": "Hi, you are chatting with support.", "timestamp": 0},
        {"role": "user", "text": "My account 110-123-456789 is locked.", "timestamp": 5},
        {"role": "assistant", "text": "I have unlocked it for you.", "timestamp": 9},
    ]
}


@pytest.fixture(scope="module")
def text_batch(tmp_path_factory: pytest.TempPathFactory) -> PipelineHarness:
    return PipelineHarness(root=tmp_path_factory.mktemp("text")).process_batch(
        {
            "kr/상담-cp949.txt": KOREAN_CHAT.encode("cp949"),
            "kr/utf8-bom.md": "\ufeff".encode() + KOREAN_CHAT.encode("utf-8"),
            "en/utf16.txt": ENGLISH_CHAT.encode("utf-16"),
            "en/call.srt": SRT.encode(),
            "en/call.vtt": VTT.encode(),
            "en/chat.json": json.dumps(CHAT_JSON).encode(),
        }
    )


def test_all_text_formats_succeed(text_batch: PipelineHarness) -> None:
    statuses = text_batch.table("consultation_status")
    assert len(statuses) == 6
    assert set(statuses.status) == {"succeeded"}, statuses[["source_key", "error"]]


def test_cp949_korean_is_decoded_with_speakers(text_batch: PipelineHarness) -> None:
    consultations = text_batch.table("consultations").set_index("source_key")
    row = consultations.loc["incoming/kr/상담-cp949.txt"]
    assert row.language == "ko" and row.file_type == "text"
    segments = text_batch.table("transcript_segments")
    mine = segments[segments.consultation_id == row.consultation_id]
    assert list(mine.speaker) == ["agent", "customer", "agent", "customer", "agent"]
    assert mine.text.iloc[0].startswith("안녕하세요")
    # The Korean partition key stays readable.
    assert row.consultation_id.startswith("kr__상담-cp949.txt-")


def test_korean_polite_chat_scores_well(text_batch: PipelineHarness) -> None:
    consultations = text_batch.table("consultations").set_index("source_key")
    cid = consultations.loc["incoming/kr/상담-cp949.txt"].consultation_id
    metrics = text_batch.table("quality_metrics").set_index("consultation_id")
    # Short chat without a recap: greeting, empathy, closing and courtesy carry the score.
    assert metrics.loc[cid].overall_score >= 60
    assert metrics.loc[cid].professionalism_score == 5
    assert metrics.loc[cid].empathy_score >= 3
    analyses = text_batch.table("analyses").set_index("consultation_id")
    assert analyses.loc[cid].resolution_status == "resolved"


def test_timed_subtitles_keep_their_times(text_batch: PipelineHarness) -> None:
    consultations = text_batch.table("consultations").set_index("source_key")
    segments = text_batch.table("transcript_segments")
    srt = segments[
        segments.consultation_id == consultations.loc["incoming/en/call.srt"].consultation_id
    ]
    assert list(srt.start_s) == [1.0, 4.0] and list(srt.speaker) == ["agent", "customer"]
    vtt = segments[
        segments.consultation_id == consultations.loc["incoming/en/call.vtt"].consultation_id
    ]
    assert list(vtt.speaker) == ["agent", "customer"]
    metrics = text_batch.table("quality_metrics").set_index("consultation_id")
    assert (
        metrics.loc[consultations.loc["incoming/en/call.srt"].consultation_id].agent_talk_s == 2.5
    )


def test_pii_never_reaches_a_table(text_batch: PipelineHarness) -> None:
    everything = text_batch.all_table_text()
    for raw in ("010-1234-5678", "900101-1234567", "4111 1111 1111 1111", "a.kim@example.com",
                "110-123-456789"):  # fmt: skip
        assert raw not in everything
    for placeholder in ("[PHONE]", "[RRN]", "[CARD]", "[EMAIL]", "[ACCOUNT]"):
        assert placeholder in everything
