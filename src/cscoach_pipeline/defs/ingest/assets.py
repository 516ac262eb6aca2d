"""The ingest stage's asset: the original object, as the bucket sensor found it."""

import time
from collections.abc import Iterator
from typing import Any

from dagster import AssetCheckEvaluation, AssetExecutionContext, MaterializeResult, MetadataValue

from cscoach_pipeline.defs.ingest.partition_keys import display_key
from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.ingest.upload import inspect_upload
from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.steps import (
    ConsultationSource,
    input_reading_asset,
    materialize_consultations,
    record_status,
    tag_run_with_people,
)
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource


@input_reading_asset(
    "consultation_upload",
    deps=[],
    kinds={"file"},
    description="The original object in the bucket: key, size, sha256, type, upload time.",
)
def consultation_upload(
    context: AssetExecutionContext,
    bucket: BucketResource,
    warehouse: WarehouseResource,
    recovery: RecoveryResource,
) -> Iterator[MaterializeResult | AssetCheckEvaluation]:
    def work(source: ConsultationSource) -> dict[str, Any]:
        started = time.perf_counter()
        record_status(context, warehouse, source, "processing", "consultation_upload")
        store = bucket.store()
        upload = inspect_upload(
            store,
            source.source_key,
            max_file_bytes=bucket.max_file_bytes,
            key_pattern=bucket.key_pattern,
        )
        for warning in upload.warnings:
            context.log.warning(warning)
        tag_run_with_people(context, upload.consultation_context)
        artifacts_prefix = bucket.artifacts(source.consultation_id).prefix
        warehouse.consultations.save(
            upload.row(source.consultation_id, source.shown_key, source.version, artifacts_prefix)
        )
        return {
            **upload.metadata(source.shown_key, source.version),
            "location": MetadataValue.path(display_key(store.locate(upload.obj.key))),
            "elapsed_s": round(time.perf_counter() - started, 3),
        }

    yield from materialize_consultations(context, warehouse, "consultation_upload", work)
