"""How the call categories (categories/v1.yaml) and the offline turn sentiment agree with
hand labels on the evaluation sets: per category precision, recall and F1 (and micro-averaged
overall), and the customer's first- and last-turn sentiment label (accuracy, macro F1). The
categories and the Korean lexicon were written before these labels existed, then tuned
only on the first set's misses (never on the held-out set's), so the held-out figures are the
ones to quote.

    .venv/bin/python -m benchmarks.insight_agreement
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.results import save_results
from cscoach_pipeline.defs.scoring.categories import load_categories, match_categories
from cscoach_pipeline.defs.scoring.sentiment import segment_sentiments
from tests.support.evaluation import (
    EVALUATION_SET,
    HOLDOUT_SET,
    category_agreement,
    load_cases,
    sentiment_agreement,
)


def _report(path: Path) -> dict[str, Any]:
    cases = load_cases(path)[1]
    return {
        "consultations": len(cases),
        "languages": {
            lang: sum(c.transcript.language == lang for c in cases) for lang in ("en", "ko")
        },
        "category_agreement": {
            row.category_id: {
                "labelled": row.labelled,
                "fired": row.fired,
                "precision": row.precision,
                "recall": row.recall,
                "f1": row.f1,
            }
            for row in category_agreement(cases)
        },
        "customer_sentiment_labels": sentiment_agreement(cases),
    }


def _cost_per_consultation_ms(rounds: int = 20) -> float:
    """Sentiment of every turn plus all categories, per consultation (median of rounds)."""
    categories = load_categories("v1")
    cases = [c for path in (EVALUATION_SET, HOLDOUT_SET) for c in load_cases(path)[1]]
    segment_sentiments(cases[0].transcript)  # VADER reads its lexicon once per process
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for case in cases:
            match_categories(case.transcript, segment_sentiments(case.transcript), categories)
        timings.append((time.perf_counter() - started) / len(cases) * 1000)
    return round(statistics.median(timings), 2)


def main() -> None:
    results: dict[str, Any] = {
        "categories": "v1",
        "tuning": _report(EVALUATION_SET),
        "held_out": _report(HOLDOUT_SET),
        "sentiment_and_categories_ms_per_consultation": _cost_per_consultation_ms(),
    }
    save_results("insight_agreement", results)


if __name__ == "__main__":
    main()
