"""Watches `incoming/` in the bucket: one dynamic partition and one run per new consultation.

State lives in two places, both small or external: the warehouse's `bucket_objects` inventory
(what was seen, with its change token and content hash) and the sensor cursor (objects seen
once but not yet settled). So a tick re-hashes nothing unchanged and survives daemon restarts.
"""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from ..jobs import process_consultation_job
from ..lib import tables
from ..lib.file_types import guess_file_type, is_ignored, unsupported_reason
from ..lib.partition_keys import consultation_id_for
from ..partitions import consultation_partitions
from ..resources.bucket import BucketResource
from ..resources.storage import ObjectStore, StorageError, StoredObject
from ..resources.warehouse import WarehouseResource, utcnow
from ..settings import load_settings

# A queued consultation whose run never appeared (e.g. the daemon died mid-tick) is requested
# again after this long; Dagster drops the duplicate if the run does exist (same run_key).
REQUEUE_AFTER = timedelta(minutes=2)


@dataclass
class TickPlan:
    run_requests: list[RunRequest] = field(default_factory=list)
    new_partitions: list[str] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(
        default_factory=lambda: {"new": 0, "changed": 0, "rejected": 0, "waiting": 0, "deleted": 0}
    )


class BucketScanner:
    """One sensor tick's work, kept out of the decorator so it reads top to bottom."""

    def __init__(
        self,
        store: ObjectStore,
        bucket: BucketResource,
        warehouse: WarehouseResource,
        *,
        settle_seconds: float,
        max_runs_per_tick: int,
        log: Any,
    ) -> None:
        self.store = store
        self.bucket = bucket
        self.warehouse = warehouse
        self.settle = timedelta(seconds=settle_seconds)
        self.budget = max_runs_per_tick
        self.log = log
        self.known = {row["source_key"]: row for row in warehouse.fetch_rows(tables.bucket_objects)}
        # Content index for duplicate detection across keys.
        self.active_by_sha = {
            row["content_sha256"]: row["consultation_id"]
            for row in self.known.values()
            if row["state"] == "active" and row["content_sha256"]
        }

    def scan(self, previously_pending: dict[str, str], now: datetime) -> TickPlan:
        plan = TickPlan()
        listed: set[str] = set()
        for obj in self.store.list_objects(self.bucket.incoming_prefix):
            if is_ignored(obj.key):
                continue
            listed.add(obj.key)
            known = self.known.get(obj.key)
            if (
                known
                and known["state"] != "deleted"
                and known["version_token"] == obj.version_token
            ):
                continue
            settled = previously_pending.get(obj.key) == obj.version_token or (
                now - obj.modified >= self.settle
            )
            if not settled or self.budget <= 0:
                # Still being written (or over this tick's budget): look again next tick.
                plan.pending[obj.key] = obj.version_token
                plan.counts["waiting"] += 1
                continue
            try:
                self._admit(obj, known, plan)
            except (StorageError, OSError) as exc:
                # The store hiccupped on this object (or it is unreadable): leave it out of
                # the inventory so the next tick retries it; never mark it processed.
                reason = f"the bucket could not read this file ({exc}); retrying every tick"
                self.log.warning(f"{obj.key}: {reason}")
                self.warehouse.set_status(
                    consultation_id_for(obj.key, self.bucket.incoming_prefix),
                    obj.key,
                    "failed",
                    stage="sensor",
                    error=reason,
                )
                plan.pending[obj.key] = obj.version_token
        self._mark_deleted(listed, plan)
        self._requeue_stale(plan, now)
        return plan

    def _admit(self, obj: StoredObject, known: dict[str, Any] | None, plan: TickPlan) -> None:
        consultation_id = consultation_id_for(obj.key, self.bucket.incoming_prefix)
        if guess_file_type(obj.key) is None:
            self._record(obj, consultation_id, None, known, "rejected")
            self.warehouse.set_status(
                consultation_id,
                obj.key,
                "rejected",
                stage="sensor",
                error=unsupported_reason(obj.key),
            )
            plan.counts["rejected"] += 1
            self.budget -= 1
            return
        # Hash only what the pipeline will read; empty and oversize files fail in their run.
        sha = self.store.sha256(obj.key) if 0 < obj.size <= self.bucket.max_file_bytes else None
        if known and known["state"] == "active" and sha and known["content_sha256"] == sha:
            # Touched or re-copied with identical content: nothing to do.
            self._record(obj, consultation_id, sha, known, "active", bump=False)
            return
        duplicate_of = self.active_by_sha.get(sha) if sha else None
        if duplicate_of and duplicate_of != consultation_id:
            self._record(obj, consultation_id, sha, known, "rejected")
            self.warehouse.set_status(
                consultation_id,
                obj.key,
                "rejected",
                stage="sensor",
                error=f"duplicate of consultation {duplicate_of} (identical content)",
            )
            plan.counts["rejected"] += 1
            self.budget -= 1
            return
        version = self._record(obj, consultation_id, sha, known, "active")
        if sha:
            self.active_by_sha[sha] = consultation_id
        self.warehouse.set_status(consultation_id, obj.key, "queued", stage="sensor")
        plan.new_partitions.append(consultation_id)
        plan.run_requests.append(_run_request(consultation_id, obj.key, version))
        plan.counts["changed" if known else "new"] += 1
        self.budget -= 1

    def _record(
        self,
        obj: StoredObject,
        consultation_id: str,
        sha: str | None,
        known: dict[str, Any] | None,
        state: str,
        *,
        bump: bool = True,
    ) -> int:
        version = (known["version"] if known else 0) + (1 if bump else 0)
        now = utcnow()
        values = {
            "consultation_id": consultation_id,
            "version_token": obj.version_token,
            "size_bytes": obj.size,
            "content_sha256": sha,
            "version": max(version, 1),
            "state": state,
            "updated_at": now,
        }
        if known is None:
            values["first_seen_at"] = now
        self.warehouse.upsert(tables.bucket_objects, {"source_key": obj.key}, values)
        self.known[obj.key] = {"source_key": obj.key, **(known or {}), **values}
        return values["version"]

    def _mark_deleted(self, listed: set[str], plan: TickPlan) -> None:
        for key, row in list(self.known.items()):
            if key not in listed and row["state"] != "deleted":
                # Results stay in the tables; a re-upload later counts as a new version.
                self.warehouse.upsert(
                    tables.bucket_objects,
                    {"source_key": key},
                    {"state": "deleted", "version_token": "", "updated_at": utcnow()},
                )
                plan.counts["deleted"] += 1

    def _requeue_stale(self, plan: TickPlan, now: datetime) -> None:
        requested = {r.partition_key for r in plan.run_requests}
        for status in self.warehouse.fetch_rows(tables.consultation_status, status="queued"):
            updated = status["updated_at"]
            if updated.tzinfo is None:
                updated = updated.replace(tzinfo=UTC)
            known = self.known.get(status["source_key"])
            if (
                now - updated < REQUEUE_AFTER
                or status["consultation_id"] in requested
                or not known
                or known["state"] != "active"
            ):
                continue
            plan.run_requests.append(
                _run_request(status["consultation_id"], status["source_key"], known["version"])
            )


def _run_request(consultation_id: str, source_key: str, version: int) -> RunRequest:
    return RunRequest(
        partition_key=consultation_id,
        # One run per content version: re-dropping identical content never runs twice, and a
        # changed file (even back to an older content) always gets a fresh run.
        run_key=f"{consultation_id}@v{version}",
        tags={"cscoach/source_key": source_key, "cscoach/version": str(version)},
    )


_settings = load_settings()


@sensor(
    job=process_consultation_job,
    minimum_interval_seconds=_settings.sensor_interval_s,
    default_status=DefaultSensorStatus.RUNNING,
    description="Finds new or changed consultations under incoming/ and requests one run each.",
)
def consultation_bucket_sensor(
    context: SensorEvaluationContext, bucket: BucketResource, warehouse: WarehouseResource
) -> SensorResult | SkipReason:
    settings = load_settings()
    cursor = json.loads(context.cursor) if context.cursor else {}
    scanner = BucketScanner(
        bucket.store(),
        bucket,
        warehouse,
        settle_seconds=settings.settle_seconds,
        max_runs_per_tick=settings.max_runs_per_tick,
        log=context.log,
    )
    plan = scanner.scan(cursor.get("pending", {}), datetime.now(tz=UTC))
    context.log.info(f"bucket scan: {plan.counts}")
    new_cursor = json.dumps({"pending": plan.pending}, sort_keys=True)
    if not plan.run_requests and not plan.new_partitions:
        context.update_cursor(new_cursor)
        return SkipReason(f"no new consultations ({plan.counts})")
    return SensorResult(
        run_requests=plan.run_requests,
        dynamic_partitions_requests=[
            consultation_partitions.build_add_request(sorted(set(plan.new_partitions)))
        ],
        cursor=new_cursor,
    )
