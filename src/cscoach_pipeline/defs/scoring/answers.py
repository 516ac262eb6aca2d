"""A scorecard answered from an analysis and the call's measured metrics, offline.

Each question names the rule that answers it (`local_rule`, else its id). The rules read
what every analyzer gives (the rubric's 0-5 scores with their reasons, the resolution
status) and what the timed transcript measures (interruptions, silences), so a scorecard is
answered the same way after Gemini or after the local rules. A question no rule answers is
N/A where that is allowed; a scorecard with other unanswerable questions is refused when the
code location loads (`unanswerable_questions`).
"""

from __future__ import annotations

from collections.abc import Callable

from cscoach_pipeline.defs.analysis.schema import ConsultationAnalysis, ResolutionStatus
from cscoach_pipeline.defs.scoring.metrics import CallMetrics
from cscoach_pipeline.defs.scoring.scorecards import NA, Answer, Question, Scorecard

# A silence this long with nobody talking is a hold (or a dead line) the agent must handle.
HOLD_SILENCE_S = 30.0
# Interruptions by the agent that still count as listening "partly".
PARTLY_LISTENING_INTERRUPTIONS = 2


def _three_way(score: int) -> str:
    """A rubric 0-5 as yes / partly / no: 4-5 met, 2-3 in part, 0-1 not."""
    return "yes" if score >= 4 else "partly" if score >= 2 else "no"


def _from_rubric(criterion: str) -> Rule:
    def rule(analysis: ConsultationAnalysis, metrics: CallMetrics) -> Answer:
        item = getattr(analysis.rubric, criterion)
        return Answer(criterion, _three_way(item.score), evidence=item.reason)

    return rule


def _active_listening(analysis: ConsultationAnalysis, metrics: CallMetrics) -> Answer:
    interruptions = metrics.interruptions_by_agent
    if interruptions is None:  # untimed or unknown speakers: the rubric's courtesy decides
        item = analysis.rubric.professionalism
        return Answer("active_listening", _three_way(item.score), evidence=item.reason)
    answer = (
        "yes"
        if interruptions == 0
        else "partly"
        if interruptions <= PARTLY_LISTENING_INTERRUPTIONS
        else "no"
    )
    return Answer("active_listening", answer, evidence=f"{interruptions} interruption(s) by agent")


def _problem_solving(analysis: ConsultationAnalysis, metrics: CallMetrics) -> Answer:
    status = analysis.resolution_status
    reason = analysis.rubric.problem_solving.reason
    if status == ResolutionStatus.RESOLVED:
        return Answer("problem_solving", "resolved", evidence=reason)
    if status in (ResolutionStatus.PARTIALLY_RESOLVED, ResolutionStatus.ESCALATED):
        return Answer("problem_solving", "next_step", evidence=reason)
    if status == ResolutionStatus.UNRESOLVED:
        return Answer("problem_solving", "no", evidence=reason)
    score = analysis.rubric.problem_solving.score
    answer = "resolved" if score >= 4 else "next_step" if score >= 2 else "no"
    return Answer("problem_solving", answer, evidence=reason)


def _hold_etiquette(analysis: ConsultationAnalysis, metrics: CallMetrics) -> Answer:
    longest = metrics.longest_silence_s
    if longest is None or longest < HOLD_SILENCE_S:
        return Answer("hold_etiquette", NA, evidence="no hold or long silence")
    item = analysis.rubric.professionalism
    # A long silence handled courteously (the rubric saw hold etiquette) is "partly" at best.
    answer = "partly" if item.score >= 4 else "no"
    return Answer("hold_etiquette", answer, evidence=f"silence of {longest:.0f} s; {item.reason}")


def _compliance(analysis: ConsultationAnalysis, metrics: CallMetrics) -> Answer:
    item = analysis.rubric.professionalism
    return Answer("compliance", "no" if item.score <= 1 else "yes", evidence=item.reason)


Rule = Callable[[ConsultationAnalysis, CallMetrics], Answer]
LOCAL_RULES: dict[str, Rule] = {
    "greeting": _from_rubric("greeting"),
    "identification": _from_rubric("identification"),
    "empathy": _from_rubric("empathy"),
    "accuracy": _from_rubric("accuracy"),
    "closing": _from_rubric("closing"),
    "professionalism": _from_rubric("professionalism"),
    "active_listening": _active_listening,
    "problem_solving": _problem_solving,
    "hold_etiquette": _hold_etiquette,
    "compliance": _compliance,
}


def _rule_of(question: Question) -> str:
    return question.local_rule or question.id


def unanswerable_questions(scorecard: Scorecard) -> list[str]:
    """Questions no rule answers and that cannot be N/A."""
    return [
        q.id for q in scorecard.questions if _rule_of(q) not in LOCAL_RULES and not q.na_allowed
    ]


def answer_scorecard(
    scorecard: Scorecard, analysis: ConsultationAnalysis, metrics: CallMetrics
) -> list[Answer]:
    answers = []
    for question in scorecard.questions:
        rule = LOCAL_RULES.get(_rule_of(question))
        if rule is None:
            answers.append(Answer(question.id, NA, evidence="no rule answers this question"))
            continue
        answer = rule(analysis, metrics)
        choice = answer.answer
        if question.choice(choice) is None and not answer.na:
            # A rule's yes/partly/no on a question with other choices: its best, middle, worst.
            ranked = sorted(question.answers, key=lambda c: c.score, reverse=True)
            order = {"yes": 0, "resolved": 0, "partly": 1, "next_step": 1}
            index = order.get(choice, len(ranked) - 1)
            choice = ranked[min(index, len(ranked) - 1)].answer
        if answer.na and not question.na_allowed:
            # Nothing happened to fault (no hold, say): the best choice.
            choice = max(question.answers, key=lambda c: c.score).answer
        answers.append(Answer(question.id, choice, answer.evidence, answer.start_s))
    return answers
