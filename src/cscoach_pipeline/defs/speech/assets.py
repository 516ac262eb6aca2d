"""The speech stage's assets: audio extracted from the original, then its raw transcript."""

import time
from collections.abc import Iterator
from typing import Any

from dagster import AssetCheckEvaluation, AssetExecutionContext, MaterializeResult, MetadataValue

from cscoach_pipeline.defs.ingest.assets import consultation_upload
from cscoach_pipeline.defs.ingest.file_types import FileType
from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.partitions import STT_QUEUE
from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.speech.audio import AUDIO_ARTIFACT, prepare_audio
from cscoach_pipeline.defs.speech.raw_transcript import (
    RAW_TRANSCRIPT_ARTIFACT,
    raw_transcript_of,
    transcript_metadata,
)
from cscoach_pipeline.defs.speech.resources import MediaResource, SpeechToTextResource
from cscoach_pipeline.defs.steps import (
    ConsultationSource,
    input_reading_asset,
    materialize_consultations,
)
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource


@input_reading_asset(
    "consultation_audio",
    deps=[consultation_upload],
    kinds={"ffmpeg"},
    op_tags=STT_QUEUE,
    description="16 kHz PCM audio; two-channel calls keep agent and customer channels apart.",
)
def consultation_audio(
    context: AssetExecutionContext,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    media: MediaResource,
    recovery: RecoveryResource,
) -> Iterator[MaterializeResult | AssetCheckEvaluation]:
    def work(source: ConsultationSource) -> dict[str, Any]:
        row = warehouse.consultations.get(source.consultation_id)
        if row["file_type"] == FileType.TEXT:
            return {"skipped": "text consultation: no audio to extract"}
        started = time.perf_counter()
        artifacts = bucket.artifacts(source.consultation_id)
        audio = prepare_audio(
            bucket.store(),
            source.source_key,
            row["extension"],
            artifacts,
            ffmpeg_timeout_s=media.ffmpeg_timeout_s,
        )
        warehouse.consultations.update(source.consultation_id, **audio.consultation_update())
        return {
            **audio.metadata(),
            "artifact": MetadataValue.path(artifacts.locate(AUDIO_ARTIFACT)),
            "elapsed_s": round(time.perf_counter() - started, 3),
        }

    yield from materialize_consultations(context, warehouse, "consultation_audio", work)


@input_reading_asset(
    "raw_transcript",
    deps=[consultation_audio],
    kinds={"whisper"},
    op_tags=STT_QUEUE,
    description="Unredacted transcript (Whisper or imported text), kept only in the bucket's "
    "private artifacts area.",
)
def raw_transcript(
    context: AssetExecutionContext,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    speech_to_text: SpeechToTextResource,
    recovery: RecoveryResource,
) -> Iterator[MaterializeResult | AssetCheckEvaluation]:
    def work(source: ConsultationSource) -> dict[str, Any]:
        consultation = warehouse.consultations.get(source.consultation_id)
        started = time.perf_counter()
        model_was_loaded = speech_to_text.is_loaded()
        artifacts = bucket.artifacts(source.consultation_id)
        result = raw_transcript_of(
            consultation,
            bucket.store(),
            source.source_key,
            artifacts,
            speech_to_text,
            max_chat_segments=bucket.max_chat_segments,
            max_chat_chars=bucket.max_chat_chars,
        )
        elapsed = time.perf_counter() - started
        artifacts.write_json(RAW_TRANSCRIPT_ARTIFACT, result.model_dump(mode="json"))
        return transcript_metadata(result, elapsed, speech_to_text, model_was_loaded)

    yield from materialize_consultations(context, warehouse, "raw_transcript", work)
