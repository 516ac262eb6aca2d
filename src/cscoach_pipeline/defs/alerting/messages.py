"""What an alert says. Items are built from warehouse rows that are already safe to show (ids
and keys as the tables hold them, PII redacted); reasons are redacted again and bounded, and
no transcript text, summary or customer detail is ever part of one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from cscoach_pipeline.defs.privacy.pii import redact_text
from cscoach_pipeline.defs.warehouse.engine import as_utc

REASON_CHARS = 300


class AlertKind(StrEnum):
    CONSULTATION_FAILED = "consultation_failed"
    LLM_OUTAGE = "llm_outage"
    LLM_RECOVERED = "llm_recovered"
    BUCKET_UNREACHABLE = "bucket_unreachable"
    BUCKET_REACHABLE = "bucket_reachable"
    CRITICAL_REVIEW = "critical_review"


TITLES = {
    AlertKind.CONSULTATION_FAILED: "Consultations failed",
    AlertKind.LLM_OUTAGE: "LLM outage: the circuit breaker opened",
    AlertKind.LLM_RECOVERED: "LLM recovered: answering again",
    AlertKind.BUCKET_UNREACHABLE: "The bucket is unreachable",
    AlertKind.BUCKET_REACHABLE: "The bucket is reachable again",
    AlertKind.CRITICAL_REVIEW: "Review first: failed critical questions",
}
SEVERITY = {
    AlertKind.CONSULTATION_FAILED: "warning",
    AlertKind.LLM_OUTAGE: "error",
    AlertKind.LLM_RECOVERED: "info",
    AlertKind.BUCKET_UNREACHABLE: "error",
    AlertKind.BUCKET_REACHABLE: "info",
    AlertKind.CRITICAL_REVIEW: "warning",
}


@dataclass(frozen=True, slots=True)
class AlertItem:
    """One thing to tell; `dedup_key` makes it go out once per channel."""

    kind: AlertKind
    dedup_key: str
    payload: dict[str, Any]

    def row(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "dedup_key": self.dedup_key, "payload": self.payload}


@dataclass(frozen=True, slots=True)
class AlertMessage:
    """Items of one kind as one message: a title, a line per item (up to a limit), the rest
    counted, and the items themselves for machine readers (the generic webhook)."""

    kind: AlertKind
    title: str
    lines: list[str]
    items: list[dict[str, Any]]
    more: int = 0
    links: dict[str, str] = field(default_factory=dict)

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]

    @property
    def text(self) -> str:
        """Plain text (the fallback every channel shows in notifications)."""
        body = "\n".join(f"- {line}" for line in self.lines)
        more = f"\n- ... and {self.more} more" if self.more else ""
        return f"{self.title}\n{body}{more}"


def safe_reason(text: str | None) -> str:
    """A reason as an alert shows it: first line, PII redacted, bounded."""
    if not text:
        return ""
    first = text.strip().splitlines()[0] if text.strip() else ""
    first = redact_text(first)
    return first if len(first) <= REASON_CHARS else first[: REASON_CHARS - 3] + "..."


def _iso(value: datetime | date | None) -> str | None:
    """ISO 8601; a time in UTC to the second (SQLite gives it back without its zone)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value).replace(microsecond=0).isoformat()
    return value.isoformat()


def failed_item(row: Mapping[str, Any]) -> AlertItem:
    """A `consultation_status` row that ended failed or rejected."""
    payload = {
        "consultation_id": row["consultation_id"],
        "source_key": redact_text(row["source_key"] or ""),
        "status": row["status"],
        "stage": row["stage"],
        "failure_kind": row["failure_kind"],
        "reason": safe_reason(row["error"]),
        "run_id": row["run_id"],
        "at": _iso(row["updated_at"]),
    }
    # Once per consultation and run: the run-failure sensor rewriting the row tells nothing new.
    key = f"failed:{row['consultation_id']}:{row['run_id'] or row['stage'] or ''}"
    return AlertItem(AlertKind.CONSULTATION_FAILED, key, payload)


def critical_review_item(row: Mapping[str, Any]) -> AlertItem:
    """A review-queue row with a failed critical question: once per consultation and day."""
    payload = {
        "day": _iso(row["day"]),
        "consultation_id": row["consultation_id"],
        "rank": row["rank"],
        "reasons": safe_reason(row["reasons"]),
        "overall_score": row["overall_score"],
        "agent_id": row["agent_id"],
        "team": row["team"],
    }
    key = f"review:{_iso(row['day'])}:{row['consultation_id']}"
    return AlertItem(AlertKind.CRITICAL_REVIEW, key, payload)


def health_item(kind: AlertKind, event: Mapping[str, Any]) -> AlertItem:
    """A `service_health` transition."""
    payload = {
        "service": event["service"],
        "state": event["state"],
        "detail": safe_reason(event["detail"]),
        "since": _iso(event["occurred_at"]),
    }
    return AlertItem(kind, f"health:{event['service']}:{event['event_id']}", payload)


def compose(
    kind: AlertKind, items: Sequence[Mapping[str, Any]], ui_url: str, max_lines: int
) -> AlertMessage:
    """The message for these items of one kind, with links into the Dagster UI."""
    ui = ui_url.rstrip("/")
    lines, links = [], {}
    for item in items[:max_lines]:
        line, link = _line(kind, item, ui)
        lines.append(line)
        if link:
            links[line] = link
    title = TITLES[kind] + (f" ({len(items)})" if len(items) > 1 else "")
    return AlertMessage(
        kind=kind,
        title=title,
        lines=lines,
        items=[dict(i) for i in items],
        more=max(0, len(items) - max_lines),
        links=links,
    )


def _line(kind: AlertKind, item: Mapping[str, Any], ui: str) -> tuple[str, str | None]:
    if kind is AlertKind.CONSULTATION_FAILED:
        where = f"{item['status']} at {item['stage'] or 'unknown stage'}"
        if item.get("failure_kind"):
            where += f", {item['failure_kind']}"
        link = f"{ui}/runs/{item['run_id']}" if item.get("run_id") else None
        return f"{item['consultation_id']} ({where}): {item['reason'] or 'no reason'}", link
    if kind is AlertKind.CRITICAL_REVIEW:
        score = item.get("overall_score")
        shown = f"{score:.1f}" if isinstance(score, int | float) else "no score"
        who = f"agent {item.get('agent_id') or '?'}, team {item.get('team') or '?'}"
        link = (
            f"{ui}/assets/quality_metrics?view=partitions"
            f"&partition={quote(str(item['consultation_id']), safe='')}"
        )
        return (
            f"{item['day']} #{item['rank']} {item['consultation_id']} ({who}, score {shown}): "
            f"{item['reasons']}",
            link,
        )
    since = item.get("since") or ""
    detail = f": {item['detail']}" if item.get("detail") else ""
    return f"{item['service']} {item['state']} since {since}{detail}", None
