"""Where benchmarks leave their figures: bench-results/<name>.json, also printed."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parents[1] / "bench-results"


def save_results(name: str, results: Any, *, echo: bool = True) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(results, indent=2))
    if echo:
        print(json.dumps(results, indent=2))
    return path


def summarize(values: list[float]) -> dict[str, float] | None:
    """Median, max and count of a measurement, rounded for the tables; None when empty."""
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 2),
        "max": round(max(values), 2),
        "n": len(values),
    }
