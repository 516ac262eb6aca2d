"""Proves the sentiment of turns and of quarters of the call.

- English turns are scored by VADER and Korean turns by the shipped lexicon on one -1..1
  scale with VADER's labels; Korean negation after and before a stem flips it, boosters raise
  it, the contrast rule weighs what follows "-지만", and stems that only look alike ("전화나",
  "불안해", "불친절") are not misread.
- The model's per-turn scores are used where given; a segment it skipped, or a number that is
  not a segment, falls back to the lexicon.
- Quarters are by time on a timed call (a segment by its midpoint) and by turn order on a
  typed chat, weighted by how much was said; a speaker silent in a quarter has None.
- On a call that resolves, the customer's sentiment moves from negative to positive.
"""

from __future__ import annotations

import pytest

from cscoach_pipeline.defs.analysis.schema import ConsultationAnalysis, TurnSentimentItem
from cscoach_pipeline.defs.scoring.sentiment import (
    SentimentLabel,
    SentimentSource,
    korean_sentiment,
    lexicon_sentiment,
    quarter_columns,
    segment_sentiments,
    sentiment_by_quarter,
    sentiment_label,
)
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript
from tests.support.fake_gemini import valid_analysis

A, C = Speaker.AGENT, Speaker.CUSTOMER


def _timed(rows: list[tuple[float, float, Speaker, str]], duration_s: float | None = None):
    segments = [Segment(start_s=s, end_s=e, speaker=sp, text=t) for s, e, sp, t in rows]
    return Transcript(segments=segments, duration_s=duration_s, source="stt")


def _chat(rows: list[tuple[Speaker, str]]) -> Transcript:
    return Transcript(segments=[Segment(speaker=s, text=t) for s, t in rows], source="text")


RESOLVING_CALL = _timed(
    [
        (0.0, 6.0, C, "This is ridiculous, my internet has been down for three days and I am "
                      "really frustrated."),
        (6.5, 12.0, A, "I am sorry about that, let me check your line."),
        (12.5, 20.0, C, "I have called twice already and nobody helped, it is terrible."),
        (21.0, 40.0, A, "I found the fault and reset your connection."),
        (41.0, 48.0, C, "Okay, it seems to be working now."),
        (49.0, 60.0, A, "Is there anything else I can help with?"),
        (61.0, 70.0, C, "No, that is great, thank you so much, you have been really helpful!"),
        (71.0, 80.0, A, "You are welcome, have a lovely day."),
    ]
)  # fmt: skip


def test_english_turns_are_scored_by_vader_with_its_labels() -> None:
    assert lexicon_sentiment("This is ridiculous and I am really frustrated.") < -0.5
    assert lexicon_sentiment("Great, thank you so much, that fixed it!") > 0.5
    assert lexicon_sentiment("The parcel left the depot on [DATE].") == 0.0
    assert sentiment_label(0.05) is SentimentLabel.POSITIVE
    assert sentiment_label(0.049) is SentimentLabel.NEUTRAL
    assert sentiment_label(-0.05) is SentimentLabel.NEGATIVE


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("정말 감사합니다. 덕분에 해결됐어요!", 0.6, 1.0),
        ("몇 번이나 전화했는데 아직도 안 돼요. 너무 짜증나요.", -1.0, -0.6),
        ("친절하시네요", 0.3, 0.7),
        ("불친절하시네요", -0.7, -0.3),  # 불친절 is its own stem, not 친절
        ("네 알겠습니다", 0.0, 0.0),
        ("전화나 문자로 알려주세요", 0.0, 0.0),  # "^화나" must start a word: no anger
        ("안녕하세요 고객센터입니다", 0.0, 0.0),  # 안녕 is no negation
    ],
)
def test_korean_lexicon_scores(text: str, low: float, high: float) -> None:
    assert low <= korean_sentiment(text) <= high


def test_korean_negation_boosters_and_contrast() -> None:
    good = korean_sentiment("좋아요")
    assert good > 0
    assert korean_sentiment("안 좋아요") < 0  # short negation before the stem
    assert korean_sentiment("좋지 않아요") < 0  # long negation after it
    assert korean_sentiment("너무 좋아요") > good  # booster
    assert korean_sentiment("좀 좋아요") < good  # dampener
    assert korean_sentiment("문제없습니다") > 0  # a negated problem is good news
    assert korean_sentiment("걱정 마세요") > 0
    # "불안해" holds no "안 해" negating the stem before it: 1.9 - 1.6 > 0, not -1.4 - 1.6.
    assert korean_sentiment("불안해요") < 0
    assert korean_sentiment("좋은데 불안해요") > 0
    # What follows -지만 weighs more: kind, but not solved, is negative on balance.
    assert korean_sentiment("친절하지만 해결이 안 됐어요") < 0
    assert korean_sentiment("해결이 안 됐지만 친절했어요") > 0


def test_model_scores_are_used_where_valid() -> None:
    analysis = ConsultationAnalysis.model_validate(
        valid_analysis(turn_sentiment=[{"segment": 0, "sentiment": -0.9}, {"segment": 99,
                                                                           "sentiment": 1.0}])
    )  # fmt: skip
    sentiments = segment_sentiments(RESOLVING_CALL, analysis)
    assert len(sentiments) == len(RESOLVING_CALL.segments)
    assert (sentiments[0].score, sentiments[0].source) == (-0.9, SentimentSource.MODEL)
    assert sentiments[0].label is SentimentLabel.NEGATIVE
    assert all(s.source is SentimentSource.LEXICON for s in sentiments[1:])
    assert sentiments[6].score == lexicon_sentiment(RESOLVING_CALL.segments[6].text)
    assert sentiments[6].row() == {
        "segment_index": 6,
        "sentiment": sentiments[6].score,
        "sentiment_label": "positive",
        "sentiment_source": "lexicon",
    }


def test_turn_sentiment_outside_minus_one_to_one_is_invalid() -> None:
    with pytest.raises(ValueError, match="less than or equal to 1"):
        TurnSentimentItem(segment=0, sentiment=1.5)


def test_customer_sentiment_moves_from_negative_to_positive_on_a_call_that_resolves() -> None:
    sentiments = segment_sentiments(RESOLVING_CALL)
    customer = [s.score for s in sentiments if RESOLVING_CALL.segments[s.index].speaker is C]
    assert customer[0] < -0.3 and customer[1] < 0
    assert customer[-1] > 0.5
    quarters = sentiment_by_quarter(RESOLVING_CALL, sentiments)
    assert set(quarters) == set(quarter_columns())
    # 80 s: quarters of 20 s; segments by their midpoint.
    assert quarters["customer_sentiment_q1"] < 0 < quarters["customer_sentiment_q4"]
    assert quarters["customer_sentiment_q2"] is None  # the customer said nothing in 20-40 s
    assert quarters["customer_sentiment_q1"] == pytest.approx(
        _weighted([customer[0], customer[1]], RESOLVING_CALL.segments[0::2][:2]), abs=1e-3
    )
    assert quarters["agent_sentiment"] is not None


def _weighted(scores: list[float], segments: list[Segment]) -> float:
    from cscoach_pipeline.defs.scoring.metrics import count_speech_units

    weights = [count_speech_units(s.text) for s in segments]
    return sum(s * w for s, w in zip(scores, weights, strict=True)) / sum(weights)


def test_quarters_of_a_chat_follow_turn_order() -> None:
    chat = _chat(
        [
            (C, "배송이 또 늦어요. 정말 짜증나요."),
            (A, "불편을 드려 죄송합니다. 확인해 보겠습니다."),
            (A, "내일 오전에 도착하도록 조치했습니다."),
            (C, "네 정말 감사합니다. 친절하시네요!"),
        ]
    )
    quarters = sentiment_by_quarter(chat, segment_sentiments(chat))
    assert quarters["customer_sentiment_q1"] < 0
    assert quarters["customer_sentiment_q2"] is None and quarters["customer_sentiment_q3"] is None
    assert quarters["customer_sentiment_q4"] > 0
    assert quarters["agent_sentiment_q1"] is None
    assert quarters["agent_sentiment_q2"] is not None and quarters["agent_sentiment_q3"] == 0.0
