"""The alerting resource: which channels are configured (their URLs arrive as EnvVar), how
messages link into the Dagster UI, and how deliveries are retried."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from cscoach_pipeline.defs.alerting.channels import (
    AlertChannel,
    SlackChannel,
    TeamsChannel,
    WebhookChannel,
)


class AlertingResource(ConfigurableResource):
    slack_webhook_url: str | None = Field(
        default=None, description="from EnvVar('CSCOACH_ALERT_SLACK_WEBHOOK_URL')"
    )
    teams_webhook_url: str | None = Field(
        default=None, description="from EnvVar('CSCOACH_ALERT_TEAMS_WEBHOOK_URL')"
    )
    webhook_url: str | None = Field(
        default=None, description="from EnvVar('CSCOACH_ALERT_WEBHOOK_URL')"
    )
    webhook_secret: str | None = Field(
        default=None, description="HMAC key of the webhook's signature header, from EnvVar"
    )
    ui_url: str = Field(default="http://localhost:3000", description="links into the UI")
    timeout_s: float = Field(default=10.0, gt=0, description="per delivery")
    max_lines: int = Field(default=20, ge=1, description="items listed per message")
    give_up_after: int = Field(
        default=12, ge=1, description="attempts per alert (waits double from 1 min to 1 h)"
    )
    unreachable_grace_s: float = Field(
        default=30.0, ge=0, description="the bucket unreachable this long before it is told"
    )
    recovered_grace_s: float = Field(
        default=60.0, ge=0, description="a recovery holds this long before it is told"
    )
    delivery_budget_s: float = Field(
        default=30.0, gt=0, description="sending time per look; the rest waits for the next"
    )

    def channels(self) -> list[AlertChannel]:
        built: list[AlertChannel] = []
        if self.slack_webhook_url:
            built.append(SlackChannel(self.slack_webhook_url, self.timeout_s))
        if self.teams_webhook_url:
            built.append(TeamsChannel(self.teams_webhook_url, self.timeout_s))
        if self.webhook_url:
            built.append(WebhookChannel(self.webhook_url, self.timeout_s, self.webhook_secret))
        return built
