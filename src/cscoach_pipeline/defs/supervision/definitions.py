"""Supervision: day aggregates a supervisor reads (agents, teams, the review queue), kept
current by the daily_aggregates sensor."""

from __future__ import annotations

from typing import Any

import dagster as dg

from cscoach_pipeline.defs.supervision.assets import (
    build_report_assets,
    build_supervision_assets,
)
from cscoach_pipeline.defs.supervision.partitions import (
    consultation_days,
    report_days,
    report_weeks,
)
from cscoach_pipeline.defs.supervision.resources import SupervisionResource
from cscoach_pipeline.defs.supervision.sensors import (
    build_aggregates_job,
    build_aggregates_sensor,
)
from cscoach_pipeline.settings import Settings


def defs(settings: Settings) -> dg.Definitions:
    days = consultation_days(settings.aggregates_start, settings.timezone)
    job = build_aggregates_job(days)
    daily, weekly = build_report_assets(
        report_days(settings.aggregates_start, settings.timezone),
        report_weeks(settings.aggregates_start, settings.timezone),
    )
    reports_job = dg.define_asset_job(
        "daily_team_reports_job",
        selection=dg.AssetSelection.assets(daily),
        description="Write the teams' and the centre's daily reports.",
    )
    weekly_job = dg.define_asset_job(
        "weekly_team_reports_job",
        selection=dg.AssetSelection.assets(weekly),
        description="Write the teams' and the centre's weekly reports.",
    )
    return dg.Definitions(
        assets=[*build_supervision_assets(days), daily, weekly],
        jobs=[job, reports_job, weekly_job],
        sensors=[build_aggregates_sensor(days, job.name, settings.aggregates_interval_s)],
        # Each morning the report of the day that has just ended; each Monday the week's.
        schedules=[
            dg.build_schedule_from_partitioned_job(
                reports_job,
                hour_of_day=settings.reports_hour,
                default_status=dg.DefaultScheduleStatus.RUNNING,
            ),
            dg.build_schedule_from_partitioned_job(
                weekly_job,
                hour_of_day=settings.reports_hour,
                day_of_week=1,
                default_status=dg.DefaultScheduleStatus.RUNNING,
            ),
        ],
    )


def resources(settings: Settings) -> dict[str, Any]:
    return {
        "supervision": SupervisionResource(
            timezone=settings.timezone,
            review_queue_size=settings.review_queue_size,
            reports_prefix=settings.reports_prefix,
        )
    }
