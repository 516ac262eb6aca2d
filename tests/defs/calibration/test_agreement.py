"""Proves the calibration figures: exact agreement, mean absolute error and quadratic-weighted
kappa against values computed by hand, pooled `overall` rows, reviewer-vs-reviewer pairs,
N/A handling, and kappa left undefined (not 0 or 1) where there is nothing to agree on."""

from __future__ import annotations

import pytest

from cscoach_pipeline.defs.calibration.agreement import (
    ANALYZER_VS_REVIEWER,
    OVERALL,
    REVIEWER_VS_REVIEWER,
    calibrate,
    calibration_summary,
    quadratic_kappa,
)

CHOICES = {"no": 0.0, "partly": 1.0, "yes": 2.0}


def review(cid: str, question: str, answer: str, reviewer: str = "qa-lee") -> dict:
    score = None if answer == "n/a" else CHOICES[answer]
    return {
        "consultation_id": cid, "scorecard_version": "inbound/v1", "reviewer": reviewer,
        "question_id": question, "answer": answer, "score": score, "max_score": 2.0,
    }  # fmt: skip


def machine(cid: str, question: str, answer: str, prompt: str = "v1") -> dict:
    score = None if answer == "n/a" else CHOICES[answer]
    return {
        "consultation_id": cid, "scorecard_version": "inbound/v1", "prompt_version": prompt,
        "question_id": question, "answer": answer, "score": score, "max_score": 2.0,
        "analyzer": "local-rules",
    }  # fmt: skip


# Machine 0,1,2,2,1 against human 0,2,2,1,1 (scores of 0-2). By hand, with weights (i-j)^2:
# observed disagreement 2 (two pairs one apart); marginals (1,2,2) on both sides give an
# expected disagreement of 28/5; kappa = 1 - 2 / 5.6 = 9/14.
MACHINE = ["no", "partly", "yes", "yes", "partly"]
HUMAN = ["no", "yes", "yes", "partly", "partly"]


def test_quadratic_kappa_matches_the_hand_computed_value() -> None:
    first = [CHOICES[a] / 2 for a in MACHINE]
    second = [CHOICES[a] / 2 for a in HUMAN]
    assert quadratic_kappa(first, second) == pytest.approx(9 / 14, abs=1e-4)


def test_kappa_is_undefined_when_both_raters_never_vary() -> None:
    assert quadratic_kappa([1.0, 1.0, 1.0], [1.0, 1.0, 1.0]) is None
    assert quadratic_kappa([], []) is None
    # One rater constant, the other not: defined, and no better than chance.
    assert quadratic_kappa([1.0, 1.0, 1.0], [0.0, 1.0, 0.5]) == 0.0


def test_per_question_and_overall_figures() -> None:
    reviews = [review(f"c{i}", "empathy", a) for i, a in enumerate(HUMAN)]
    answers = [machine(f"c{i}", "empathy", a) for i, a in enumerate(MACHINE)]
    # A second question where they always agree, on two of the consultations.
    reviews += [review("c0", "greeting", "yes"), review("c1", "greeting", "no")]
    answers += [machine("c0", "greeting", "yes"), machine("c1", "greeting", "no")]
    rows = {(r.question_id, r.comparison): r for r in calibrate(reviews, answers)}

    empathy = rows[("empathy", ANALYZER_VS_REVIEWER)].result
    assert (empathy.consultations, empathy.pairs) == (5, 5)
    assert empathy.exact_agreement == 0.6
    assert empathy.mean_absolute_error == 0.2  # two pairs half the scale apart, of five
    assert empathy.weighted_kappa == pytest.approx(9 / 14, abs=1e-4)

    greeting = rows[("greeting", ANALYZER_VS_REVIEWER)].result
    assert (greeting.exact_agreement, greeting.weighted_kappa) == (1.0, 1.0)

    overall = rows[(OVERALL, ANALYZER_VS_REVIEWER)].result
    assert (overall.consultations, overall.pairs) == (5, 7)
    assert overall.exact_agreement == round(5 / 7, 4)
    assert overall.weighted_kappa is not None and overall.weighted_kappa > 9 / 14
    # No two humans reviewed one consultation: no reviewer rows.
    assert not [r for r in rows.values() if r.comparison == REVIEWER_VS_REVIEWER]


def test_each_prompt_version_is_compared_on_its_own() -> None:
    reviews = [review("c1", "empathy", "yes"), review("c2", "empathy", "no")]
    answers = [
        machine("c1", "empathy", "yes", "v1"), machine("c2", "empathy", "yes", "v1"),
        machine("c1", "empathy", "yes", "v2"), machine("c2", "empathy", "no", "v2"),
    ]  # fmt: skip
    rows = calibrate(reviews, answers)
    exact = {
        r.prompt_version: r.result.exact_agreement
        for r in rows
        if r.question_id == OVERALL and r.comparison == ANALYZER_VS_REVIEWER
    }
    assert exact == {"v1": 0.5, "v2": 1.0}
    assert "| inbound/v1 | v2 | local-rules | 2 | 2 | 1.00 |" in calibration_summary(rows)


def test_not_applicable_counts_for_agreement_but_not_for_error_or_kappa() -> None:
    reviews = [review("c1", "hold", "n/a"), review("c2", "hold", "n/a"), review("c3", "hold", "no")]
    answers = [
        machine("c1", "hold", "n/a"),
        machine("c2", "hold", "no"),
        machine("c3", "hold", "no"),
    ]
    result = next(r.result for r in calibrate(reviews, answers) if r.question_id == "hold")
    assert (result.pairs, result.scored_pairs) == (3, 1)
    assert result.exact_agreement == round(2 / 3, 4)  # n/a = n/a, no = no; n/a != no
    assert result.mean_absolute_error == 0.0
    assert result.weighted_kappa is None  # one scored pair: nothing varies


def test_two_reviewers_of_one_consultation_are_compared_with_each_other() -> None:
    reviews = [
        review("c1", "empathy", "yes", "qa-kim"), review("c1", "empathy", "partly", "qa-lee"),
        review("c2", "empathy", "no", "qa-kim"), review("c2", "empathy", "no", "qa-lee"),
        review("c3", "empathy", "yes", "qa-kim"),  # one reviewer only: no pair
    ]  # fmt: skip
    rows = [r for r in calibrate(reviews, []) if r.comparison == REVIEWER_VS_REVIEWER]
    empathy = next(r for r in rows if r.question_id == "empathy")
    assert (empathy.analyzer, empathy.prompt_version) == ("human", "")
    assert (empathy.result.consultations, empathy.result.pairs) == (2, 2)
    assert empathy.result.exact_agreement == 0.5
    assert empathy.result.mean_absolute_error == 0.25
    # Reviews with no machine answer make no analyzer rows.
    assert all(r.comparison == REVIEWER_VS_REVIEWER for r in calibrate(reviews, []))
