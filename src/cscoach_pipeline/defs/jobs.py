"""The jobs that run consultations through the stages: every asset for a new consultation
(what the bucket sensor launches), or analysis and scoring only (a reanalysis). Where their
steps run is the deployment's executor (definitions.py)."""

from dagster import AssetSelection, define_asset_job

from cscoach_pipeline.defs.analysis.prompts import PROMPT_VERSION_TAG
from cscoach_pipeline.defs.partitions import CONSULTATION_GROUP, consultation_partitions

process_consultation_job = define_asset_job(
    name="process_consultation",
    selection=AssetSelection.groups(CONSULTATION_GROUP),
    partitions_def=consultation_partitions,
    description="Upload -> audio -> transcript -> redaction -> analysis -> quality metrics.",
)

reanalyze_consultations_job = define_asset_job(
    name="reanalyze_consultations",
    selection=AssetSelection.assets("consultation_analysis", "quality_metrics", "call_categories"),
    partitions_def=consultation_partitions,
    description=(
        "Re-analyse and re-score existing consultations (no speech-to-text); set the run tag "
        f"{PROMPT_VERSION_TAG}=<version> to use another prompt version. History is kept."
    ),
)
