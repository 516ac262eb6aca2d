"""Analysis (and scoring, in the same step): the coaching analysis and quality metrics, and
the reanalysis job QA leads backfill with another prompt version."""

from __future__ import annotations

from typing import Any

import dagster as dg

from cscoach_pipeline.defs.analysis.assets import build_analysis_assets
from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from cscoach_pipeline.settings import Settings


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[
            build_analysis_assets(
                settings.prompt_version,
                settings.analyzer_name,
                settings.scorecard,
                settings.categories,
            )
        ]
    )


def resources(settings: Settings) -> dict[str, Any]:
    return {
        "analyzer": AnalyzerResource(
            analyzer=settings.analyzer_name,
            model=settings.gemini_model,
            # The key reaches the resource as an EnvVar: Dagster never shows or stores it.
            api_key=dg.EnvVar("GEMINI_API_KEY") if settings.gemini_api_key else None,
            base_url=settings.gemini_base_url,
            prompt_version=settings.prompt_version,
            scorecard=settings.scorecard,
            categories=settings.categories,
            requests_per_minute=settings.gemini_rpm,
            max_concurrent=settings.gemini_max_concurrency,
            timeout_s=settings.gemini_timeout_s,
            fallback=settings.gemini_fallback,
            breaker_failures=settings.gemini_breaker_failures,
            breaker_reset_s=settings.gemini_breaker_reset_s,
            breaker_successes=settings.gemini_breaker_successes,
            # A Redis URL may hold a password: it reaches the resource as an EnvVar too.
            shared_limits_url=dg.EnvVar("CSCOACH_REDIS_URL") if settings.redis_url else None,
            prices_file=settings.gemini_prices,
        )
    }
