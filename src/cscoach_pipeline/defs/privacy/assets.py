"""The privacy stage's asset: the PII-redacted transcript, the only one downstream reads."""

import time
from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.partitions import CONSULTATION_ASSET
from cscoach_pipeline.defs.privacy.redaction import (
    TRANSCRIPT_ARTIFACT,
    preview,
    redact_transcript,
    segment_rows,
    transcript_details,
)
from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.speech.assets import raw_transcript
from cscoach_pipeline.defs.speech.raw_transcript import RAW_TRANSCRIPT_ARTIFACT
from cscoach_pipeline.defs.speech.transcript import Transcript
from cscoach_pipeline.defs.steps import (
    ConsultationSource,
    materialize_consultations,
    record_status,
)
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource

NO_SPEECH = "no speech detected: the recording holds only silence or noise"


@asset(
    **CONSULTATION_ASSET,
    deps=[raw_transcript],
    kinds={"sql"},
    code_version="1",
    description="PII-redacted transcript segments: the only transcript anything downstream reads.",
)
def transcript(
    context: AssetExecutionContext,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    recovery: RecoveryResource,
) -> MaterializeResult:
    def work(source: ConsultationSource) -> dict[str, Any]:
        started = time.perf_counter()
        artifacts = bucket.artifacts(source.consultation_id)
        raw = Transcript.model_validate(artifacts.read_json(RAW_TRANSCRIPT_ARTIFACT))
        clean, redactions = redact_transcript(raw)
        artifacts.write_json(TRANSCRIPT_ARTIFACT, clean.model_dump(mode="json"))
        warehouse.results.save_segments(source.consultation_id, segment_rows(clean))
        warehouse.consultations.update(source.consultation_id, **transcript_details(clean))
        if not clean.segments:
            record_status(context, warehouse, source, "no_speech", "transcript", error=NO_SPEECH)
        return {
            "segments": len(clean.segments),
            "language": clean.language or "unknown",
            "duration_s": clean.duration_s if clean.duration_s is not None else 0.0,
            "redactions": MetadataValue.json(redactions),
            "elapsed_s": round(time.perf_counter() - started, 3),
            "preview": MetadataValue.md(preview(clean)),
        }

    return materialize_consultations(context, warehouse, "transcript", work)
