"""Proves call metrics match hand-computed values on small timelines.

Covers talk time as a per-speaker union (self-overlap not double counted), talk shares,
silence (leading, inner and trailing gaps, with the silence threshold), interruptions with the
0.2 s overlap threshold, the median agent response latency, speaking rate in Korean syllables,
`count_speech_units`, and untimed transcripts (time metrics None, turn counts still present).
"""

from __future__ import annotations

import pytest

from cscoach_pipeline.defs.scoring.metrics import (
    CallMetrics,
    compute_call_metrics,
    count_speech_units,
)
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript

A, C, U = Speaker.AGENT, Speaker.CUSTOMER, Speaker.UNKNOWN


def _timed(rows, duration_s=None) -> Transcript:
    segments = [Segment(start_s=s, end_s=e, speaker=sp, text=t) for s, e, sp, t in rows]
    return Transcript(segments=segments, duration_s=duration_s, source="stt")


# Timeline (seconds):
#   A 0.0-4.0 | C 4.5-10.0 | A 9.5-12.0 (cuts in 0.5 s early) | A 11.0-13.0 (overlaps itself)
#   silence 13-18 | C 18.0-20.0 | A 20.1-22.0 | C 21.0-23.0 (cuts in 1.0 s early) | silence to 30
CALL = [
    (0.0, 4.0, A, "hello how can i help you"),
    (4.5, 10.0, C, "my card was stolen yesterday"),
    (9.5, 12.0, A, "oh no"),
    (11.0, 13.0, A, "let me check"),
    (18.0, 20.0, C, "thank you"),
    (20.1, 22.0, A, "you are welcome"),
    (21.0, 23.0, C, "wait what about fees"),
]


def test_hand_computed_timeline():
    m = compute_call_metrics(_timed(CALL, duration_s=30.0))

    assert m.duration_s == 30.0
    assert m.agent_talk_s == pytest.approx(4.0 + 3.5 + 1.9)  # 9.5-12 and 11-13 merge to 3.5
    assert m.customer_talk_s == pytest.approx(5.5 + 2.0 + 2.0)
    assert m.unknown_talk_s == 0.0
    assert m.agent_talk_share == pytest.approx(9.4 / 18.9, abs=1e-3)
    assert m.customer_talk_share == pytest.approx(9.5 / 18.9, abs=1e-3)
    assert m.agent_words_per_minute == pytest.approx(14 / (9.4 / 60), abs=1e-2)
    assert m.customer_words_per_minute == pytest.approx(11 / (9.5 / 60), abs=1e-2)
    # Gaps where nobody talks: 4.0-4.5 (0.5), 13-18 (5.0), 23-30 (7.0); only > 3 s count.
    assert m.non_talk_s == pytest.approx(12.0)
    assert m.non_talk_share == pytest.approx(0.4)
    assert m.longest_silence_s == pytest.approx(7.0)
    assert m.interruptions_by_agent == 1
    assert m.interruptions_by_customer == 1
    # Customer turns end at 10.0 and 20.0; agent replies start at 9.5 (-> 0) and 20.1.
    assert m.agent_response_latency_median_s == pytest.approx(0.05)
    assert (m.agent_turns, m.customer_turns, m.segment_count) == (3, 3, 7)


def test_silence_threshold_and_duration_fallback():
    m = compute_call_metrics(_timed(CALL), silence_gap_s=0.4)

    assert m.duration_s == 23.0  # no stated duration: the last segment end
    assert m.non_talk_s == pytest.approx(0.5 + 5.0)
    assert m.longest_silence_s == pytest.approx(5.0)
    assert m.non_talk_share == pytest.approx(5.5 / 23.0, abs=1e-3)


def test_leading_silence_and_short_overlap_is_not_an_interruption():
    rows = [
        (5.0, 8.0, C, "hello is anyone there"),
        (7.9, 9.0, A, "yes hello"),  # 0.1 s overlap: turn-taking, not an interruption
    ]
    m = compute_call_metrics(_timed(rows))

    assert m.longest_silence_s == pytest.approx(5.0)
    assert m.non_talk_s == pytest.approx(5.0)
    assert m.interruptions_by_agent == 0
    assert m.interruptions_by_customer == 0
    assert m.agent_response_latency_median_s == 0.0


def test_latency_median_over_several_replies():
    rows = [
        (0.0, 2.0, C, "a"),
        (3.0, 4.0, A, "b"),  # 1.0
        (4.0, 5.0, C, "c"),
        (8.0, 9.0, A, "d"),  # 3.0
        (9.0, 10.0, C, "e"),
        (10.5, 11.0, A, "f"),  # 0.5
    ]
    assert compute_call_metrics(_timed(rows)).agent_response_latency_median_s == 1.0


def test_korean_rate_counts_syllables():
    rows = [
        (0.0, 10.0, A, "안녕하세요 [NAME]입니다"),  # 5 + 1 + 3 = 9 units in 10 s
        (10.0, 40.0, C, "카드를 잃어버렸어요"),  # 9 syllables in 30 s
    ]
    m = compute_call_metrics(_timed(rows))

    assert m.agent_words_per_minute == pytest.approx(54.0)
    assert m.customer_words_per_minute == pytest.approx(18.0)


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("", 0),
        ("hello world", 2),
        ("don't stop", 2),
        ("안녕하세요", 5),
        ("[PHONE]로 연락 주세요", 7),
        ("call me at [PHONE] please", 5),
        ("카드 3장", 4),
    ],
)
def test_count_speech_units(text, units):
    assert count_speech_units(text) == units


def test_mono_recording_has_only_unknown_talk():
    rows = [(0.0, 2.0, U, "hello there"), (1.0, 3.0, U, "hi")]
    m = compute_call_metrics(_timed(rows))

    assert m.unknown_talk_s == pytest.approx(3.0)
    assert m.agent_talk_s == 0.0
    assert m.agent_talk_share == 0.0
    assert m.agent_words_per_minute is None
    assert m.interruptions_by_agent == 0
    assert m.agent_response_latency_median_s is None
    assert (m.agent_turns, m.customer_turns) == (0, 0)


def test_untimed_transcript_keeps_counts_only():
    transcript = Transcript(
        segments=[
            Segment(speaker=A, text="hello"),
            Segment(speaker=C, text="hi"),
            Segment(speaker=C, text="my card is lost"),
            Segment(speaker=A, text="let me check"),
        ],
        source="text",
    )
    m = compute_call_metrics(transcript)

    assert (m.agent_turns, m.customer_turns, m.segment_count) == (2, 1, 4)
    time_fields = set(CallMetrics.model_fields) - {"agent_turns", "customer_turns", "segment_count"}
    assert all(getattr(m, name) is None for name in time_fields)
