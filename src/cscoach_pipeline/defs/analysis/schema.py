"""The validated shape of a coaching analysis. Nothing reaches a table unless it parses as this."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

ANALYSIS_SCHEMA_VERSION = "1"

RUBRIC_CRITERIA: tuple[str, ...] = (
    "greeting",
    "identification",
    "empathy",
    "problem_solving",
    "accuracy",
    "closing",
    "professionalism",
)


class ResolutionStatus(StrEnum):
    RESOLVED = "resolved"
    PARTIALLY_RESOLVED = "partially_resolved"
    UNRESOLVED = "unresolved"
    ESCALATED = "escalated"
    UNKNOWN = "unknown"


class Sentiment(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"


class RubricScore(BaseModel):
    model_config = ConfigDict(extra="forbid")

    score: int = Field(ge=0, le=5, description="0 = absent or very poor, 5 = exemplary")
    reason: str = Field(min_length=1)


class RubricScores(BaseModel):
    model_config = ConfigDict(extra="forbid")

    greeting: RubricScore
    identification: RubricScore
    empathy: RubricScore
    problem_solving: RubricScore
    accuracy: RubricScore
    closing: RubricScore
    professionalism: RubricScore


class ImprovementPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    point: str = Field(min_length=1)
    evidence_quote: str = Field(description="Verbatim quote from the transcript, may be empty")


class CustomerSentiment(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: Sentiment
    end: Sentiment


class ScorecardAnswerItem(BaseModel):
    """The model's answer to one scorecard question (prompts that carry the scorecard)."""

    model_config = ConfigDict(extra="forbid")

    question_id: str = Field(min_length=1)
    answer: str = Field(min_length=1, description="one of the question's choices, or n/a")
    evidence_quote: str = Field(default="", description="verbatim quote, may be empty")
    start_s: float | None = Field(default=None, description="where the quote starts, seconds")


class TurnSentimentItem(BaseModel):
    """The model's sentiment of one transcript segment (prompts that number the segments)."""

    model_config = ConfigDict(extra="forbid")

    segment: int = Field(ge=0, description="the segment's number in the transcript, from 0")
    sentiment: float = Field(ge=-1, le=1, description="-1 very negative .. 1 very positive")


class ConsultationAnalysis(BaseModel):
    """The coaching analysis of one consultation, as produced by any analyzer."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1)
    customer_intent: str
    issue: str
    resolution_status: ResolutionStatus
    customer_sentiment: CustomerSentiment
    agent_strengths: list[str]
    improvement_points: list[ImprovementPoint]
    coaching_tips: list[str]
    rubric: RubricScores
    # Filled only when the prompt asked the scorecard's questions; checked against the
    # scorecard when scored, the offline rules answering whatever is missing or invalid.
    scorecard_answers: list[ScorecardAnswerItem] = Field(default_factory=list)
    # Filled only when the prompt asked it; segments without a score get the lexicon's.
    turn_sentiment: list[TurnSentimentItem] = Field(default_factory=list)


def overall_score(rubric: RubricScores) -> float:
    """Rubric mean mapped from 0-5 to 0-100 (equal weights), rounded to one decimal."""
    scores = [getattr(rubric, name).score for name in RUBRIC_CRITERIA]
    return round(sum(scores) / (5 * len(scores)) * 100, 1)
