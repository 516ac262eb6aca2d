"""The jobs that run consultations through the stages: every asset for a new consultation
(what the bucket sensor launches), or analysis and scoring only (a reanalysis)."""

from dagster import AssetSelection, define_asset_job, in_process_executor

from cscoach_pipeline.defs.analysis.prompts import PROMPT_VERSION_TAG
from cscoach_pipeline.defs.partitions import CONSULTATION_GROUP, consultation_partitions

process_consultation_job = define_asset_job(
    name="process_consultation",
    selection=AssetSelection.groups(CONSULTATION_GROUP),
    partitions_def=consultation_partitions,
    # Steps share one process: no per-step interpreter start-up, and the Whisper model is
    # loaded once per run instead of once per step.
    executor_def=in_process_executor,
    description="Upload -> audio -> transcript -> redaction -> analysis -> quality metrics.",
)

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
