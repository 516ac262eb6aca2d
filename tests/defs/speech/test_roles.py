"""Proves that the agent is found from what the speakers say (English and Korean agent
phrases beat who spoke first and the configured channel), that a transfer's second agent is
an agent too, that the confidence falls when the evidence is thin, and that segment
loudness gives per-speaker levels and a raised-voice count."""

from __future__ import annotations

import numpy as np

from cscoach_pipeline.defs.scoring.metrics import loudness_metrics, raised_voice_segments
from cscoach_pipeline.defs.speech.roles import decide_roles, phrase_evidence
from cscoach_pipeline.defs.speech.transcribe import loudness_dbfs
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker

AGENT = "Thank you for calling Acme, my name is Sam, how can I help you today?"
CUSTOMER = "Hi, I want to cancel my subscription, it is too expensive."


def test_agent_phrases_outweigh_the_configured_channel() -> None:
    decision = decide_roles([(0, CUSTOMER, 0.0), (1, AGENT, 3.0)], prior=0)
    assert decision.agent == 1 and not decision.low_confidence


def test_the_agent_is_found_when_the_customer_speaks_first() -> None:
    decision = decide_roles([(0, "Hello? I'm calling about my bill.", 0.0), (1, AGENT, 2.0)])
    assert decision.agent == 1


def test_korean_agent_phrases() -> None:
    agent = "네, 고객님 전화 주셔서 감사합니다. 상담원 김민지입니다. 무엇을 도와드릴까요?"
    customer = "제 요금이 너무 많이 나왔어요. 환불 받고 싶어요."
    assert phrase_evidence(agent) >= 3 and phrase_evidence(customer) < 0
    assert decide_roles([(0, customer, 0.0), (1, agent, 4.0)]).agent == 1


def test_without_evidence_the_first_speaker_on_an_inbound_call_is_the_agent_unsure() -> None:
    decision = decide_roles([(0, "Okay.", 0.0), (1, "Right.", 1.0)])
    assert decision.agent == 0 and decision.low_confidence
    outbound = decide_roles([(0, "Okay.", 0.0), (1, "Right.", 1.0)], prior=1, inbound=False)
    assert outbound.agent == 1


def test_a_transfer_has_two_agents() -> None:
    second = "Hello, this is Maria from the billing team, I will process the refund now."
    decision = decide_roles([(0, AGENT, 0.0), (1, CUSTOMER, 4.0), (2, second, 9.0)])
    assert decision.agent == 0 and decision.agents == {0, 2}


def test_loudness_of_a_span() -> None:
    t = np.arange(16_000) / 16_000
    tone = 0.5 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    level = loudness_dbfs(tone, 0.0, 1.0)
    assert level is not None and abs(level - 20 * np.log10(0.5 / np.sqrt(2))) < 0.1
    assert loudness_dbfs(tone, 2.0, 3.0) is None


def _seg(speaker: Speaker, start: float, level: float) -> Segment:
    return Segment(start_s=start, end_s=start + 1, speaker=speaker, text="x", loudness_dbfs=level)


def test_raised_voice_is_measured_against_the_speakers_own_median() -> None:
    segments = [
        _seg(Speaker.AGENT, 0, -30),
        _seg(Speaker.AGENT, 2, -31),
        _seg(Speaker.AGENT, 4, -29),
        _seg(Speaker.CUSTOMER, 1, -20),  # a loud line, but loud is this customer's level
        _seg(Speaker.CUSTOMER, 3, -21),
        _seg(Speaker.CUSTOMER, 5, -12),  # 8 dB above their median: raised
        _seg(Speaker.CUSTOMER, 7, -20),
    ]
    raised = raised_voice_segments(segments)
    assert [s.start_s for s in raised] == [5]
    metrics = loudness_metrics(segments)
    assert metrics == {
        "agent_loudness_dbfs": -30.0,
        "customer_loudness_dbfs": -20.0,
        "raised_voice_count": 1,
    }
    assert loudness_metrics([Segment(text="typed", speaker=Speaker.AGENT)]) == {}
