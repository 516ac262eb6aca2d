"""How the pipeline recovers from outages and dead runs: retry limits and timings."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from cscoach_pipeline.defs.recovery.policy import RetryPolicy


class RecoveryResource(ConfigurableResource):
    max_attempts: int = Field(default=4, ge=1, description="runs per version for outages")
    backoff_base_s: float = Field(
        default=60.0, ge=0, description="wait after the first outage; x4 after each next one"
    )
    stale_after_s: float = Field(
        default=120.0,
        gt=0,
        description="a queued/processing consultation with no run for this long is recovered",
    )
    step_retries: int = Field(
        default=2, ge=0, description="in-run retries of a step during an outage"
    )
    step_retry_base_s: float = Field(
        default=5.0, ge=0, description="first in-run wait; x3 after each next one"
    )
    dead_run_grace_s: float = Field(
        default=20.0, ge=0, description="a started run is checked for a live worker after this"
    )

    @property
    def policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, backoff_base_s=self.backoff_base_s)
