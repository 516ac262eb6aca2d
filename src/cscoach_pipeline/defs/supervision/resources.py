"""The supervision stage's configuration, as its assets and sensor receive it."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field


class SupervisionResource(ConfigurableResource):
    timezone: str = Field(default="UTC", description="days are local days of this zone")
    review_queue_size: int = Field(default=20, description="consultations per day")
    reports_prefix: str = Field(default="reports/", description="where reports go in the bucket")
