"""Everything Dagster loads, merged in one place."""

import logging
import os

from dagster import Definitions

from cscoach_pipeline.defs.analysis.analyzers import ConfigurationError
from cscoach_pipeline.defs.consultation_assets import consultation_assets
from cscoach_pipeline.defs.ingest.sensors import consultation_bucket_sensor
from cscoach_pipeline.defs.jobs import (
    process_consultation_job,
    reanalyze_consultations_job,
    requeue_consultations,
)
from cscoach_pipeline.defs.recovery.run_status import (
    record_cancelled_consultation_run,
    record_failed_consultation_run,
)
from cscoach_pipeline.defs.recovery.sensors import recover_stranded_consultations
from cscoach_pipeline.resources_build import build_resources
from cscoach_pipeline.settings import load_settings

resources = build_resources(load_settings())


def _check_gemini_at_startup() -> None:
    """An unknown model or a rejected key stops the code location from loading, with the
    reason shown in the UI, instead of failing every consultation one by one. A network
    problem here only warns: runs retry and the circuit breaker handles outages."""
    api_key = os.environ.get("GEMINI_API_KEY")
    if not api_key:
        return
    # The resource holds an EnvVar (resolved only inside runs): use the value directly here.
    analyzer = resources["analyzer"].model_copy(update={"gemini_api_key": api_key})
    try:
        analyzer.verify()
    except ConfigurationError:
        raise
    except Exception as exc:
        logging.getLogger(__name__).warning(f"could not verify the Gemini model at start-up: {exc}")


_check_gemini_at_startup()

defs = Definitions(
    assets=consultation_assets,
    jobs=[process_consultation_job, reanalyze_consultations_job, requeue_consultations],
    sensors=[
        consultation_bucket_sensor,
        record_failed_consultation_run,
        record_cancelled_consultation_run,
        recover_stranded_consultations,
    ],
    resources=resources,
)
