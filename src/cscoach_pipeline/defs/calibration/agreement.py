"""How well an analyzer's scorecard answers agree with human reviewers', and reviewers with
each other: the figures a QA lead reads before switching to a new scorecard or prompt version.

Per scorecard version, prompt version, analyzer and question (and pooled over questions as
`overall`): reviewed consultations, answer pairs, exact agreement (N/A is an answer like any
other), mean absolute error and quadratic-weighted Cohen's kappa (scikit-learn's). Error and
kappa use the pairs where both gave a scored answer, each score as a fraction of the question's
maximum, so questions of different scales pool into one figure.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

from sklearn.metrics import cohen_kappa_score

OVERALL = "overall"
ANALYZER_VS_REVIEWER = "analyzer_vs_reviewer"
REVIEWER_VS_REVIEWER = "reviewer_vs_reviewer"
# The analyzer and prompt columns of reviewer-vs-reviewer rows.
HUMAN = "human"


@dataclass(frozen=True)
class Rating:
    """One rater's answer to one question: a fraction of the question's maximum, or None
    for N/A."""

    answer: str
    fraction: float | None


@dataclass(frozen=True)
class Pair:
    consultation_id: str
    question_id: str
    first: Rating
    second: Rating


@dataclass(frozen=True)
class Agreement:
    consultations: int
    pairs: int
    exact_agreement: float | None
    mean_absolute_error: float | None
    weighted_kappa: float | None
    scored_pairs: int


def rating(answer: str, score: float | None, max_score: float) -> Rating:
    fraction = None if score is None or not max_score else round(score / max_score, 6)
    return Rating(answer.strip().lower(), fraction)


def quadratic_kappa(first: Sequence[float], second: Sequence[float]) -> float | None:
    """Quadratic-weighted Cohen's kappa of two raters' ordinal scores; None where it is
    undefined (both raters gave one and the same value throughout, or no pairs)."""
    if not first:
        return None
    labels = sorted(set(first) | set(second))
    if len(labels) < 2:
        return None
    # Ordinal categories by rank: scikit-learn takes class labels, not continuous values.
    rank = {value: index for index, value in enumerate(labels)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        kappa = float(
            cohen_kappa_score(
                [rank[v] for v in first],
                [rank[v] for v in second],
                labels=list(range(len(labels))),
                weights="quadratic",
            )
        )
    return None if kappa != kappa else round(kappa, 4)  # NaN: no expected disagreement


def agreement(pairs: Sequence[Pair]) -> Agreement:
    scored = [p for p in pairs if p.first.fraction is not None and p.second.fraction is not None]
    first = [p.first.fraction for p in scored if p.first.fraction is not None]
    second = [p.second.fraction for p in scored if p.second.fraction is not None]
    exact = sum(p.first.answer == p.second.answer for p in pairs)
    return Agreement(
        consultations=len({p.consultation_id for p in pairs}),
        pairs=len(pairs),
        exact_agreement=round(exact / len(pairs), 4) if pairs else None,
        mean_absolute_error=(
            round(sum(abs(a - b) for a, b in zip(first, second, strict=True)) / len(first), 4)
            if first
            else None
        ),
        weighted_kappa=quadratic_kappa(first, second),
        scored_pairs=len(scored),
    )


@dataclass(frozen=True)
class CalibrationRow:
    scorecard_version: str
    prompt_version: str
    analyzer: str
    question_id: str
    comparison: str
    result: Agreement

    def row(self) -> dict[str, Any]:
        return {
            "scorecard_version": self.scorecard_version,
            "prompt_version": self.prompt_version,
            "analyzer": self.analyzer,
            "question_id": self.question_id,
            "comparison": self.comparison,
            "consultations": self.result.consultations,
            "pairs": self.result.pairs,
            "scored_pairs": self.result.scored_pairs,
            "exact_agreement": self.result.exact_agreement,
            "mean_absolute_error": self.result.mean_absolute_error,
            "weighted_kappa": self.result.weighted_kappa,
        }


def _grouped(
    key_pairs: Iterable[tuple[tuple[str, str, str, str], Pair]],
) -> dict[tuple[str, str, str, str], list[Pair]]:
    groups: dict[tuple[str, str, str, str], list[Pair]] = defaultdict(list)
    for key, pair in key_pairs:
        groups[key].append(pair)
        groups[(*key[:3], OVERALL)].append(pair)
    return groups


def calibrate(
    reviews: Iterable[Mapping[str, Any]], machine_answers: Iterable[Mapping[str, Any]]
) -> list[CalibrationRow]:
    """Calibration rows from `qa_reviews` rows and `scorecard_answers` rows joined with
    their analyzer (`analyses.analyzer`). Every human answer pairs with every prompt
    version's answer to the same question of the same consultation and scorecard."""
    human: dict[tuple[str, str, str], list[tuple[str, Rating]]] = defaultdict(list)
    for r in reviews:
        key = (r["consultation_id"], r["scorecard_version"], r["question_id"])
        human[key].append((r["reviewer"], rating(r["answer"], r["score"], r["max_score"])))

    machine_pairs: list[tuple[tuple[str, str, str, str], Pair]] = []
    for m in machine_answers:
        key = (m["consultation_id"], m["scorecard_version"], m["question_id"])
        ours = rating(m["answer"], m["score"], m["max_score"])
        for _reviewer, theirs in human.get(key, []):
            group = (m["scorecard_version"], m["prompt_version"], m["analyzer"], m["question_id"])
            machine_pairs.append((group, Pair(key[0], key[2], ours, theirs)))

    reviewer_pairs: list[tuple[tuple[str, str, str, str], Pair]] = []
    for (consultation_id, scorecard_version, question_id), ratings in human.items():
        for (_, a), (_, b) in combinations(sorted(ratings, key=lambda x: x[0]), 2):
            group = (scorecard_version, "", HUMAN, question_id)
            reviewer_pairs.append((group, Pair(consultation_id, question_id, a, b)))

    rows = [
        CalibrationRow(*key, comparison, agreement(pairs))
        for comparison, keyed in (
            (ANALYZER_VS_REVIEWER, machine_pairs),
            (REVIEWER_VS_REVIEWER, reviewer_pairs),
        )
        for key, pairs in sorted(_grouped(keyed).items())
    ]
    return rows


def calibration_summary(rows: Sequence[CalibrationRow]) -> str:
    """The overall figures as a Markdown table, for the asset's metadata."""
    overall = [r for r in rows if r.question_id == OVERALL]
    if not overall:
        return "No reviewed consultation has scorecard answers yet."
    lines = [
        "| scorecard | prompt | analyzer | consultations | pairs | exact | MAE | kappa |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in overall:
        a = r.result
        lines.append(
            f"| {r.scorecard_version} | {r.prompt_version or '-'} | {r.analyzer} | "
            f"{a.consultations} | {a.pairs} | {_shown(a.exact_agreement)} | "
            f"{_shown(a.mean_absolute_error)} | {_shown(a.weighted_kappa)} |"
        )
    return "\n".join(lines)


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
