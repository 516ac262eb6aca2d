"""Calibration: QA reviewers' answers from review files, and how the analyzers agree with them."""

from __future__ import annotations

from typing import Any

import dagster as dg

from cscoach_pipeline.defs.calibration.assets import qa_reviews, scorecard_calibration
from cscoach_pipeline.defs.calibration.resources import QaReviewsResource
from cscoach_pipeline.defs.calibration.sensors import build_review_sensor, load_qa_reviews_job
from cscoach_pipeline.settings import Settings


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[qa_reviews, scorecard_calibration],
        jobs=[load_qa_reviews_job],
        sensors=[build_review_sensor(settings.reviews_interval_s)],
    )


def resources(settings: Settings) -> dict[str, Any]:
    return {
        "reviews": QaReviewsResource(
            prefix=settings.reviews_prefix, default_scorecard=settings.scorecard
        )
    }
