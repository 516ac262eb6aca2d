"""Alerts found and delivered. `collect` turns what changed in the warehouse since the
sensor's watermarks into items; `deliver` sends each channel's pending items, one message per
kind, and records the outcome, so a channel that is down gets its alerts later (backing off),
none twice."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
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
class Mark:
    """How far one source has been read. With `key` the next look resumes exactly after
    (at, key) (the last look was cut at its row limit); without, a lookback before `at`."""

    at: datetime
    key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "key": self.key}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Mark:
        return cls(datetime.fromisoformat(data["at"]), data.get("key"))

    @property
    def since(self) -> datetime:
        return self.at if self.key is not None else self.at - LOOKBACK


@dataclass
class Watermarks:
    """The sensor's cursor: when alerting began (what was scored before is history, never
    told), how far each source has been read, and the state of each service last told."""

    started: datetime
    failed: Mark
    reviews: Mark
    told: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started.isoformat(),
            "failed": self.failed.to_json(),
            "reviews": self.reviews.to_json(),
            "told": self.told,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Watermarks | None:
        """None on the first look (no cursor yet)."""
        if not data or "started" not in data:
            return None
        return cls(
            datetime.fromisoformat(data["started"]),
            Mark.from_json(data["failed"]),
            Mark.from_json(data["reviews"]),
            dict(data.get("told", {})),
        )


def _family(service: str) -> str:
    return "bucket" if service == BUCKET_SERVICE else service.split(":", 1)[0]


# A service down when alerting starts is the present, not history, if it went down lately
# (an outage begun while the daemon started up is still told); older states count as told.
CURRENT_OUTAGE = timedelta(hours=1)


def first_look(warehouse: WarehouseResource, now: datetime) -> Watermarks:
    """Alerting starts now: failures and reviews before it are not read, and the services'
    states count as told, except an outage begun within `CURRENT_OUTAGE`."""
    told = {
        e["service"]: e["state"]
        for e in warehouse.health.latest_all()
        if e["state"] == _HEALTHY.get(_family(e["service"]))
        or now - as_utc(e["occurred_at"]) > CURRENT_OUTAGE
    }
    # key "": resume exactly after `now`, no lookback into what came before.
    return Watermarks(now, Mark(now, ""), Mark(now, ""), told)


def collect(
    warehouse: WarehouseResource,
    marks: Watermarks,
    now: datetime,
    *,
    unreachable_grace_s: float,
    recovered_grace_s: float,
) -> tuple[list[AlertItem], Watermarks]:
    items: list[AlertItem] = []
    failed = warehouse.statuses.finished_badly_since(
        marks.failed.since, marks.failed.key, MAX_ROWS_PER_TICK
    )
    items += [failed_item(row) for row in failed]
    review_key = None
    if marks.reviews.key:
        day, _, consultation_id = marks.reviews.key.partition("|")
        review_key = (date.fromisoformat(day), consultation_id)
    reviews = warehouse.aggregates.critical_reviews_since(
        marks.reviews.since, review_key, marks.started, MAX_ROWS_PER_TICK
    )
    items += [critical_review_item(row) for row in reviews]
    items += _health_items(warehouse, marks.told, now, unreachable_grace_s, recovered_grace_s)

    def next_mark(rows: Sequence[dict[str, Any]], column: str, key: Any, before: Mark) -> Mark:
        if len(rows) >= MAX_ROWS_PER_TICK:  # cut at the limit: resume after the last row
            return Mark(as_utc(rows[-1][column]), key(rows[-1]))
        return Mark(max(before.at, now))

    return items, Watermarks(
        started=marks.started,
        failed=next_mark(failed, "updated_at", lambda r: r["consultation_id"], marks.failed),
        reviews=next_mark(
            reviews, "computed_at", lambda r: f"{r['day']}|{r['consultation_id']}", marks.reviews
        ),
        told=marks.told,
    )


def _health_items(
    warehouse: WarehouseResource,
    told: dict[str, str],
    now: datetime,
    unreachable_grace_s: float,
    recovered_grace_s: float,
) -> list[AlertItem]:
    """A service's state is told when it differs from the one told last and has lasted: the
    bucket unreachable past its grace (a blip is not an outage), any recovery past its own
    (per-process breakers of concurrent runs may flap: the end of an outage is told once it
    holds). Updates `told`."""
    items = []
    for event in warehouse.health.latest_all():
        service, state = event["service"], event["state"]
        family = _family(service)
        healthy = _HEALTHY.get(family)
        kind = _TRANSITIONS.get((family, state))
        if kind is None or told.get(service, healthy) == state:
            continue
        age = (now - as_utc(event["occurred_at"])).total_seconds()
        if state == healthy and age < recovered_grace_s:
            continue
        if state != healthy and family == "bucket" and age < unreachable_grace_s:
            continue
        items.append(health_item(kind, event))
        told[service] = state
    return items


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def deliver(
    warehouse: WarehouseResource,
    channels: Sequence[AlertChannel],
    now: datetime,
    *,
    ui_url: str,
    max_lines: int,
    give_up_after: int,
    budget_s: float,
) -> dict[str, Delivery]:
    """Send every channel's due alerts, one message per kind, within `budget_s` (what is
    left waits for the next look: a tick stays well inside Dagster's sensor timeout)."""
    deadline = time.monotonic() + budget_s
    outcome: dict[str, Delivery] = {}
    for channel in channels:
        done = outcome.setdefault(channel.name, Delivery())
        by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in warehouse.alerts.pending(channel.name, now, MAX_ROWS_PER_TICK):
            by_kind[row["kind"]].append(row)
        for kind, rows in by_kind.items():
            if time.monotonic() > deadline:
                break
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
