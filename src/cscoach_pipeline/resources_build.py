"""Resources, swapped by environment: every choice comes from `settings.Settings`."""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar

from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.speech.resources import SpeechToTextResource
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.settings import Settings

__all__ = [
    "AnalyzerResource",
    "BucketResource",
    "RecoveryResource",
    "SpeechToTextResource",
    "WarehouseResource",
    "build_resources",
]


def build_resources(settings: Settings) -> dict[str, Any]:
    # The key reaches the resource as an EnvVar, so Dagster never shows or stores its value.
    gemini_key = EnvVar("GEMINI_API_KEY") if os.environ.get("GEMINI_API_KEY") else None
    supabase_key = (
        EnvVar("SUPABASE_SERVICE_ROLE_KEY") if os.environ.get("SUPABASE_SERVICE_ROLE_KEY") else None
    )
    return {
        "bucket": BucketResource(
            url=settings.bucket_url,
            incoming_prefix=settings.incoming_prefix,
            artifacts_prefix=settings.artifacts_prefix,
            max_file_bytes=settings.max_file_bytes,
            max_chat_segments=settings.max_chat_segments,
            max_chat_chars=settings.max_chat_chars,
            key_pattern=settings.key_pattern,
            supabase_url=os.environ.get("SUPABASE_URL") or None,
            supabase_key=supabase_key,
        ),
        "warehouse": WarehouseResource(url=settings.warehouse_url),
        "recovery": RecoveryResource(
            max_attempts=settings.max_attempts,
            backoff_base_s=settings.retry_backoff_s,
            stale_after_s=settings.stale_after_s,
            step_retries=settings.step_retries,
            step_retry_base_s=settings.step_retry_base_s,
        ),
        "speech_to_text": SpeechToTextResource(
            engine=settings.stt_engine,
            model=settings.whisper_model,
            language=settings.whisper_language,
            agent_channel=settings.agent_channel,
        ),
        "analyzer": AnalyzerResource(
            gemini_api_key=gemini_key,
            gemini_model=settings.gemini_model,
            gemini_base_url=os.environ.get("GOOGLE_GEMINI_BASE_URL") or None,
            prompt_version=settings.prompt_version,
            requests_per_minute=settings.gemini_rpm,
            max_concurrent=settings.gemini_max_concurrency,
            timeout_s=settings.gemini_timeout_s,
            fallback=settings.gemini_fallback,
            prices_file=settings.gemini_prices or None,
        ),
    }
