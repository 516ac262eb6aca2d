"""How the local analyzer's scorecard answers agree with hand labels, per question and
overall, on the evaluation set (the phrase book was tuned on it) and on the held-out set
(it never was): exact agreement, mean absolute error, quadratic-weighted kappa.

    .venv/bin/python -m benchmarks.scorecard_agreement
"""

from __future__ import annotations

from typing import Any

from benchmarks.results import save_results
from cscoach_pipeline.defs.analysis.local_rules import DEFAULT_PHRASE_BOOK
from tests.support.evaluation import (
    EVALUATION_SET,
    HOLDOUT_SET,
    agreement_with_labels,
    load_cases,
)


def main() -> None:
    results: dict[str, Any] = {"analyzer": f"local-rules-{DEFAULT_PHRASE_BOOK}"}
    for name, path in (("tuning", EVALUATION_SET), ("held_out", HOLDOUT_SET)):
        scorecard, cases = load_cases(path)
        rows = agreement_with_labels(scorecard, cases)
        results[name] = {
            "scorecard": scorecard.label,
            "consultations": len(cases),
            "languages": sorted({c.transcript.language or "" for c in cases}),
            "questions": {
                r.question_id: {
                    "pairs": r.result.pairs,
                    "exact": r.result.exact_agreement,
                    "mae": r.result.mean_absolute_error,
                    "kappa": r.result.weighted_kappa,
                }
                for r in rows
            },
        }
    save_results("scorecard_agreement", results)


if __name__ == "__main__":
    main()
