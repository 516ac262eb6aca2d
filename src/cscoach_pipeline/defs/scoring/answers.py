"""A scorecard answered from an analysis and the call's measured metrics, offline.

Each question names the rule that answers it (`local_rule`, else its id). The rules read
what every analyzer gives (the rubric's 0-5 scores with their reasons, the resolution
status), what the timed transcript measures (interruptions, silences) and, through the
local-rules phrase book, what the agent said (hedges, asking before a hold and thanking
after it), so a scorecard is answered the same way after Gemini or after the local rules.
A question no rule answers is N/A where that is allowed; a scorecard with other
unanswerable questions is refused when the code location loads (`unanswerable_questions`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cscoach_pipeline.defs.analysis.local_rules import PhraseBook, load_phrase_book
from cscoach_pipeline.defs.analysis.local_rules.matching import distinct, scan
from cscoach_pipeline.defs.analysis.local_rules.rules import agent_turns
from cscoach_pipeline.defs.analysis.schema import ConsultationAnalysis, ResolutionStatus
from cscoach_pipeline.defs.privacy.pii import redact_text
from cscoach_pipeline.defs.scoring.metrics import CallMetrics
from cscoach_pipeline.defs.scoring.scorecards import NA, Answer, Question, Scorecard
from cscoach_pipeline.defs.speech.transcript import Speaker, Transcript

# A silence this long with nobody talking is a hold (or a dead line) the agent must handle.
HOLD_SILENCE_S = 30.0
# Interruptions by the agent that still count as listening "partly".
PARTLY_LISTENING_INTERRUPTIONS = 2


# Outcomes the agent stated: a definite answer, and something to summarise at the close.
STATED_OUTCOMES = (
    ResolutionStatus.RESOLVED,
    ResolutionStatus.PARTIALLY_RESOLVED,
    ResolutionStatus.ESCALATED,
)


@dataclass(frozen=True)
class CallEvidence:
    """What the rules read beside the analysis: the measured call and the agent's words."""

    metrics: CallMetrics
    hedges: tuple[str, ...] = ()  # the agent's uncertain wording ("I think", "아마")
    hold_asked: bool = False  # the agent asked before the longest silence
    hold_thanked: bool = False  # and thanked the customer after it


def call_evidence(
    metrics: CallMetrics, transcript: Transcript | None, book: PhraseBook | None = None
) -> CallEvidence:
    if transcript is None or not transcript.segments:
        return CallEvidence(metrics)
    book = book or load_phrase_book()
    agent = agent_turns(transcript, book)
    # Only turns known to be the agent's: unlabelled speech may be the customer hedging.
    hedges = distinct(scan(book.hedges, [v for v in agent if v.speaker is Speaker.AGENT]))
    asked = thanked = False
    gap = _longest_gap(transcript)
    if gap is not None:
        before = [v for v in agent if v.index < gap][-1:]
        after = [v for v in agent if v.index >= gap][:1]
        asked = bool(scan(book.hold_request + book.hold, before))
        thanked = bool(scan(book.hold_thanks, after))
    return CallEvidence(metrics, hedges, asked, thanked)


def _longest_gap(transcript: Transcript) -> int | None:
    """Index of the segment after the longest silence of HOLD_SILENCE_S or more, if timed."""
    if not transcript.is_timed:
        return None
    best, best_index, heard_until = HOLD_SILENCE_S, None, None
    for index, segment in sorted(
        enumerate(transcript.segments), key=lambda pair: pair[1].start_s or 0.0
    ):
        start, end = segment.start_s or 0.0, segment.end_s or 0.0
        if heard_until is not None and start - heard_until >= best:
            best, best_index = start - heard_until, index
        heard_until = max(end, heard_until or 0.0)
    return best_index


def _three_way(score: int) -> str:
    """A rubric 0-5 as yes / partly / no: 4-5 met, 2-3 in part, 0-1 not."""
    return "yes" if score >= 4 else "partly" if score >= 2 else "no"


def _from_rubric(criterion: str) -> Rule:
    def rule(analysis: ConsultationAnalysis, evidence: CallEvidence) -> Answer:
        item = getattr(analysis.rubric, criterion)
        return Answer(criterion, _three_way(item.score), evidence=item.reason)

    return rule


def _identification(analysis: ConsultationAnalysis, evidence: CallEvidence) -> Answer:
    # Asking for one identifier (name, account, order) meets the question: 3 of 5 and up.
    item = analysis.rubric.identification
    answer = "yes" if item.score >= 3 else "partly" if item.score == 2 else "no"
    return Answer("identification", answer, evidence=item.reason)


def _empathy(analysis: ConsultationAnalysis, evidence: CallEvidence) -> Answer:
    item = analysis.rubric.empathy
    answer = _three_way(item.score)
    calm = analysis.customer_sentiment.start.value != "negative"
    if answer == "no" and calm and analysis.rubric.professionalism.score >= 4:
        # Nothing to acknowledge and a courteous tone throughout: the question is met in part.
        answer = "partly"
    return Answer("empathy", answer, evidence=item.reason)


def _accuracy(analysis: ConsultationAnalysis, evidence: CallEvidence) -> Answer:
    item = analysis.rubric.accuracy
    if evidence.hedges:
        shown = ", ".join(f"'{h}'" for h in evidence.hedges)
        answer = "no" if len(evidence.hedges) >= 2 else "partly"
        return Answer("accuracy", answer, evidence=f"uncertain wording: {shown}")
    if item.score == 0:  # the analyzer's own verdict, with no hedge behind it to quote
        return Answer("accuracy", "no", evidence=item.reason)
    if item.score >= 3 or analysis.resolution_status in STATED_OUTCOMES:
        return Answer("accuracy", "yes", evidence=item.reason)
    return Answer("accuracy", "partly", evidence=item.reason)


def _closing(analysis: ConsultationAnalysis, evidence: CallEvidence) -> Answer:
    item = analysis.rubric.closing
    answer = _three_way(item.score)
    if answer == "yes" and analysis.resolution_status not in STATED_OUTCOMES:
        # A close with no outcome or next step to summarise meets the question in part.
        answer = "partly"
    return Answer("closing", answer, evidence=item.reason)


def _active_listening(analysis: ConsultationAnalysis, evidence: CallEvidence) -> Answer:
    interruptions = evidence.metrics.interruptions_by_agent
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


def _problem_solving(analysis: ConsultationAnalysis, evidence: CallEvidence) -> Answer:
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


def _hold_etiquette(analysis: ConsultationAnalysis, evidence: CallEvidence) -> Answer:
    longest = evidence.metrics.longest_silence_s
    if longest is None or longest < HOLD_SILENCE_S:
        return Answer("hold_etiquette", NA, evidence="no hold or long silence")
    done = [
        what
        for what, said in (
            ("asked before the hold", evidence.hold_asked),
            ("thanked the customer after it", evidence.hold_thanked),
        )
        if said
    ]
    answer = "yes" if len(done) == 2 else "partly" if done else "no"
    shown = "; agent " + " and ".join(done) if done else "; unexplained"
    return Answer("hold_etiquette", answer, evidence=f"silence of {longest:.0f} s{shown}")


def _compliance(analysis: ConsultationAnalysis, evidence: CallEvidence) -> Answer:
    item = analysis.rubric.professionalism
    return Answer("compliance", "no" if item.score <= 1 else "yes", evidence=item.reason)


Rule = Callable[[ConsultationAnalysis, CallEvidence], Answer]
LOCAL_RULES: dict[str, Rule] = {
    "greeting": _from_rubric("greeting"),
    "identification": _identification,
    "empathy": _empathy,
    "accuracy": _accuracy,
    "closing": _closing,
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


def _model_answers(scorecard: Scorecard, analysis: ConsultationAnalysis) -> dict[str, Answer]:
    """The analyzer's own answers that fit the scorecard: a choice the question offers, or
    N/A where allowed. Anything else (an unknown question, another choice) is left to the
    rules rather than failing the consultation."""
    known = {q.id: q for q in scorecard.questions}
    answers: dict[str, Answer] = {}
    for item in analysis.scorecard_answers:
        question = known.get(item.question_id)
        if question is None or item.question_id in answers:
            continue
        wanted = item.answer.strip().lower()
        if wanted in (NA, "na"):
            if not question.na_allowed:
                continue
            choice = NA
        else:
            found = question.choice(wanted)
            if found is None:
                continue
            choice = found.answer
        # The transcript it quotes is redacted already; a model may still invent digits.
        quote = redact_text(item.evidence_quote)[:500]
        answers[question.id] = Answer(question.id, choice, quote, item.start_s, "model")
    return answers


def answer_scorecard(
    scorecard: Scorecard,
    analysis: ConsultationAnalysis,
    metrics: CallMetrics,
    transcript: Transcript | None = None,
) -> list[Answer]:
    evidence = call_evidence(metrics, transcript)
    from_model = _model_answers(scorecard, analysis)
    answers = []
    for question in scorecard.questions:
        if question.id in from_model:
            answers.append(from_model[question.id])
            continue
        rule = LOCAL_RULES.get(_rule_of(question))
        if rule is None:
            answers.append(Answer(question.id, NA, evidence="no rule answers this question"))
            continue
        answer = rule(analysis, evidence)
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
