"""Proves the scorecard evaluation set is usable and the local analyzer meets its aim on it:
every case of both sets (tests/evaluation/) answers every question of its scorecard with a
choice it offers (N/A only where allowed), ids are unique, both languages are present, and
the local analyzer's overall quadratic-weighted kappa against the hand labels is at least
0.6, the issue's aim, on the held-out set it was never tuned on as on the tuning set.
(benchmarks/scorecard_agreement.py reports the figures per question; README.) Every case
also carries hand labels of its call categories and the customer's first and last sentiment,
and the category agreement is scikit-learn's precision and recall per category
(benchmarks/insight_agreement.py reports them)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from cscoach_pipeline.defs.calibration.agreement import OVERALL
from cscoach_pipeline.defs.scoring.categories import load_categories
from cscoach_pipeline.defs.scoring.scorecards import Answer, score_answers
from tests.support.evaluation import (
    EVALUATION_SET,
    HOLDOUT_SET,
    agreement_with_labels,
    category_agreement,
    load_cases,
)

SETS = pytest.mark.parametrize("path", [EVALUATION_SET, HOLDOUT_SET], ids=["tuning", "held_out"])


@SETS
def test_every_case_is_fully_and_validly_labelled(path: Path) -> None:
    scorecard, cases = load_cases(path)
    assert len({c.id for c in cases}) == len(cases) >= 10
    assert {c.transcript.language for c in cases} == {"en", "ko"}
    for case in cases:
        assert set(case.labels) == {q.id for q in scorecard.questions}, case.id
        # score_answers refuses a choice the question does not offer, or N/A where not allowed.
        score_answers(scorecard, [Answer(q, a) for q, a in case.labels.items()])


@SETS
def test_local_analyzer_agrees_with_the_hand_labels(path: Path) -> None:
    scorecard, cases = load_cases(path)
    rows = {r.question_id: r.result for r in agreement_with_labels(scorecard, cases)}
    overall = rows[OVERALL]
    assert overall.consultations == len(cases)
    assert overall.pairs == len(cases) * len(scorecard.questions)
    assert overall.weighted_kappa is not None and overall.weighted_kappa >= 0.6


@SETS
def test_every_case_labels_categories_and_customer_sentiment(path: Path) -> None:
    known = {c.id for c in load_categories("v1").categories}
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))["cases"]
    for case, loaded in zip(raw, load_cases(path)[1], strict=True):
        assert "categories" in case and "customer_sentiment" in case, case["id"]
        assert loaded.categories <= known, case["id"]
        assert loaded.customer_sentiment is not None
        assert set(loaded.customer_sentiment) <= {"negative", "neutral", "positive"}


def test_category_agreement_is_scikit_learns_per_category_and_micro_overall() -> None:
    _, cases = load_cases(EVALUATION_SET)
    # Two cases, hand-set: one labelled complaint that fires it, one labelled nothing.
    fired = next(c for c in cases if c.id == "en-02-rude-refund")
    quiet = next(c for c in cases if c.id == "en-01-card-lost-model")
    rows = {
        r.category_id: r
        for r in category_agreement(
            [replace(fired, categories=frozenset({"complaint", "legal_threat"})),
             replace(quiet, categories=frozenset())]
        )
    }  # fmt: skip
    assert (rows["complaint"].precision, rows["complaint"].recall) == (1.0, 1.0)
    # Labelled but never fired: recall 0, precision undefined.
    assert (rows["legal_threat"].precision, rows["legal_threat"].recall) == (None, 0.0)
    assert rows["long_hold"].f1 is None  # neither labelled nor fired
    # The quiet case fires nothing; the other fires complaint, escalation_request,
    # greeting_missing and unhappy_ending: 1 true positive of 4 fired and of 2 labelled.
    overall = rows["overall"]
    assert (overall.labelled, overall.fired) == (2, 4)
    assert (overall.precision, overall.recall, overall.f1) == (0.25, 0.5, 0.333)
