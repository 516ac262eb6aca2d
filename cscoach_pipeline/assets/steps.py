"""What every consultation asset shares: finding its source object and recording failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from dagster import AssetExecutionContext, Failure

from ..lib import tables
from ..lib.analyzers import AnalysisError
from ..lib.errors import ConsultationInputError
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


@contextmanager
def consultation_step(
    context: AssetExecutionContext, warehouse: WarehouseResource, stage: str
) -> Iterator[ConsultationSource]:
    """Runs one step; a bad-input or analysis error fails this partition with its reason in
    `consultation_status` and the UI, and never retries (the file will not get better)."""
    source = source_of(warehouse, context.partition_key)
    try:
        yield source
    except (ConsultationInputError, AnalysisError) as exc:
        reason = str(exc)
        warehouse.set_status(
            source.consultation_id,
            source.source_key,
            "failed",
            stage=stage,
            error=reason,
            run_id=context.run_id,
        )
        raise Failure(description=reason, metadata={"reason": reason, "stage": stage}) from None
    except Exception as exc:
        warehouse.set_status(
            source.consultation_id,
            source.source_key,
            "failed",
            stage=stage,
            error=f"{stage} failed unexpectedly: {type(exc).__name__}: {exc}",
            run_id=context.run_id,
        )
        raise
