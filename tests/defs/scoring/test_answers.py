"""Proves how a consultation is answered against the scorecard and scored with it.

Unit: each offline rule (defs/scoring/answers.py) turns the analysis (rubric scores and
reasons, resolution) and the measured metrics (interruptions, silences) into a choice of
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

from cscoach_pipeline.defs.analysis.schema import ConsultationAnalysis
from cscoach_pipeline.defs.scoring.answers import answer_scorecard, unanswerable_questions
from cscoach_pipeline.defs.scoring.metrics import CallMetrics
from cscoach_pipeline.defs.scoring.scorecards import (
    PassState,
    Scorecard,
    load_scorecard,
    score_answers,
)
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


def test_hold_etiquette_is_na_without_a_hold_and_judged_with_one() -> None:
    assert _answers(_analysis(), longest_silence_s=4.0)["hold_etiquette"] == "n/a"
    assert (
        _answers(_analysis({"professionalism": 5}), longest_silence_s=45.0)["hold_etiquette"]
        == "partly"
    )
    assert (
        _answers(_analysis({"professionalism": 2}), longest_silence_s=45.0)["hold_etiquette"]
        == "no"
    )


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
