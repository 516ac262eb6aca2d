"""Proves how a consultation is answered against the scorecard and scored with it.

Unit: each offline rule (defs/scoring/answers.py) turns the analysis (rubric scores and
reasons, resolution), the measured metrics (interruptions, silences) and what the agent
said (hedges lower accuracy; asking before a hold and thanking after it) into a choice of
the question, with its evidence; hold etiquette is N/A without a hold; rude language fails
the critical compliance question and so the consultation; a question no rule answers is
N/A, and a scorecard that would leave a required one unanswered is refused at load.
End to end (real sensor, job and warehouse on a folder bucket): every consultation gets
its `scorecard_answers` rows, and `quality_metrics.overall_score` is their weighted score,
with the scorecard version, pass state and reason beside the rubric mean.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cscoach_pipeline.defs.analysis.local_rules import analyze_locally
from cscoach_pipeline.defs.analysis.schema import ConsultationAnalysis, ResolutionStatus
from cscoach_pipeline.defs.scoring.answers import answer_scorecard, unanswerable_questions
from cscoach_pipeline.defs.scoring.metrics import CallMetrics, compute_call_metrics
from cscoach_pipeline.defs.scoring.scorecards import (
    Answer,
    PassState,
    Scorecard,
    load_scorecard,
    score_answers,
)
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript
from cscoach_pipeline.settings import Settings
from tests.support.fake_gemini import valid_analysis
from tests.support.pipeline import PipelineHarness

INBOUND = load_scorecard("inbound/v1")


def _analysis(scores: dict[str, int] | None = None, **overrides: object) -> ConsultationAnalysis:
    data = valid_analysis(**overrides)
    for name, score in (scores or {}).items():
        data["rubric"][name] = {"score": score, "reason": f"{name} was {score}"}
    return ConsultationAnalysis.model_validate(data)


def _answers(analysis: ConsultationAnalysis, **metrics: object) -> dict[str, str]:
    given = answer_scorecard(INBOUND, analysis, CallMetrics.model_validate(metrics))
    return {a.question_id: a.answer for a in given}


def test_rubric_scores_become_yes_partly_no_with_their_reason() -> None:
    analysis = _analysis({"greeting": 5, "empathy": 3, "closing": 1})
    given = {a.question_id: a for a in answer_scorecard(INBOUND, analysis, CallMetrics())}

    assert (given["greeting"].answer, given["empathy"].answer, given["closing"].answer) == (
        "yes", "partly", "no",
    )  # fmt: skip
    assert given["empathy"].evidence == "empathy was 3"


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("resolved", "resolved"),
        ("partially_resolved", "next_step"),
        ("escalated", "next_step"),
        ("unresolved", "no"),
    ],
)
def test_problem_solving_follows_the_resolution(status: str, expected: str) -> None:
    assert _answers(_analysis(resolution_status=status))["problem_solving"] == expected


def test_listening_counts_the_agents_interruptions() -> None:
    assert _answers(_analysis(), interruptions_by_agent=0)["active_listening"] == "yes"
    assert _answers(_analysis(), interruptions_by_agent=2)["active_listening"] == "partly"
    assert _answers(_analysis(), interruptions_by_agent=5)["active_listening"] == "no"


def _timed(*turns: tuple[Speaker, float, float, str]) -> Transcript:
    segments = [Segment(speaker=sp, start_s=a, end_s=b, text=t) for sp, a, b, t in turns]
    return Transcript(segments=segments, language="en", source="stt", duration_s=turns[-1][2])


def _with_transcript(analysis: ConsultationAnalysis, transcript: Transcript) -> dict[str, Answer]:
    given = answer_scorecard(INBOUND, analysis, compute_call_metrics(transcript), transcript)
    return {a.question_id: a for a in given}


def test_hold_etiquette_is_na_without_a_hold_and_judged_by_what_the_agent_said() -> None:
    assert _answers(_analysis(), longest_silence_s=4.0)["hold_etiquette"] == "n/a"
    # A long silence and nothing said about it (no transcript to show otherwise).
    assert _answers(_analysis(), longest_silence_s=45.0)["hold_etiquette"] == "no"
    A, C = Speaker.AGENT, Speaker.CUSTOMER
    asked = (A, 5.0, 9.0, "May I place you on hold for a minute while I check?")
    thanked = (A, 60.0, 65.0, "Thank you for waiting, I found it.")
    unexplained = (A, 60.0, 65.0, "Right, I found it.")
    opening = (C, 0.0, 4.0, "Can you check my order?")
    handled = _with_transcript(_analysis(), _timed(opening, asked, thanked))["hold_etiquette"]
    assert handled.answer == "yes"
    assert handled.evidence == (
        "silence of 51 s; agent asked before the hold and thanked the customer after it"
    )
    half = _with_transcript(_analysis(), _timed(opening, asked, unexplained))["hold_etiquette"]
    assert half.answer == "partly"
    silent = (A, 5.0, 9.0, "Let me look.")
    none = _with_transcript(_analysis(), _timed(opening, silent, unexplained))["hold_etiquette"]
    assert (none.answer, none.evidence) == ("no", "silence of 51 s; unexplained")


def test_hedging_lowers_accuracy_whatever_the_rubric_says() -> None:
    A = Speaker.AGENT
    analysis = _analysis({"accuracy": 5}, resolution_status="resolved")
    sure = _timed((A, 0.0, 3.0, "Your refund was issued today."))
    assert _with_transcript(analysis, sure)["accuracy"].answer == "yes"
    one = _timed((A, 0.0, 3.0, "I think the refund was issued today."))
    assert _with_transcript(analysis, one)["accuracy"].answer == "partly"
    two = _timed((A, 0.0, 3.0, "I think the refund was issued, I'm not sure when."))
    given = _with_transcript(analysis, two)["accuracy"]
    assert (given.answer, given.evidence) == ("no", "uncertain wording: 'i think', 'not sure'")


def test_closing_needs_an_outcome_and_identification_one_identifier() -> None:
    resolved = _analysis({"closing": 5, "identification": 3}, resolution_status="resolved")
    vague = _analysis({"closing": 5, "identification": 1}, resolution_status="unknown")
    assert _answers(resolved)["closing"] == "yes"
    assert _answers(vague)["closing"] == "partly"  # nothing to summarise at the close
    assert _answers(resolved)["identification"] == "yes"
    assert _answers(vague)["identification"] == "no"


def test_courtesy_without_anything_to_acknowledge_is_partly_empathetic() -> None:
    neutral = {"start": "neutral", "end": "positive"}
    calm = _analysis({"empathy": 1, "professionalism": 5}, customer_sentiment=neutral)
    assert _answers(calm)["empathy"] == "partly"
    # An upset customer left unacknowledged, or a discourteous agent: not met.
    upset = _analysis({"empathy": 1, "professionalism": 5})
    assert upset.customer_sentiment.start.value == "negative"
    assert _answers(upset)["empathy"] == "no"
    curt = _analysis({"empathy": 1, "professionalism": 2}, customer_sentiment=neutral)
    assert _answers(curt)["empathy"] == "no"


def test_rude_language_fails_compliance_and_the_consultation() -> None:
    analysis = _analysis({"professionalism": 0})
    result = score_answers(INBOUND, answer_scorecard(INBOUND, analysis, CallMetrics()))

    assert {a.question.id: a.answer.answer for a in result.answers}["compliance"] == "no"
    assert result.pass_state == PassState.FAILED
    assert "compliance" in result.reason


def _custom(tmp_path: Path, question: str) -> Scorecard:
    (tmp_path / "custom").mkdir(exist_ok=True)
    (tmp_path / "custom" / "v1.yaml").write_text(
        "name: custom\nversion: v1\ntitle: Custom\npass_mark: 50\nquestions:\n"
        "  - {id: greeting, text: 'Greeted?', criteria: [greets],\n"
        "     answers: [{answer: 'yes', score: 1}, {answer: 'no', score: 0}]}\n" + question
    )
    load_scorecard.cache_clear()
    return load_scorecard("custom/v1", tmp_path)


def test_a_question_no_rule_answers_is_na_or_refused(tmp_path: Path) -> None:
    optional = _custom(
        tmp_path,
        "  - {id: upsell, text: 'Offered?', criteria: [offers], na_allowed: true,\n"
        "     answers: [{answer: 'yes', score: 1}, {answer: 'no', score: 0}]}\n",
    )
    given = {
        a.question_id: a.answer for a in answer_scorecard(optional, _analysis(), CallMetrics())
    }
    assert given == {"greeting": "yes", "upsell": "n/a"}
    assert unanswerable_questions(optional) == []

    required = _custom(
        tmp_path,
        "  - {id: upsell, text: 'Offered?', criteria: [offers],\n"
        "     answers: [{answer: 'yes', score: 1}, {answer: 'no', score: 0}]}\n",
    )
    assert unanswerable_questions(required) == ["upsell"]
    load_scorecard.cache_clear()


def test_an_unknown_scorecard_is_refused_when_settings_load() -> None:
    with pytest.raises(ValueError, match="unknown scorecard"):
        Settings(scorecard="inbound/v9")


CHAT = (
    "Agent: Good morning, thank you for calling Acme, my name is Dana. How can I help you?\n"
    "Customer: My order 5512 has not arrived and I am upset.\n"
    "Agent: I am so sorry about that. Let me check your order number.\n"
    "Agent: It left the warehouse yesterday and arrives tomorrow before noon.\n"
    "Customer: Great, thank you.\n"
    "Agent: Is there anything else I can help you with? Thank you for calling, goodbye.\n"
)


def test_every_consultation_is_scored_against_the_scorecard(tmp_path: Path) -> None:
    harness = PipelineHarness(root=tmp_path / "run")
    harness.drop("chat.txt", CHAT.encode())
    results = harness.process()
    assert all(r.success for r in results.values())

    answers = harness.table("scorecard_answers")
    assert list(answers.question_id) == [q.id for q in INBOUND.questions]
    assert set(answers.scorecard_version) == {"inbound/v1"}
    assert set(answers.prompt_version) == {"v1"}
    metrics = harness.table("quality_metrics").iloc[0]
    applicable = answers[~answers.na.astype(bool)]
    weighted = (applicable.score * applicable.weight).sum()
    potential = (applicable.max_score * applicable.weight).sum()
    assert metrics.overall_score == round(100 * weighted / potential, 1)
    assert metrics.scorecard_version == "inbound/v1"
    assert metrics.pass_state in {"passed", "below_pass_mark", "failed"}
    assert metrics.pass_reason
    assert 0 <= metrics.rubric_mean <= 100
    report = harness.artifact(metrics.consultation_id, "report.md").decode()
    assert "## Scorecard" in report and "compliance (critical)" in report


def test_hedges_count_only_in_the_agents_labelled_turns_and_a_zero_stays_no() -> None:
    analysis = _analysis({"accuracy": 4}, resolution_status="resolved")
    unlabelled = Transcript(
        segments=[Segment(text="I think maybe it was charged twice, I'm not sure.")],
        language="en",
        source="text",
    )
    assert _with_transcript(analysis, unlabelled)["accuracy"].answer == "yes"
    # An analyzer's accuracy of 0 with nothing hedged to quote is its verdict: not met.
    zero = _analysis({"accuracy": 0}, resolution_status="resolved")
    plain = _timed((Speaker.AGENT, 0.0, 3.0, "Your refund was issued today."))
    assert _with_transcript(zero, plain)["accuracy"].answer == "no"


@pytest.mark.parametrize(
    "said",
    [
        "It is still not sorted.",
        "Your claim has not been approved yet.",
        "It will not be delivered.",
    ],
)
def test_negated_outcomes_are_not_resolutions(said: str) -> None:
    transcript = Transcript(
        segments=[Segment(speaker=Speaker.AGENT, text=said)], language="en", source="text"
    )
    assert analyze_locally(transcript).resolution_status != ResolutionStatus.RESOLVED
