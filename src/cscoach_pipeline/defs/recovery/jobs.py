"""The re-queue job a supervisor launches from the UI (the same as `python -m
cscoach_pipeline.requeue`)."""

from dagster import Config, OpExecutionContext, job, op
from pydantic import Field

from cscoach_pipeline.defs.warehouse.resources import WarehouseResource


class RequeueConfig(Config):
    """Which consultations to run again (empty `ids`: every one with these statuses)."""

    statuses: list[str] = Field(default_factory=lambda: ["failed"])
    failure_kinds: list[str] = Field(default_factory=list)
    ids: list[str] = Field(default_factory=list)
    dry_run: bool = False


@op(description="Flags the selected consultations for a fresh run by the recovery sensor.")
def requeue_selected(
    context: OpExecutionContext, config: RequeueConfig, warehouse: WarehouseResource
) -> None:
    selected = warehouse.statuses.mark_for_requeue(
        statuses=config.statuses,
        ids=config.ids,
        failure_kinds=config.failure_kinds,
        dry_run=config.dry_run,
    )
    context.log.info(
        f"{'would re-queue' if config.dry_run else 're-queued'} {len(selected)} consultations"
    )
    context.add_output_metadata({"consultations": len(selected), "ids": selected[:100]})


@job(
    description="Re-queue consultations (failed ones by default) from the Launchpad; the "
    "recovery sensor launches their runs with fresh run keys."
)
def requeue_consultations() -> None:
    requeue_selected()
