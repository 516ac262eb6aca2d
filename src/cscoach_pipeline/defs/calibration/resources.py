"""Where reviewers' files arrive and which scorecard a row without one answers."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field


class QaReviewsResource(ConfigurableResource):
    prefix: str = Field(default="reviews/", description="review files' folder in the bucket")
    default_scorecard: str = Field(
        default="inbound/v1", description="scorecard of rows that name no scorecard_version"
    )
