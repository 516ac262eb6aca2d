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
