"""Everything Dagster loads, merged in one place from the stage folders under `defs/`.

The settings are read and validated once, when the code location loads; each stage builds its
assets, sensors and resources from them. Definitions are built lazily (`@dg.definitions`), so
importing this module costs nothing, and the analyzer's start-up check runs only in the code
server, not again in every run worker that reloads the definitions.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import dagster as dg
import yaml

# Which load this is (the code server's, or a run worker's rebuild) has no public accessor.
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)

from cscoach_pipeline.defs.alerting import definitions as alerting
from cscoach_pipeline.defs.analysis import definitions as analysis
from cscoach_pipeline.defs.analysis.analyzers import ConfigurationError
from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from cscoach_pipeline.defs.calibration import definitions as calibration
from cscoach_pipeline.defs.ingest import definitions as ingest
from cscoach_pipeline.defs.jobs import process_consultation_job, reanalyze_consultations_job
from cscoach_pipeline.defs.privacy import definitions as privacy
from cscoach_pipeline.defs.recovery import definitions as recovery
from cscoach_pipeline.defs.retention import definitions as retention
from cscoach_pipeline.defs.speech import definitions as speech
from cscoach_pipeline.defs.supervision import definitions as supervision
from cscoach_pipeline.defs.warehouse import definitions as warehouse
from cscoach_pipeline.settings import PROJECT_ROOT, Settings, load_settings

# In pipeline order; each has `defs(settings)` and `resources(settings)`.
STAGES = (
    ingest,
    speech,
    privacy,
    analysis,
    warehouse,
    calibration,
    supervision,
    alerting,
    recovery,
    retention,
)


def build_resources(settings: Settings) -> dict[str, Any]:
    built: dict[str, Any] = {}
    for stage in STAGES:
        built |= stage.resources(settings)
    return built


def build_executor(settings: Settings) -> dg.ExecutorDefinition:
    """In-process by default: steps share one process, so the Whisper model is loaded once
    per run. With Celery each step is a task on the queue its op tag names (stt, analysis,
    dagster for light steps), acknowledged only when done, so a step whose worker dies is
    delivered again to another worker."""
    if settings.executor == "in_process":
        return dg.in_process_executor
    from dagster_celery import celery_executor

    # The same settings the workers start with (`make worker`), read from one file.
    config = yaml.safe_load(CELERY_CONFIG.read_text())["execution"]["config"]
    return celery_executor.configured(config)


CELERY_CONFIG = PROJECT_ROOT / "deploy" / "celery.yaml"


def build_defs(settings: Settings, resources: Mapping[str, Any] | None = None) -> dg.Definitions:
    """The whole pipeline for these settings; `resources` replaces built ones by key (tests
    point the analyzer at a fake server, for instance)."""
    return dg.Definitions.merge(
        *(stage.defs(settings) for stage in STAGES),
        dg.Definitions(
            jobs=[process_consultation_job, reanalyze_consultations_job],
            resources={**build_resources(settings), **(resources or {})},
            executor=build_executor(settings),
        ),
    )


def check_analyzer(settings: Settings) -> None:
    """An unknown model or a rejected key stops the code location from loading, with the
    reason shown in the UI, instead of failing every consultation one by one. A network
    problem here only warns: runs retry and the circuit breaker handles outages."""
    # The resource holds an EnvVar (resolved only inside runs): use the value directly here.
    key = settings.gemini_api_key.get_secret_value() if settings.gemini_api_key else None
    configured = analysis.resources(settings)["analyzer"]
    fields = {name: getattr(configured, name) for name in AnalyzerResource.model_fields}
    try:
        AnalyzerResource(**{**fields, "api_key": key}).verify()
    except ConfigurationError:
        raise
    except Exception as exc:
        logging.getLogger(__name__).warning(f"could not verify the analyzer at start-up: {exc}")


@dg.definitions
def defs() -> dg.Definitions:
    settings = load_settings()
    if DefinitionsLoadContext.get().load_type == DefinitionsLoadType.INITIALIZATION:
        check_analyzer(settings)
    return build_defs(settings)
