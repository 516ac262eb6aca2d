"""Alerting: what must be heard about, sent to Slack, Microsoft Teams or a webhook."""

from __future__ import annotations

from typing import Any

import dagster as dg

from cscoach_pipeline.defs.alerting.resources import AlertingResource
from cscoach_pipeline.defs.alerting.sensors import build_alert_sensor
from cscoach_pipeline.settings import Settings


def defs(settings: Settings) -> dg.Definitions:
    return dg.Definitions(
        sensors=[build_alert_sensor(settings.alert_interval_s, enabled=settings.alerts_enabled)]
    )


def resources(settings: Settings) -> dict[str, Any]:
    # The URLs are the secrets (whoever has one can post): they reach the resource as EnvVar.
    def secret(name: str, present: object) -> dg.EnvVar | None:
        return dg.EnvVar(name) if present else None

    return {
        "alerting": AlertingResource(
            slack_webhook_url=secret(
                "CSCOACH_ALERT_SLACK_WEBHOOK_URL", settings.alert_slack_webhook_url
            ),
            teams_webhook_url=secret(
                "CSCOACH_ALERT_TEAMS_WEBHOOK_URL", settings.alert_teams_webhook_url
            ),
            webhook_url=secret("CSCOACH_ALERT_WEBHOOK_URL", settings.alert_webhook_url),
            webhook_secret=secret("CSCOACH_ALERT_WEBHOOK_SECRET", settings.alert_webhook_secret),
            ui_url=settings.ui_url,
            unreachable_grace_s=settings.alert_unreachable_grace_s,
            recovered_grace_s=settings.alert_recovered_grace_s,
        )
    }
