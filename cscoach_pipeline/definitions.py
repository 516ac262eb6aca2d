"""Everything Dagster loads, merged in one place."""

from dagster import Definitions

from .assets import consultation_assets
from .jobs import process_consultation_job
from .resources import build_resources
from .sensors import consultation_bucket_sensor, record_failed_consultation_run
from .settings import load_settings

defs = Definitions(
    assets=consultation_assets,
    jobs=[process_consultation_job],
    sensors=[consultation_bucket_sensor, record_failed_consultation_run],
    resources=build_resources(load_settings()),
)
