"""The per-consultation job the sensor launches: every asset of the consultation group."""

from dagster import (
    AssetSelection,
    Config,
    OpExecutionContext,
    define_asset_job,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource

CONSULTATION_GROUP = "consultation"

process_consultation_job = define_asset_job(
    name="process_consultation",
    selection=AssetSelection.groups(CONSULTATION_GROUP),
    partitions_def=consultation_partitions,
    # Steps share one process: no per-step interpreter start-up, and the Whisper model is
    # loaded once per run instead of once per step.
    executor_def=in_process_executor,
    description="Upload -> audio -> transcript -> redaction -> analysis -> quality metrics.",
)

# Run tag a QA lead sets (UI backfill dialog "Add tags", or `--tags` on the CLI) to rescore
# with another prompt version than the configured one.
PROMPT_VERSION_TAG = "cscoach/prompt_version"

reanalyze_consultations_job = define_asset_job(
    name="reanalyze_consultations",
    selection=AssetSelection.assets("consultation_analysis", "quality_metrics"),
    partitions_def=consultation_partitions,
    executor_def=in_process_executor,
    description=(
        "Re-analyse and re-score existing consultations (no speech-to-text); set the run tag "
        f"{PROMPT_VERSION_TAG}=<version> to use another prompt version. History is kept."
    ),
)


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
    selected = warehouse.mark_for_requeue(
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
