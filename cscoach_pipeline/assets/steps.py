"""What every consultation asset shares: finding its source object and recording failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import NoReturn

from dagster import AssetExecutionContext, Failure, RetryRequested

from ..lib import tables
from ..lib.analyzers import AnalysisError
from ..lib.errors import ConsultationInputError
from ..resources.storage import ObjectNotFound, StorageError
from ..resources.warehouse import WarehouseResource


@dataclass(frozen=True)
class ConsultationSource:
    consultation_id: str
    source_key: str
    version: int


def source_of(warehouse: WarehouseResource, consultation_id: str) -> ConsultationSource:
    rows = warehouse.fetch_rows(tables.bucket_objects, consultation_id=consultation_id)
    active = [r for r in rows if r["state"] != "rejected"] or rows
    if not active:
        raise Failure(
            description=f"consultation {consultation_id!r} is not in the bucket inventory; "
            "partitions are added by the bucket sensor"
        )
    row = max(active, key=lambda r: r["updated_at"])
    return ConsultationSource(consultation_id, row["source_key"], row["version"])


# Step retries when the bucket is unavailable: waits of 10 s, 30 s, 90 s.
STORAGE_RETRIES = 3
STORAGE_RETRY_BASE_S = 10.0


def _record_failure(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    source: ConsultationSource,
    stage: str,
    reason: str,
) -> None:
    warehouse.set_status(
        source.consultation_id,
        source.source_key,
        "failed",
        stage=stage,
        error=reason,
        run_id=context.run_id,
    )


def _fail(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    source: ConsultationSource,
    stage: str,
    reason: str,
) -> NoReturn:
    _record_failure(context, warehouse, source, stage, reason)
    raise Failure(description=reason, metadata={"reason": reason, "stage": stage}) from None


@contextmanager
def consultation_step(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    stage: str,
    partition_key: str | None = None,
) -> Iterator[ConsultationSource]:
    """Runs one step; a bad-input or analysis error fails this partition with its reason in
    `consultation_status` and the UI, and never retries (the file will not get better); a
    bucket outage retries the step with backoff before failing."""
    # A multi-partition run (backfill) names the consultation; a single one has it in context.
    source = source_of(warehouse, partition_key or context.partition_key)
    try:
        yield source
    except ObjectNotFound as exc:
        _fail(context, warehouse, source, stage, f"a file this step needs is missing: {exc}")
    except StorageError as exc:
        # The store is down or throttling: not the file's fault, so retry the step with
        # backoff; only when the outage persists does the consultation fail, saying so.
        if context.retry_number < STORAGE_RETRIES:
            context.log.warning(f"bucket unavailable ({exc}); retrying this step")
            raise RetryRequested(
                max_retries=STORAGE_RETRIES,
                seconds_to_wait=STORAGE_RETRY_BASE_S * 3**context.retry_number,
            ) from exc
        _fail(
            context, warehouse, source, stage,
            f"the bucket was unavailable after {STORAGE_RETRIES + 1} attempts: {exc}",
        )  # fmt: skip
    except (ConsultationInputError, AnalysisError) as exc:
        _fail(context, warehouse, source, stage, str(exc))
    except Exception as exc:
        reason = f"{stage} failed unexpectedly: {type(exc).__name__}: {exc}"
        _record_failure(context, warehouse, source, stage, reason)
        raise
