"""One consultation's quality score: its answers to the active scorecard (weighted, with N/A
and critical questions, defs/scoring/scorecards.py) beside the call metrics measured from the
timed transcript (talk time, pace, silence, interruptions, latency), the sentiment of every
turn and of each quarter per speaker (sentiment.py), the categories that fire
(categories.py), and its coaching report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cscoach_pipeline.defs.analysis.analyse import analysis_artifact
from cscoach_pipeline.defs.analysis.schema import (
    RUBRIC_CRITERIA,
    ConsultationAnalysis,
    overall_score,
)
from cscoach_pipeline.defs.ingest.resources import ConsultationArtifacts
from cscoach_pipeline.defs.scoring.answers import answer_scorecard
from cscoach_pipeline.defs.scoring.categories import CategoryMatch, CategorySet, match_categories
from cscoach_pipeline.defs.scoring.metrics import CallMetrics, compute_call_metrics
from cscoach_pipeline.defs.scoring.report import REPORT_ARTIFACT, coaching_report
from cscoach_pipeline.defs.scoring.scorecards import (
    PassState,
    Scorecard,
    ScorecardResult,
    score_answers,
)
from cscoach_pipeline.defs.scoring.sentiment import (
    SegmentSentiment,
    segment_sentiments,
    sentiment_by_quarter,
    sentiment_metadata,
)
from cscoach_pipeline.defs.speech.transcript import Transcript


@dataclass(frozen=True)
class QualityScore:
    overall: float
    rubric: dict[str, int]
    metrics: CallMetrics
    scorecard: ScorecardResult
    rubric_mean: float
    sentiments: list[SegmentSentiment]
    sentiment_quarters: dict[str, float | None]

    def row(
        self, consultation_id: str, prompt_version: str, prompt_variant: str | None
    ) -> dict[str, Any]:
        """The `quality_metrics` row (one per prompt version)."""
        return {
            "consultation_id": consultation_id,
            "prompt_version": prompt_version,
            "prompt_variant": prompt_variant,
            "overall_score": self.overall,
            "scorecard_version": self.scorecard.scorecard.label,
            "pass_state": self.scorecard.pass_state.value,
            "pass_reason": self.scorecard.reason[:500],
            "rubric_mean": self.rubric_mean,
            **{f"{name}_score": score for name, score in self.rubric.items()},
            **self.metrics.model_dump(),
            **self.sentiment_quarters,
        }

    def metadata(self) -> dict[str, Any]:
        shown = {k: v for k, v in self.metrics.model_dump().items() if v is not None}
        return {
            "overall_score": self.overall,
            "scorecard": self.scorecard.scorecard.label,
            "pass_state": self.scorecard.pass_state.value,
            "pass_reason": self.scorecard.reason,
            "rubric_mean": self.rubric_mean,
            "scorecard_answered_by_model": sum(
                a.answer.answered_by == "model" for a in self.scorecard.answers
            ),
            **{k: round(v, 3) if isinstance(v, float) else v for k, v in shown.items()},
            **sentiment_metadata(self.sentiment_quarters),
            "turn_sentiment_by_model": sum(s.source == "model" for s in self.sentiments),
        }


def score_consultation(
    transcript: Transcript, analysis: ConsultationAnalysis, scorecard: Scorecard
) -> QualityScore:
    metrics = compute_call_metrics(transcript)
    result = score_answers(scorecard, answer_scorecard(scorecard, analysis, metrics, transcript))
    sentiments = segment_sentiments(transcript, analysis)
    rubric_mean = overall_score(analysis.rubric)
    # A card whose every question was N/A has no score of its own: the rubric's stands in.
    overall = result.overall_score if result.pass_state != PassState.NOT_SCORED else rubric_mean
    return QualityScore(
        overall=overall if overall is not None else rubric_mean,
        rubric={name: getattr(analysis.rubric, name).score for name in RUBRIC_CRITERIA},
        metrics=metrics,
        scorecard=result,
        rubric_mean=rubric_mean,
        sentiments=sentiments,
        sentiment_quarters=sentiment_by_quarter(transcript, sentiments),
    )


@dataclass(frozen=True)
class ScoredConsultation:
    score: QualityScore
    analysis: ConsultationAnalysis
    categories: list[CategoryMatch]
    report_location: str
    report: str  # the coaching report's Markdown, as stored at report_location


def score_and_report(
    transcript: Transcript,
    prompt_version: str,
    scorecard: Scorecard,
    categories: CategorySet,
    artifacts: ConsultationArtifacts,
    shown_key: str,
) -> ScoredConsultation:
    """Score the consultation from its stored analysis, match its categories and write its
    coaching report."""
    analysis = ConsultationAnalysis.model_validate(
        artifacts.read_json(analysis_artifact(prompt_version))
    )
    score = score_consultation(transcript, analysis, scorecard)
    matches = match_categories(transcript, score.sentiments, categories)
    report = coaching_report(shown_key, score.overall, analysis, score.scorecard, matches)
    artifacts.write_text(REPORT_ARTIFACT, report)
    return ScoredConsultation(score, analysis, matches, artifacts.locate(REPORT_ARTIFACT), report)
