"""Keeps the day aggregates current: every look finds the consultations scored or finished
since the last one (new, late for an earlier day, or reanalysed) and refreshes the days they
belong to, with the 27 days after each for the rolling means."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

from dagster import (
    AssetKey,
    AssetSelection,
    DailyPartitionsDefinition,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import (
    UnresolvedAssetJobDefinition,
)
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from cscoach_pipeline.defs.supervision.aggregates import ROLLING_DAYS, consultation_day
from cscoach_pipeline.defs.supervision.partitions import DAY_FORMAT
from cscoach_pipeline.defs.supervision.resources import SupervisionResource
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource

DAILY_ASSETS = ("agent_daily_scorecards", "review_queue")
TRENDS_ASSET = "team_daily_trends"


def build_aggregates_job(days: DailyPartitionsDefinition) -> UnresolvedAssetJobDefinition:
    return define_asset_job(
        name="refresh_daily_aggregates",
        selection=AssetSelection.assets(*DAILY_ASSETS, TRENDS_ASSET),
        partitions_def=days,
        description="Recompute the supervisor aggregates of a range of days.",
    )


def range_request(assets: tuple[str, ...], first: date, last: date) -> RunRequest:
    return RunRequest(
        asset_selection=[AssetKey(name) for name in assets],
        tags={
            ASSET_PARTITION_RANGE_START_TAG: first.strftime(DAY_FORMAT),
            ASSET_PARTITION_RANGE_END_TAG: last.strftime(DAY_FORMAT),
        },
    )


def _key(name: str):
    from dagster import AssetKey

    return AssetKey(name)


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def affected_days(
    moments: list[tuple[datetime | None, datetime | None]],
    timezone: str,
    first: date,
    last: date,
) -> list[date]:
    """The days these consultations belong to, within the partitions [first, last]."""
    found = {consultation_day(r, u, timezone) for r, u in moments}
    return sorted(d for d in found if d is not None and first <= d <= last)


def build_aggregates_sensor(
    days: DailyPartitionsDefinition, job_name: str, interval_s: int = 60
) -> SensorDefinition:
    @sensor(
        name="daily_aggregates",
        job_name=job_name,
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Refreshes agent_daily_scorecards, review_queue and team_daily_trends "
        "for the days whose consultations were scored or finished since the last look.",
    )
    def daily_aggregates(
        context: SensorEvaluationContext,
        warehouse: WarehouseResource,
        supervision: SupervisionResource,
    ) -> SensorResult | SkipReason:
        cursor = json.loads(context.cursor) if context.cursor else {}
        moments, metrics_at, status_at = warehouse.aggregates.changed_since(
            _parse(cursor.get("metrics")), _parse(cursor.get("status"))
        )
        new_cursor = json.dumps(
            {
                "metrics": metrics_at.isoformat() if metrics_at else None,
                "status": status_at.isoformat() if status_at else None,
            }
        )
        first = datetime.strptime(days.get_first_partition_key(), DAY_FORMAT).date()
        last_key = days.get_last_partition_key()
        last = datetime.strptime(last_key, DAY_FORMAT).date() if last_key else first
        changed = affected_days(moments, supervision.timezone, first, last)
        if not changed:
            if moments:
                context.log.info(f"{len(moments)} changed consultation(s) outside the days")
            return SensorResult(
                skip_reason="no consultation scored since the last look", cursor=new_cursor
            )
        # One run recomputes every day between the first and last changed (idempotent and
        # cheap next to one run per day); the trends also the days whose windows they reach.
        reach = min(last, max(changed) + timedelta(days=max(ROLLING_DAYS) - 1))
        context.log.info(
            f"{len(moments)} consultation(s) changed on {len(changed)} day(s): "
            f"{changed[0]} .. {changed[-1]}"
        )
        return SensorResult(
            run_requests=[
                range_request(DAILY_ASSETS, changed[0], changed[-1]),
                range_request((TRENDS_ASSET,), changed[0], reach),
            ],
            cursor=new_cursor,
        )

    return daily_aggregates
