"""Scorecards a QA lead owns: versioned data files under scorecards/<name>/<version>.yaml.

A scorecard is a list of weighted questions, each with answer choices worth a score, whether
N/A is allowed and whether it is critical (a failed critical question fails the whole
consultation, e.g. a mandatory disclosure), and a pass mark. Answers against it are scored
as Google CCAI Insights' Quality AI does: applicable questions' weighted scores over their
weighted potential, 0-100; an N/A answer leaves both out. A file is validated when loaded:
a broken one fails with one error naming the file and what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

SCORECARDS_DIR = Path(__file__).resolve().parents[2] / "scorecards"
NA = "n/a"


class AnswerChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answer: str = Field(min_length=1, description="what an answer says, e.g. yes, partly, no")
    score: float = Field(ge=0)
    # A critical question answered with a failing choice fails the consultation.
    fails: bool = False


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: str = Field(min_length=1)
    criteria: list[str] = Field(min_length=1, description="what an answer must check")
    answers: list[AnswerChoice] = Field(min_length=2)
    weight: float = Field(default=1.0, gt=0)
    na_allowed: bool = False
    critical: bool = False
    # The offline rule that answers it (defs/scoring/answers.py), when not named as its id.
    local_rule: str | None = None

    @model_validator(mode="after")
    def _choices_are_distinct_and_critical_can_fail(self) -> Question:
        names = [choice.answer.lower() for choice in self.answers]
        if len(set(names)) != len(names):
            raise ValueError(f"question {self.id}: answer choices repeat")
        if NA in names:
            raise ValueError(f"question {self.id}: N/A is na_allowed, not an answer choice")
        if self.critical and not any(choice.fails for choice in self.answers):
            raise ValueError(f"question {self.id}: critical, but no answer choice fails")
        return self

    @property
    def max_score(self) -> float:
        return max(choice.score for choice in self.answers)

    def choice(self, answer: str) -> AnswerChoice | None:
        wanted = answer.strip().lower()
        return next((c for c in self.answers if c.answer.lower() == wanted), None)


class Scorecard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    version: str = Field(pattern=r"^v\d+$")
    title: str = Field(min_length=1)
    description: str = ""
    pass_mark: float = Field(ge=0, le=100)
    questions: list[Question] = Field(min_length=1)

    @model_validator(mode="after")
    def _question_ids_are_unique(self) -> Scorecard:
        ids = [q.id for q in self.questions]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"question ids repeat: {', '.join(repeated)}")
        return self

    @property
    def label(self) -> str:
        """`<name>/<version>`, as results are stored (`scorecard_version`)."""
        return f"{self.name}/{self.version}"

    def question(self, question_id: str) -> Question:
        for question in self.questions:
            if question.id == question_id:
                return question
        raise KeyError(f"{self.label} has no question {question_id!r}")


class PassState(StrEnum):
    PASSED = "passed"
    BELOW_PASS_MARK = "below_pass_mark"
    FAILED = "failed"  # a critical question failed
    NOT_SCORED = "not_scored"  # every question N/A


@dataclass(frozen=True)
class Answer:
    """One question answered, by an analyzer or a human: a choice, or N/A."""

    question_id: str
    answer: str
    evidence: str = ""
    start_s: float | None = None
    answered_by: str = "rules"  # rules | model (the LLM answered it in its analysis)

    @property
    def na(self) -> bool:
        return self.answer.strip().lower() == NA


@dataclass(frozen=True)
class ScoredAnswer:
    question: Question
    answer: Answer
    score: float | None  # None: N/A

    @property
    def failed_critical(self) -> bool:
        choice = None if self.answer.na else self.question.choice(self.answer.answer)
        return self.question.critical and choice is not None and choice.fails


@dataclass(frozen=True)
class ScorecardResult:
    scorecard: Scorecard
    answers: list[ScoredAnswer]
    overall_score: float | None
    pass_state: PassState
    reason: str

    def rows(self, consultation_id: str, prompt_version: str) -> list[dict[str, object]]:
        """`scorecard_answers` rows, one per question."""
        return [
            {
                "consultation_id": consultation_id,
                "scorecard_version": self.scorecard.label,
                "prompt_version": prompt_version,
                "question_id": scored.question.id,
                "answer": scored.answer.answer,
                "score": scored.score,
                "max_score": scored.question.max_score,
                "weight": scored.question.weight,
                "na": scored.answer.na,
                "critical": scored.question.critical,
                "evidence": scored.answer.evidence,
                "start_s": scored.answer.start_s,
                "answered_by": scored.answer.answered_by,
            }
            for scored in self.answers
        ]


class InvalidAnswers(ValueError):
    """Answers that do not fit the scorecard: a missing or unknown question, a choice it
    does not offer, N/A where it is not allowed."""


def score_answers(scorecard: Scorecard, answers: Iterable[Answer]) -> ScorecardResult:
    """Weighted score of the applicable questions over their potential, 0-100 (one
    decimal); N/A answers are left out of both. A failed critical question fails the
    consultation whatever the score."""
    by_id: dict[str, Answer] = {}
    problems: list[str] = []
    for answer in answers:
        if answer.question_id in by_id:
            problems.append(f"{answer.question_id}: answered twice")
        by_id[answer.question_id] = answer
    known = {q.id for q in scorecard.questions}
    problems += [f"{qid}: not a question of {scorecard.label}" for qid in by_id if qid not in known]
    scored: list[ScoredAnswer] = []
    for question in scorecard.questions:
        answer = by_id.get(question.id)
        if answer is None:
            problems.append(f"{question.id}: not answered")
            continue
        if answer.na:
            if not question.na_allowed:
                problems.append(f"{question.id}: N/A is not allowed")
            scored.append(ScoredAnswer(question, answer, None))
            continue
        choice = question.choice(answer.answer)
        if choice is None:
            offered = ", ".join(c.answer for c in question.answers)
            problems.append(f"{question.id}: {answer.answer!r} is not one of {offered}")
            continue
        scored.append(ScoredAnswer(question, answer, choice.score))
    if problems:
        raise InvalidAnswers(f"answers to {scorecard.label}: " + "; ".join(problems))
    applicable = [s for s in scored if s.score is not None]
    potential = sum(s.question.weight * s.question.max_score for s in applicable)
    earned = sum(s.question.weight * (s.score or 0.0) for s in applicable)
    overall = round(100 * earned / potential, 1) if potential else None
    failed = [s for s in scored if s.failed_critical]
    if failed:
        names = ", ".join(f"{s.question.id} ({s.answer.answer})" for s in failed)
        state, reason = PassState.FAILED, f"critical question failed: {names}"
    elif overall is None:
        state, reason = PassState.NOT_SCORED, "every question was N/A"
    elif overall >= scorecard.pass_mark:
        state, reason = PassState.PASSED, f"{overall} >= pass mark {scorecard.pass_mark:g}"
    else:
        state, reason = PassState.BELOW_PASS_MARK, f"{overall} < pass mark {scorecard.pass_mark:g}"
    return ScorecardResult(scorecard, scored, overall, state, reason)


def scorecard_questions(scorecard: Scorecard) -> str:
    """The questions as a prompt lists them: id, text, criteria, choices, N/A."""
    lines = []
    for q in scorecard.questions:
        choices = ", ".join(c.answer for c in q.answers) + (f", {NA}" if q.na_allowed else "")
        lines.append(f"- {q.id}: {q.text} Criteria: {'; '.join(q.criteria)}. Answer: {choices}.")
    return "\n".join(lines)


def available_scorecards() -> list[str]:
    """`<name>/<version>` of every shipped scorecard."""
    return sorted(f"{p.parent.name}/{p.stem}" for p in SCORECARDS_DIR.glob("*/v*.yaml"))


@lru_cache(maxsize=16)
def load_scorecard(label: str, directory: Path = SCORECARDS_DIR) -> Scorecard:
    """The scorecard `<name>/<version>` (e.g. `inbound/v1`), validated."""
    name, _, version = label.partition("/")
    path = directory / name / f"{version}.yaml"
    if not name or not version or not path.is_file():
        raise ValueError(
            f"unknown scorecard {label!r} (CSCOACH_SCORECARD); "
            f"available: {', '.join(available_scorecards()) or 'none'}"
        )
    try:
        scorecard = Scorecard.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"scorecard file {name}/{path.name} is invalid: {exc}") from None
    if scorecard.label != label:
        raise ValueError(f"{path} declares {scorecard.label!r}, expected {label!r}")
    return scorecard
