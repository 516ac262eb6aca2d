"""The scorecard evaluation set (tests/evaluation/inbound_v1.yaml) and the local analyzer's
agreement with its hand labels, as the calibration computes it for human reviewers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from cscoach_pipeline.defs.analysis.local_rules import analyze_locally
from cscoach_pipeline.defs.calibration.agreement import (
    ANALYZER_VS_REVIEWER,
    CalibrationRow,
    calibrate,
)
from cscoach_pipeline.defs.scoring.answers import answer_scorecard
from cscoach_pipeline.defs.scoring.metrics import compute_call_metrics
from cscoach_pipeline.defs.scoring.scorecards import Answer, Scorecard, load_scorecard
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript

EVALUATION_DIR = Path(__file__).resolve().parents[1] / "evaluation"
# The phrase book was tuned on the first; the held-out set never was.
EVALUATION_SET = EVALUATION_DIR / "inbound_v1.yaml"
HOLDOUT_SET = EVALUATION_DIR / "inbound_v1_holdout.yaml"
SPEAKERS = {"A": Speaker.AGENT, "C": Speaker.CUSTOMER}


@dataclass(frozen=True)
class Case:
    id: str
    transcript: Transcript
    labels: dict[str, str]


def load_cases(path: Path = EVALUATION_SET) -> tuple[Scorecard, list[Case]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    cases = []
    for case in data["cases"]:
        segments = []
        for turn in case["turns"]:
            if case.get("timed"):
                speaker, start, end, text = turn
                segments.append(
                    Segment(speaker=SPEAKERS[speaker], start_s=start, end_s=end, text=text)
                )
            else:
                speaker, text = turn
                segments.append(Segment(speaker=SPEAKERS[speaker], text=text))
        duration = segments[-1].end_s if case.get("timed") else None
        transcript = Transcript(
            segments=segments, language=case["language"], source="text", duration_s=duration
        )
        labels = {str(k): str(v) for k, v in case["labels"].items()}
        cases.append(Case(case["id"], transcript, labels))
    return load_scorecard(data["scorecard"]), cases


def local_answers(scorecard: Scorecard, case: Case) -> list[Answer]:
    analysis = analyze_locally(case.transcript)
    metrics = compute_call_metrics(case.transcript)
    return answer_scorecard(scorecard, analysis, metrics, case.transcript)


def agreement_with_labels(scorecard: Scorecard, cases: list[Case]) -> list[CalibrationRow]:
    """The local analyzer against the hand labels, per question and overall."""
    reviews, machine = [], []
    for case in cases:
        for question_id, label in case.labels.items():
            question = scorecard.question(question_id)
            choice = question.choice(label)
            reviews.append({
                "consultation_id": case.id, "scorecard_version": scorecard.label,
                "reviewer": "hand-label", "question_id": question_id, "answer": label,
                "score": choice.score if choice else None, "max_score": question.max_score,
            })  # fmt: skip
        for answer in local_answers(scorecard, case):
            question = scorecard.question(answer.question_id)
            choice = question.choice(answer.answer)
            machine.append({
                "consultation_id": case.id, "scorecard_version": scorecard.label,
                "prompt_version": "-", "analyzer": "local-rules",
                "question_id": answer.question_id, "answer": answer.answer,
                "score": choice.score if choice else None, "max_score": question.max_score,
            })  # fmt: skip
    rows = calibrate(reviews, machine)
    return [r for r in rows if r.comparison == ANALYZER_VS_REVIEWER]
