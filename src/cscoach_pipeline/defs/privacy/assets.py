"""The privacy stage's asset: the PII-redacted transcript, the only one downstream reads, with
its checks per consultation (recognition confidence, PII left after redaction)."""

import time
from collections.abc import Iterator

from dagster import (
    AssetCheckEvaluation,
    AssetExecutionContext,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    multi_asset,
)

from cscoach_pipeline.defs.checks import consultation_checks, guarded_check
from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.partitions import CONSULTATION_GROUP, consultation_partitions
from cscoach_pipeline.defs.privacy.checks import NO_PII_LEFT, no_pii_left
from cscoach_pipeline.defs.privacy.redaction import (
    TRANSCRIPT_ARTIFACT,
    preview,
    redact_transcript,
    segment_rows,
    transcript_details,
)
from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.speech.assets import raw_transcript
from cscoach_pipeline.defs.speech.quality import TRANSCRIPT_CONFIDENCE, transcript_confidence
from cscoach_pipeline.defs.speech.raw_transcript import RAW_TRANSCRIPT_ARTIFACT
from cscoach_pipeline.defs.speech.transcript import Transcript
from cscoach_pipeline.defs.steps import (
    ConsultationSource,
    StepResult,
    materialize_consultations,
    record_status,
)
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource

NO_SPEECH = "no speech detected: the recording holds only silence or noise"


@multi_asset(
    name="transcript",
    specs=[
        AssetSpec(
            "transcript",
            deps=[raw_transcript],
            kinds={"sql"},
            code_version="1",
            group_name=CONSULTATION_GROUP,
            description="PII-redacted transcript segments: the only transcript anything "
            "downstream reads.",
        )
    ],
    partitions_def=consultation_partitions,
    check_specs=consultation_checks(
        "transcript",
        [
            (TRANSCRIPT_CONFIDENCE, "the recogniser's confidence: low means listen first"),
            (NO_PII_LEFT, "redaction left no PII the rules or libphonenumber can still find"),
        ],
    ),
    # A multi-asset whose checks are logged per consultation (a batch run holds several),
    # not returned as outputs: with can_subset they are optional outputs.
    can_subset=True,
)
def transcript(
    context: AssetExecutionContext,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    recovery: RecoveryResource,
) -> Iterator[MaterializeResult | AssetCheckEvaluation]:
    def work(source: ConsultationSource) -> StepResult:
        started = time.perf_counter()
        artifacts = bucket.artifacts(source.consultation_id)
        raw = Transcript.model_validate(artifacts.read_json(RAW_TRANSCRIPT_ARTIFACT))
        clean, redactions = redact_transcript(raw)
        artifacts.write_json(TRANSCRIPT_ARTIFACT, clean.model_dump(mode="json"))
        warehouse.results.save_segments(source.consultation_id, segment_rows(clean))
        warehouse.consultations.update(source.consultation_id, **transcript_details(clean))
        if not clean.segments:
            record_status(context, warehouse, source, "no_speech", "transcript", error=NO_SPEECH)
        metadata = {
            "segments": len(clean.segments),
            "language": clean.language or "unknown",
            "duration_s": clean.duration_s if clean.duration_s is not None else 0.0,
            "redactions": MetadataValue.json(redactions),
            "elapsed_s": round(time.perf_counter() - started, 3),
            "preview": MetadataValue.md(preview(clean)),
        }
        checks = [
            guarded_check(TRANSCRIPT_CONFIDENCE, lambda: transcript_confidence(clean)),
            guarded_check(NO_PII_LEFT, lambda: no_pii_left(clean.segments)),
        ]
        return StepResult(metadata, checks)

    # Yielded, not returned: a multi-asset's returned value is read as one per output.
    yield from materialize_consultations(context, warehouse, "transcript", work)
