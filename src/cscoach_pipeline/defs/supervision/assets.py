"""The supervisor aggregates, one day partition each: agent scorecards, team and centre
trends, and the review queue. A run may cover a range of days (single-run backfill policy):
each day's rows are replaced in one transaction."""

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    BackfillPolicy,
    DailyPartitionsDefinition,
    MaterializeResult,
    MetadataValue,
    WeeklyPartitionsDefinition,
    asset,
)

from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.ingest.storage import ObjectStore
from cscoach_pipeline.defs.supervision.aggregates import (
    ROLLING_DAYS,
)
from cscoach_pipeline.defs.supervision.charts import TeamReport, team_report, weekly_team_report
from cscoach_pipeline.defs.supervision.partitions import DAY_FORMAT
from cscoach_pipeline.defs.supervision.refresh import (
    refresh_agent_days,
    refresh_review_queue,
    refresh_team_days,
)
from cscoach_pipeline.defs.supervision.report import agent_table, queue_table
from cscoach_pipeline.defs.supervision.resources import SupervisionResource
from cscoach_pipeline.defs.supervision.weekly import combine, week_agents
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource

SUPERVISION_GROUP = "supervision"


def partition_days(context: AssetExecutionContext) -> list[date]:
    return [datetime.strptime(k, DAY_FORMAT).date() for k in context.partition_keys]


def build_supervision_assets(days: DailyPartitionsDefinition) -> list[AssetsDefinition]:
    # Every consultation's score feeds the day it belongs to; which day is data, so the
    # dependency is on all of them (lineage), and the sensor says which days changed.
    scores = AssetDep("quality_metrics", partition_mapping=AllPartitionMapping())
    shared = {
        "partitions_def": days,
        "backfill_policy": BackfillPolicy.single_run(),
        "group_name": SUPERVISION_GROUP,
        "kinds": {"sql"},
    }

    @asset(
        deps=[scores],
        description="Per day and agent: consultations, scored, failed, mean and median "
        "score, pass rate, score per scorecard question, talk share, pace, non-talk, "
        "interruptions, latency, handle time, customer sentiment start/end, resolution "
        "rates, LLM cost.",
        **shared,
    )
    def agent_daily_scorecards(
        context: AssetExecutionContext,
        warehouse: WarehouseResource,
        supervision: SupervisionResource,
    ) -> MaterializeResult:
        chosen = partition_days(context)
        rows = refresh_agent_days(warehouse.aggregates, chosen, supervision.timezone)
        return MaterializeResult(
            metadata={
                "days": len(chosen),
                "agents": len({r["agent_id"] for r in rows}),
                "consultations": sum(r["consultations"] for r in rows),
                "agents_by_score": MetadataValue.md(agent_table(rows)),
            }
        )

    @asset(
        deps=[scores],
        description="Per day, per team and for the whole centre: the agent scorecard "
        "figures plus 7- and 28-day rolling mean score, pass rate and volume.",
        **shared,
    )
    def team_daily_trends(
        context: AssetExecutionContext,
        warehouse: WarehouseResource,
        supervision: SupervisionResource,
    ) -> MaterializeResult:
        chosen = partition_days(context)
        rows = refresh_team_days(warehouse.aggregates, chosen, supervision.timezone)
        centre = [r for r in rows if r["scope"] == "centre"]
        latest = max(centre, key=lambda r: r["day"]) if centre else None
        return MaterializeResult(
            metadata={
                "days": len(chosen),
                "teams": len({r["team"] for r in rows if r["scope"] == "team"}),
                "centre_mean_score": latest["mean_score"] if latest else None,
                "centre_rolling_7d_mean_score": latest["rolling_7d_mean_score"] if latest else None,
            }
        )

    @asset(
        deps=[scores, AssetDep("call_categories", partition_mapping=AllPartitionMapping())],
        description="Per day, the consultations a supervisor should listen to first (failed "
        "critical questions, legal threats, escalations, cancellations, an unhappy end, low "
        "scores), ranked, with why.",
        **shared,
    )
    def review_queue(
        context: AssetExecutionContext,
        warehouse: WarehouseResource,
        supervision: SupervisionResource,
    ) -> MaterializeResult:
        chosen = partition_days(context)
        rows = refresh_review_queue(
            warehouse.aggregates, chosen, supervision.timezone, supervision.review_queue_size
        )
        return MaterializeResult(
            metadata={
                "days": len(chosen),
                "queued": len(rows),
                "failed_critical": sum(r["failed_critical"] for r in rows),
                "queue": MetadataValue.md(queue_table(rows)),
            }
        )

    return [agent_daily_scorecards, team_daily_trends, review_queue]


def _key_part(team: str) -> str:
    return re.sub(r"[^\w.-]+", "_", team).strip("_") or "team"


def write_reports(
    store: ObjectStore, prefix: str, reports: Sequence[TeamReport]
) -> MaterializeResult:
    """Each report's Markdown and charts under `prefix/<team>/`; the centre's (the first)
    shown inline, and where every report.md is."""
    locations: dict[str, str] = {}
    for report in reports:
        folder = f"{prefix.rstrip('/')}/{_key_part(report.name)}/"
        for file_name, png in report.charts.items():
            store.write_bytes(folder + file_name, png, "image/png")
        store.write_bytes(folder + "report.md", report.markdown.encode(), "text/markdown")
        locations[report.name] = store.locate(folder + "report.md")
    return MaterializeResult(
        metadata={
            "teams": len(reports) - 1,
            "report": MetadataValue.md(reports[0].inline_markdown()),
            "reports": MetadataValue.json(locations),
        }
    )


def _scopes(trends: Sequence[Mapping[str, Any]], first: date, last: date) -> list[str]:
    """The centre ("") first, then every team with a day in first..last."""
    teams = {r["team"] for r in trends if r["scope"] == "team" and first <= r["day"] <= last}
    return ["", *sorted(teams)]


def _of_scope(rows: Sequence[Mapping[str, Any]], team: str) -> list[Mapping[str, Any]]:
    scope = "centre" if team == "" else "team"
    return [r for r in rows if r["scope"] == scope and r["team"] == team]


def _of_team(rows: Sequence[Mapping[str, Any]], team: str) -> list[Mapping[str, Any]]:
    return [r for r in rows if team == "" or r["team"] == team]


def build_report_assets(
    days: DailyPartitionsDefinition, weeks: WeeklyPartitionsDefinition
) -> list[AssetsDefinition]:
    @asset(
        partitions_def=days,
        group_name=SUPERVISION_GROUP,
        kinds={"markdown", "png"},
        deps=["team_daily_trends", "agent_daily_scorecards"],
        description="Each team's and the centre's daily report (Markdown with a score trend, "
        "an agent ranking and a scorecard heat map, PNG) under reports/daily/DAY/TEAM/ in "
        "the bucket; the centre's is shown here. Written each morning for the day before.",
    )
    def daily_team_reports(
        context: AssetExecutionContext,
        bucket: BucketResource,
        warehouse: WarehouseResource,
        supervision: SupervisionResource,
    ) -> MaterializeResult:
        (day,) = partition_days(context)
        first = day - timedelta(days=max(ROLLING_DAYS) - 1)
        trends = warehouse.aggregates.rows_between(tables.team_daily_trends, first, day)
        agents = warehouse.aggregates.rows_between(tables.agent_daily_scorecards, day, day)
        reports = [
            team_report(team, day, _of_scope(trends, team), _of_team(agents, team))
            for team in _scopes(trends, day, day)
        ]
        prefix = f"{supervision.reports_prefix.rstrip('/')}/daily/{day}"
        return write_reports(bucket.store(), prefix, reports)

    @asset(
        partitions_def=weeks,
        group_name=SUPERVISION_GROUP,
        kinds={"markdown", "png"},
        deps=["team_daily_trends", "agent_daily_scorecards"],
        description="Each team's and the centre's weekly report (Monday to Sunday: the "
        "week's figures day by day, the four-week score trend, agents ranked over the week, "
        "the scorecard heat map) under reports/weekly/MONDAY/TEAM/; the centre's is shown "
        "here. Written each Monday morning for the week before.",
    )
    def weekly_team_reports(
        context: AssetExecutionContext,
        bucket: BucketResource,
        warehouse: WarehouseResource,
        supervision: SupervisionResource,
    ) -> MaterializeResult:
        (first,) = partition_days(context)
        last = first + timedelta(days=6)
        reach = last - timedelta(days=max(ROLLING_DAYS) - 1)
        trends = warehouse.aggregates.rows_between(tables.team_daily_trends, reach, last)
        agent_days = warehouse.aggregates.rows_between(tables.agent_daily_scorecards, first, last)
        reports = []
        for team in _scopes(trends, first, last):
            trend = _of_scope(trends, team)
            in_week = [r for r in trend if first <= r["day"] <= last]
            agents = week_agents(_of_team(agent_days, team))
            week = combine(in_week) if in_week else None
            reports.append(weekly_team_report(team, first, last, trend, week, agents))
        prefix = f"{supervision.reports_prefix.rstrip('/')}/weekly/{first}"
        return write_reports(bucket.store(), prefix, reports)

    return [daily_team_reports, weekly_team_reports]
