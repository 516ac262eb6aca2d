"""The alert sensor: each tick finds what a supervisor or operator must hear about (failed
consultations, an LLM outage and its end, the bucket unreachable and back, review-queue items
with a failed critical question), queues it per channel and sends what is pending."""

from __future__ import annotations

import json

from dagster import (
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from cscoach_pipeline.defs.alerting.outbox import Watermarks, collect, deliver, first_look
from cscoach_pipeline.defs.alerting.resources import AlertingResource
from cscoach_pipeline.defs.warehouse.engine import utcnow
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource


def build_alert_sensor(interval_s: int = 60, *, enabled: bool = False) -> SensorDefinition:
    """Running by default once a channel is configured (CSCOACH_ALERT_*)."""

    @sensor(
        name="supervisor_alerts",
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING if enabled else DefaultSensorStatus.STOPPED,
        description="Sends failed consultations (batched, with reasons), LLM outages, the "
        "bucket unreachable and failed critical questions to Slack, Teams or a webhook.",
    )
    def supervisor_alerts(
        context: SensorEvaluationContext, warehouse: WarehouseResource, alerting: AlertingResource
    ) -> SkipReason:
        channels = alerting.channels()
        if not channels:
            return SkipReason("no alert channel is configured (CSCOACH_ALERT_*_URL)")
        now = utcnow()
        cursor = json.loads(context.cursor) if context.cursor else None
        marks = Watermarks.from_json(cursor) or first_look(warehouse, now)
        items, marks = collect(
            warehouse, marks, now,
            unreachable_grace_s=alerting.unreachable_grace_s,
            recovered_grace_s=alerting.recovered_grace_s,
        )  # fmt: skip
        queued = sum(warehouse.alerts.enqueue(c.name, [i.row() for i in items]) for c in channels)
        # The items are in the outbox before the watermarks move: a tick that dies after
        # this sends them next time; one that dies before finds them again.
        context.update_cursor(json.dumps(marks.to_json(), sort_keys=True))
        outcome = deliver(
            warehouse,
            channels,
            now,
            ui_url=alerting.ui_url,
            max_lines=alerting.max_lines,
            give_up_after=alerting.give_up_after,
            budget_s=alerting.delivery_budget_s,
        )
        summary = ", ".join(
            f"{name}: {d.sent} sent, {d.failed} not delivered" for name, d in outcome.items()
        )
        for name, done in outcome.items():
            for error in done.errors:
                context.log.warning(f"alert delivery to {name} failed: {error}")
        return SkipReason(f"{queued} alerts queued; {summary}")

    return supervisor_alerts
