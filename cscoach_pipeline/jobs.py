"""The per-consultation job the sensor launches: every asset of the consultation group."""

from dagster import AssetSelection, define_asset_job, in_process_executor

from .partitions import consultation_partitions

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
