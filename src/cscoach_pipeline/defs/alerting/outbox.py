"""Alerts found and delivered. `collect` turns what changed in the warehouse since the
sensor's watermarks into items; `deliver` sends each channel's pending items, one message per
kind, and records the outcome, so a channel that is down gets its alerts later, none twice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cscoach_pipeline.defs.alerting.channels import AlertChannel, DeliveryError
from cscoach_pipeline.defs.alerting.messages import (
    AlertItem,
    AlertKind,
    compose,
    critical_review_item,
    failed_item,
    health_item,
)
from cscoach_pipeline.defs.ingest.sensors import BUCKET_SERVICE
from cscoach_pipeline.defs.warehouse.engine import as_utc
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource

# Rows are looked for this far behind the watermark: a row whose transaction committed after
# a later one was read is still found; the outbox's dedup key keeps it to one alert.
LOOKBACK = timedelta(minutes=5)
MAX_ROWS_PER_TICK = 1000

# service state -> the alert it raises; the healthy state of each kind of service.
_TRANSITIONS = {
    ("llm", "open"): AlertKind.LLM_OUTAGE,
    ("llm", "closed"): AlertKind.LLM_RECOVERED,
    ("bucket", "unreachable"): AlertKind.BUCKET_UNREACHABLE,
    ("bucket", "reachable"): AlertKind.BUCKET_REACHABLE,
}
_HEALTHY = {"llm": "closed", "bucket": "reachable"}


@dataclass
class Watermarks:
    """The sensor's cursor: how far each source has been read, and the state of each
    service last told."""

    failed_after: datetime
    reviews_after: datetime
    told: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "failed_after": self.failed_after.isoformat(),
            "reviews_after": self.reviews_after.isoformat(),
            "told": self.told,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None, now: datetime) -> Watermarks:
        if not data:  # alerting starts now: history is not told
            return cls(now, now)
        return cls(
            datetime.fromisoformat(data["failed_after"]),
            datetime.fromisoformat(data["reviews_after"]),
            dict(data.get("told", {})),
        )


def _family(service: str) -> str:
    return "bucket" if service == BUCKET_SERVICE else service.split(":", 1)[0]


def collect(
    warehouse: WarehouseResource, marks: Watermarks, now: datetime, unreachable_grace_s: float
) -> tuple[list[AlertItem], Watermarks]:
    items: list[AlertItem] = []
    failed = warehouse.statuses.finished_badly_since(
        marks.failed_after - LOOKBACK, MAX_ROWS_PER_TICK
    )
    items += [failed_item(row) for row in failed]
    reviews = warehouse.aggregates.critical_reviews_since(
        marks.reviews_after - LOOKBACK, MAX_ROWS_PER_TICK
    )
    items += [critical_review_item(row) for row in reviews]

    told = dict(marks.told)
    for event in warehouse.health.latest_all():
        service, state = event["service"], event["state"]
        family = _family(service)
        if told.get(service, _HEALTHY.get(family)) == state:
            continue
        kind = _TRANSITIONS.get((family, state))
        if kind is None:
            continue
        unhealthy = state != _HEALTHY.get(family)
        age = (now - as_utc(event["occurred_at"])).total_seconds()
        if unhealthy and family == "bucket" and age < unreachable_grace_s:
            continue  # a blip: told only if it lasts
        items.append(health_item(kind, event))
        told[service] = state

    def newest(rows: Sequence[dict[str, Any]], column: str, before: datetime) -> datetime:
        if len(rows) >= MAX_ROWS_PER_TICK:
            # More to read: the next look starts at the last row read, not a lookback before
            # it (which would read the same rows again).
            return max(before, as_utc(rows[-1][column]) + LOOKBACK)
        return max(before, now)

    return items, Watermarks(
        failed_after=newest(failed, "updated_at", marks.failed_after),
        reviews_after=newest(reviews, "computed_at", marks.reviews_after),
        told=told,
    )


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def deliver(
    warehouse: WarehouseResource,
    channels: Sequence[AlertChannel],
    *,
    ui_url: str,
    max_lines: int,
    give_up_after: int,
) -> dict[str, Delivery]:
    """Send every channel's pending alerts, one message per kind."""
    outcome: dict[str, Delivery] = {}
    for channel in channels:
        done = outcome.setdefault(channel.name, Delivery())
        by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in warehouse.alerts.pending(channel.name, MAX_ROWS_PER_TICK):
            by_kind[row["kind"]].append(row)
        for kind, rows in by_kind.items():
            message = compose(AlertKind(kind), [r["payload"] for r in rows], ui_url, max_lines)
            ids = [r["alert_id"] for r in rows]
            try:
                channel.send(message)
            except DeliveryError as exc:
                warehouse.alerts.mark_failed(ids, str(exc), give_up_after=give_up_after)
                done.failed += len(ids)
                done.errors.append(str(exc))
                continue
            warehouse.alerts.mark_sent(ids)
            done.sent += len(ids)
    return outcome
