"""The scorecard evaluation set (tests/evaluation/inbound_v1.yaml) and the local analyzer's
agreement with its hand labels, as the calibration computes it for human reviewers; and how
the call categories and the offline turn sentiment agree with the cases' hand labels."""

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
from cscoach_pipeline.defs.scoring.categories import load_categories, match_categories
from cscoach_pipeline.defs.scoring.metrics import compute_call_metrics
from cscoach_pipeline.defs.scoring.scorecards import Answer, Scorecard, load_scorecard
from cscoach_pipeline.defs.scoring.sentiment import SegmentSentiment, segment_sentiments
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
    categories: frozenset[str] = frozenset()
    # The customer's sentiment in their first and last turns, by hand.
    customer_sentiment: tuple[str, str] | None = None


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
        sentiment = case.get("customer_sentiment")
        cases.append(
            Case(
                case["id"],
                transcript,
                labels,
                frozenset(case.get("categories") or ()),
                (sentiment["start"], sentiment["end"]) if sentiment else None,
            )
        )
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


@dataclass(frozen=True)
class CategoryAgreement:
    category_id: str
    labelled: int  # cases a person labelled with it
    fired: int  # cases the rules fired it on
    # None where undefined: precision when it never fired, recall when nobody labelled it.
    precision: float | None
    recall: float | None
    f1: float | None


def _agreement(
    category_id: str, labelled: int, fired: int, precision: float, recall: float, f1: float
) -> CategoryAgreement:
    defined_p, defined_r = fired > 0, labelled > 0
    return CategoryAgreement(
        category_id,
        labelled,
        fired,
        round(float(precision), 3) if defined_p else None,
        round(float(recall), 3) if defined_r else None,
        round(float(f1), 3) if defined_p or defined_r else None,
    )


def category_agreement(cases: list[Case], version: str = "v1") -> list[CategoryAgreement]:
    """Per category (and `overall`, micro-averaged) precision, recall and F1 of the rules
    against the hand labels (scikit-learn's)."""
    from sklearn.metrics import precision_recall_fscore_support

    categories = load_categories(version)
    ids = [c.id for c in categories.categories]
    truth, predicted = [], []
    for case in cases:
        matches = match_categories(case.transcript, segment_sentiments(case.transcript), categories)
        fired = {m.category_id for m in matches}
        truth.append([int(i in case.categories) for i in ids])
        predicted.append([int(i in fired) for i in ids])
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, average=None, zero_division=0.0
    )
    rows = [
        _agreement(
            ids[k],
            int(support[k]),
            sum(row[k] for row in predicted),
            precision[k],
            recall[k],
            f1[k],
        )
        for k in range(len(ids))
    ]
    p, r, f, _ = precision_recall_fscore_support(
        truth, predicted, average="micro", zero_division=0.0
    )
    rows.append(_agreement("overall", sum(map(sum, truth)), sum(map(sum, predicted)), p, r, f))
    return rows


def _customer_label(case: Case, sentiments: list[SegmentSentiment], which: int) -> str:
    customer = [
        s for s in sentiments if case.transcript.segments[s.index].speaker is Speaker.CUSTOMER
    ]
    return customer[which].label.value if customer else "neutral"


def sentiment_agreement(cases: list[Case]) -> dict[str, float | int]:
    """The lexicon's label of the customer's first and last turn against the hand labels:
    accuracy and macro F1 over negative / neutral / positive (scikit-learn's)."""
    from sklearn.metrics import accuracy_score, f1_score

    truth, predicted = [], []
    for case in cases:
        if case.customer_sentiment is None:
            continue
        sentiments = segment_sentiments(case.transcript)
        for which, label in zip((0, -1), case.customer_sentiment, strict=True):
            truth.append(label)
            predicted.append(_customer_label(case, sentiments, which))
    labels = ["negative", "neutral", "positive"]
    return {
        "turns": len(truth),
        "accuracy": round(float(accuracy_score(truth, predicted)), 3) if truth else 0.0,
        "macro_f1": round(
            float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0.0)), 3
        )
        if truth
        else 0.0,
    }
