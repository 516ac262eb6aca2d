"""Ingest: the bucket, its storage backends, the sensor that admits files, the upload asset."""

from __future__ import annotations

from typing import Any

import dagster as dg

from cscoach_pipeline.defs.ingest.assets import consultation_upload
from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.ingest.sensors import build_bucket_sensor
from cscoach_pipeline.defs.ingest.storage import S3Options, SupabaseOptions
from cscoach_pipeline.defs.speech.sizing import transcriptions_at_once
from cscoach_pipeline.settings import Settings


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        assets=[consultation_upload],
        sensors=[build_bucket_sensor(settings.sensor_interval_s)],
    )


def resources(settings: Settings) -> dict[str, Any]:
    return {
        "bucket": BucketResource(
            url=settings.bucket_url,
            incoming_prefix=settings.incoming_prefix,
            artifacts_prefix=settings.artifacts_prefix,
            max_file_bytes=settings.max_file_bytes,
            max_chat_segments=settings.max_chat_segments,
            max_chat_chars=settings.max_chat_chars,
            key_pattern=settings.key_pattern,
            s3=S3Options(
                endpoint_url=settings.s3_endpoint_url,
                addressing_style=settings.s3_addressing_style,
            ),
            # The key reaches the resource as an EnvVar: Dagster never shows or stores it.
            supabase=SupabaseOptions(
                url=settings.supabase_url,
                key=dg.EnvVar("SUPABASE_SERVICE_ROLE_KEY") if settings.supabase_key else None,
            ),
            settle_seconds=settings.settle_seconds,
            settle_recheck_s=settings.settle_recheck_s,
            text_batch_size=settings.text_batch_size,
            audio_batch_size=settings.audio_batch_size,
            transcriptions_at_once=transcriptions_at_once(settings.executor, settings.dagster_home),
            max_runs_per_tick=settings.max_runs_per_tick,
            tick_budget_s=settings.sensor_tick_budget_s,
            list_budget_s=settings.sensor_list_budget_s,
        )
    }
