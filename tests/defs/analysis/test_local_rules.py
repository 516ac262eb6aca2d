"""Proves the offline rule analyzer ranks calls sensibly and emits valid, grounded analyses.

A polite, resolving call must score at least 30 points above a rude, unresolved one, in English
and in Korean; resolution status and customer sentiment must follow the conversation; mono
recordings (all speakers unknown) must still be scored and say so; the output must validate
as ConsultationAnalysis, be deterministic, and quote only text that is in the transcript.
"""

from __future__ import annotations

import pytest

from cscoach_pipeline.defs.analysis.local_rules import analyze_locally
from cscoach_pipeline.defs.analysis.schema import (
    ConsultationAnalysis,
    ResolutionStatus,
    Sentiment,
    overall_score,
)
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript

A, C = Speaker.AGENT, Speaker.CUSTOMER

EN_POLITE = [
    (A, "Thank you for calling Acme Bank, my name is Sarah. How can I help you today?"),
    (C, "Hi, I lost my credit card yesterday and I'm really worried someone will use it."),
    (
        A,
        "I'm sorry to hear that, I understand. Before we continue, "
        "may I have your full name and date of birth?",
    ),
    (C, "Sure, it's [NAME], born [DATE]."),
    (
        A,
        "Thank you. Let me check your account. I have blocked the card so nobody can use it, "
        "and I've ordered a replacement card.",
    ),
    (C, "That's great, thank you."),
    (A, "Just to confirm, you will receive the new card within 3 business days."),
    (C, "Perfect, I appreciate it."),
    (
        A,
        "Your issue has been resolved. Is there anything else I can help you with? "
        "Thank you for your patience and have a great day.",
    ),
    (C, "No that's all, thanks a lot!"),
]
EN_RUDE = [
    (A, "Yeah, what do you want?"),
    (C, "I was charged twice for my order and I want a refund. This is ridiculous."),
    (A, "Account number."),
    (C, "It's [ACCOUNT]. I've been waiting for a week, this is unacceptable."),
    (A, "Whatever. Refunds are not possible, that's not my problem."),
    (C, "Are you serious? Can I talk to someone else?"),
    (A, "Hold on. I don't know, there's nothing I can do. Call back later."),
    (C, "This is a waste of my time. Terrible service."),
]
KO_POLITE = [
    (A, "안녕하세요, 고객센터 상담원 김민지입니다. 무엇을 도와드릴까요?"),
    (C, "카드를 잃어버렸어요. 너무 답답하고 걱정돼요."),
    (
        A,
        "많이 놀라셨겠어요. 불편을 드려 죄송합니다. "
        "본인 확인을 위해 성함과 생년월일 말씀해 주시겠어요?",
    ),
    (C, "[NAME]이고 [DATE]입니다."),
    (
        A,
        "감사합니다. 확인해 보겠습니다. 카드 사용을 정지해 드렸고 재발급 신청도 처리해 드렸습니다.",
    ),
    (C, "다행이네요. 감사합니다."),
    (A, "정리해 드리면, 새 카드는 3영업일 이내에 받으실 수 있습니다. 모두 처리되었습니다."),
    (C, "정말 고맙습니다."),
    (A, "더 궁금하신 점 있으실까요? 이용해 주셔서 감사합니다. 좋은 하루 보내세요."),
    (C, "네, 수고하세요."),
]
KO_RUDE = [
    (A, "네. 뭐요?"),
    (C, "요금이 두 번 청구됐어요. 정말 화가 나요."),
    (A, "계좌번호요."),
    (C, "[ACCOUNT]요. 일주일째 기다렸는데 너무 답답해요."),
    (A, "그건 제 일이 아니에요. 환불은 어렵습니다."),
    (C, "그럼 어떻게 해야 하나요?"),
    (A, "몰라요. 알아서 하세요."),
    (C, "정말 짜증나네요. 불만 접수할게요."),
]


def _transcript(turns, language: str, *, mono: bool = False) -> Transcript:
    segments = [
        Segment(speaker=Speaker.UNKNOWN if mono else speaker, text=text) for speaker, text in turns
    ]
    return Transcript(segments=segments, language=language, source="text")


def _score(analysis: ConsultationAnalysis) -> float:
    return overall_score(analysis.rubric)


@pytest.mark.parametrize(
    ("polite", "rude", "language"),
    [(EN_POLITE, EN_RUDE, "en"), (KO_POLITE, KO_RUDE, "ko")],
    ids=["english", "korean"],
)
def test_polite_resolving_call_ranks_far_above_rude_unresolved_one(polite, rude, language):
    good = analyze_locally(_transcript(polite, language))
    bad = analyze_locally(_transcript(rude, language))

    assert _score(good) - _score(bad) >= 30
    assert _score(good) >= 80
    assert _score(bad) <= 30
    assert good.resolution_status is ResolutionStatus.RESOLVED
    assert bad.resolution_status is ResolutionStatus.UNRESOLVED
    assert good.customer_sentiment.start is Sentiment.NEGATIVE
    assert good.customer_sentiment.end is Sentiment.POSITIVE
    assert bad.customer_sentiment.start is Sentiment.NEGATIVE
    assert bad.customer_sentiment.end is Sentiment.NEGATIVE
    assert bad.rubric.professionalism.score <= 1
    assert good.rubric.professionalism.score == 5
    assert good.agent_strengths and not good.improvement_points
    assert bad.improvement_points and bad.coaching_tips


def test_reasons_name_the_matched_phrases():
    good = analyze_locally(_transcript(EN_POLITE, "en"))
    bad = analyze_locally(_transcript(EN_RUDE, "en"))

    assert "'thank you for calling'" in good.rubric.greeting.reason
    assert "'my name is'" in good.rubric.greeting.reason
    assert "'date of birth'" in good.rubric.identification.reason
    assert "'whatever'" in bad.rubric.professionalism.reason
    assert "'not my problem'" in bad.rubric.professionalism.reason
    assert "'i do not know'" in bad.rubric.accuracy.reason


def test_summary_intent_and_issue_come_from_the_call():
    good = analyze_locally(_transcript(EN_POLITE, "en"))
    ko = analyze_locally(_transcript(KO_POLITE, "ko"))

    assert good.summary == (
        "Customer called about a lost or stolen card; the agent checked the account, "
        "blocked the card and ordered a replacement. Resolved."
    )
    assert good.customer_intent.startswith("Hi, I lost my credit card yesterday")
    assert "lost my credit card" in good.issue
    assert ko.summary.startswith("고객이 카드 분실·도난 건으로 문의했습니다.")
    assert ko.summary.endswith("해결되었습니다.")
    assert ko.customer_intent.startswith("카드를 잃어버렸어요")


def test_korean_transcript_gets_korean_wording():
    bad = analyze_locally(_transcript(KO_RUDE, "ko"))

    assert "무례하거나 무시하는 표현" in bad.rubric.professionalism.reason
    assert "'몰라요'" in bad.rubric.professionalism.reason
    assert any("상담원 ○○입니다" in tip for tip in bad.coaching_tips)


def test_mono_recording_is_scored_and_says_so():
    good = analyze_locally(_transcript(EN_POLITE, "en", mono=True))
    bad = analyze_locally(_transcript(EN_RUDE, "en", mono=True))

    assert _score(good) - _score(bad) >= 30
    assert good.resolution_status is ResolutionStatus.RESOLVED
    assert good.customer_sentiment.end is Sentiment.POSITIVE
    assert bad.customer_sentiment.end is Sentiment.NEGATIVE
    for analysis in (good, bad):
        for name in analysis.rubric.model_fields:
            assert "Mono recording" in getattr(analysis.rubric, name).reason
    # The agent's greeting is not mistaken for the customer's request.
    assert good.customer_intent.startswith("Hi, I lost my credit card")


def test_output_validates_and_is_deterministic():
    for turns, language in ((EN_POLITE, "en"), (EN_RUDE, "en"), (KO_RUDE, "ko")):
        transcript = _transcript(turns, language)
        first = analyze_locally(transcript)
        second = analyze_locally(transcript)
        dumped = first.model_dump(mode="json")
        assert ConsultationAnalysis.model_validate(dumped) == first
        assert dumped == second.model_dump(mode="json")


@pytest.mark.parametrize("turns", [EN_RUDE, KO_RUDE], ids=["english", "korean"])
def test_evidence_quotes_are_verbatim_agent_text(turns):
    analysis = analyze_locally(_transcript(turns, "ko" if turns is KO_RUDE else "en"))
    agent_texts = [text for speaker, text in turns if speaker is A]

    quotes = [p.evidence_quote for p in analysis.improvement_points if p.evidence_quote]
    assert len(quotes) >= 3
    for quote in quotes:
        assert any(quote in text for text in agent_texts)


def test_speech_to_text_style_input_without_punctuation():
    stt = [
        (A, "thank you for calling my name is tom how can i help"),
        (C, "hi im really frustrated my internet is not working again"),
        (A, "im sorry to hear that i understand let me check ive reset your router"),
        (C, "ok its working now great thanks"),
        (A, "youre all set is there anything else have a great day"),
    ]
    analysis = analyze_locally(_transcript(stt, "en"))

    assert analysis.resolution_status is ResolutionStatus.RESOLVED
    assert analysis.customer_sentiment.start is Sentiment.NEGATIVE
    assert analysis.customer_sentiment.end is Sentiment.POSITIVE
    assert "'i am sorry to hear'" in analysis.rubric.empathy.reason
    assert "'i have reset'" in analysis.rubric.problem_solving.reason
    assert analysis.rubric.greeting.score == 5


def test_escalation_and_empty_transcript():
    escalated = [
        (A, "Hello, how can I help?"),
        (C, "My refund never arrived."),
        (A, "I understand. I will transfer you to a supervisor who can approve it."),
    ]
    assert (
        analyze_locally(_transcript(escalated, "en")).resolution_status
        is ResolutionStatus.ESCALATED
    )
    empty = analyze_locally(Transcript(segments=[], source="text"))
    assert empty.resolution_status is ResolutionStatus.UNKNOWN
    assert empty.customer_intent == ""
    assert overall_score(empty.rubric) <= 20
