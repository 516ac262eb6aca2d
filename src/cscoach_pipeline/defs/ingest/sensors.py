"""Watches `incoming/` in the bucket: one dynamic partition per new consultation, and a run
for it (new chats of a tick, and a burst of new recordings, share runs: one launch for many).

State lives in three places, all small or external: the warehouse's `bucket_objects` inventory
(what was seen, with its change token and content fingerprint), its `sensor_state` row (the key
a long listing resumes after) and the sensor cursor (hashes only: a bounded set of objects
seen once but not yet settled, and the hash of the resume key). A
tick lists the prefix in key order (the one cost that grows with the bucket; a listing that
outlasts its budget resumes on the next tick), then works only on new or changed objects:
never a download or a hash of an unchanged one. No timestamp high-water mark is used, so
equal timestamps, keys that are not time-ordered and uploads that finish late are all caught.

No single object stops a tick: whatever goes wrong while admitting one object becomes that
object's status, and the others go on. Every run requested comes with its partition in the
same result, and a `queued` consultation whose partition never appeared (a tick that died
halfway) is requested again with it; a run that never came, or died, is the recovery
sensor's (defs/recovery/sensors.py). So the inventory, the partitions and the runs converge.
Status rows, run tags and log lines show `display_key` (PII in file names redacted); only the
internal `bucket_objects` inventory keeps the real key, which the steps open.
"""

import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any

from dagster import (
    DagsterInstance,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)
from dagster._core.storage.tags import (  # the tags Dagster's own backfills mark ranges with
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from cscoach_pipeline.defs.ingest.file_types import (
    SIDECAR_SUFFIX,
    FileType,
    guess_file_type,
    is_ignored,
    unsupported_reason,
)
from cscoach_pipeline.defs.ingest.partition_keys import consultation_id_for, display_key
from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.ingest.storage import StorageError, StoredObject
from cscoach_pipeline.defs.jobs import process_consultation_job
from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.privacy.pii import redact_text
from cscoach_pipeline.defs.recovery.policy import (
    BATCH_TAG,
    SOURCE_KEY_TAG,
    VERSION_TAG,
    batch_members,
)
from cscoach_pipeline.defs.retention.policy import UNFINISHED_RUNS
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.defs.warehouse.stores import KnownObject

# The cursor remembers at most this many not-yet-settled objects; the rest settle by age.
MAX_PENDING_IN_CURSOR = 1000
# Dagster cancels a tick after 60 s: stop admitting well before, whatever the listing took.
TICK_HARD_LIMIT_S = 50.0
MIN_ADMISSION_S = 5.0
# Queued consultations checked per tick for a missing partition (a tick that died between
# recording them and returning its result); the recovery sensor handles runs that never came.
MAX_PARTITION_CHECKS = 200


@dataclass
class TickPlan:
    run_requests: list[RunRequest] = field(default_factory=list)
    new_partitions: list[str] = field(default_factory=list)
    # New text consultations of this tick, (id, shown key, version), run several per run.
    batchable: list[tuple[str, str, int]] = field(default_factory=list)
    # New recordings of this tick, spread over runs (several per run only in a burst).
    recordings: list[tuple[str, str, int]] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)
    resume_after: str | None = None
    counts: dict[str, int] = field(
        default_factory=lambda: {
            "listed": 0,
            "new": 0,
            "changed": 0,
            "rejected": 0,
            "waiting": 0,
            "deferred": 0,
            "deleted": 0,
            "unreadable": 0,
            "failed": 0,
        }
    )


class BucketScanner:
    """One sensor tick's work, kept out of the decorator so it reads top to bottom."""

    def __init__(
        self,
        bucket: BucketResource,
        warehouse: WarehouseResource,
        *,
        log: Any,
        has_partition: Callable[[str], bool] | None = None,
        in_batches: set[str] | None = None,
    ) -> None:
        self.store = bucket.store()
        self.bucket = bucket
        self.settle = timedelta(seconds=bucket.settle_seconds)
        self.recheck_s = bucket.settle_recheck_s
        self.budget = bucket.max_runs_per_tick
        self.started = time.monotonic()
        self.tick_budget_s = bucket.tick_budget_s
        self.list_budget_s = bucket.list_budget_s
        self.deadline = self.started + self.tick_budget_s
        self.log = log
        self.has_partition = has_partition
        # Consultations an unfinished batch run works on: a new version of one waits for it
        # (the one-run-per-consultation limit cannot see inside a batch run).
        self.in_batches = in_batches or set()
        self.inventory = warehouse.inventory
        self.statuses = warehouse.statuses
        self.known = self.inventory.load()
        # Content index for duplicate detection across keys.
        self.active_by_fingerprint = {
            row.fingerprint: row.consultation_id
            for row in self.known.values()
            if row.state == "active" and row.fingerprint
        }

    def scan(
        self, previously_pending: dict[str, str], now: datetime, resume_after: str | None = None
    ) -> TickPlan:
        plan = TickPlan()
        objects, sidecars, plan.resume_after = self._list(resume_after)
        # Admission gets its own budget after the listing, inside Dagster's 60 s tick limit.
        listed_at = time.monotonic()
        self.deadline = max(
            min(listed_at + self.tick_budget_s, self.started + TICK_HARD_LIMIT_S),
            listed_at + MIN_ADMISSION_S,
        )
        plan.counts["listed"] = len(objects)
        # New files still young: looked at again once at the end of this tick (folder store).
        recheck: list[tuple[StoredObject, str, KnownObject | None]] = []
        for obj in objects:
            # A sidecar (added or edited) is part of its consultation's version.
            sidecar = sidecars.get(obj.key) or sidecars.get(
                str(PurePosixPath(obj.key).with_suffix(""))
            )
            token = obj.version_token + (f"|meta:{sidecar}" if sidecar else "")
            known = self.known.get(obj.key)
            if known and known.state != "deleted" and known.version_token == token:
                continue
            settled = (
                self.store.listed_objects_are_complete
                or previously_pending.get(cursor_key(obj.key)) == token
                or now - obj.modified >= self.settle
            )
            if not settled:
                if obj.size > 0 and self.recheck_s > 0:
                    recheck.append((obj, token, known))
                else:
                    self._wait(obj, token, plan)
                continue
            self._try_admit(obj, token, known, plan, previously_pending)
        self._admit_if_unchanged(recheck, plan, previously_pending)
        listed_keys = {obj.key for obj in objects}
        upper = plan.resume_after  # None: this pass reached the end of the listing
        self._mark_deleted(
            lambda key: (
                (resume_after is None or key > resume_after)
                and (upper is None or key <= upper)
                and key not in listed_keys
            ),
            plan,
        )
        self._repair_missing_partitions(plan)
        self._batch_text_consultations(plan)
        self._batch_recordings(plan)
        return plan

    def _batch_text_consultations(self, plan: TickPlan) -> None:
        """Runs of up to `text_batch_size` new text consultations: chats take well under a
        second of work each, and a run's launch takes seconds, so one launch serves many.
        Their partitions go last, each batch's together, so a batch is a range of them."""
        size = self.bucket.text_batch_size
        for start in range(0, len(plan.batchable), size):
            chunk = plan.batchable[start : start + size]
            plan.new_partitions.extend(consultation_id for consultation_id, _, _ in chunk)
            if len(chunk) == 1:
                plan.run_requests.append(_run_request(*chunk[0]))
            else:
                plan.run_requests.append(_batch_run_request(chunk, "text consultations"))

    def _batch_recordings(self, plan: TickPlan) -> None:
        """New recordings of a tick spread over as many runs as recordings are transcribed at
        once (`transcriptions_at_once`), or more to keep at most `audio_batch_size` per run.
        A lone recording, or as many as runs can start at once, still get a run each; only a
        burst shares launches, which would otherwise wait in the queue and cost a process
        start each on cores that transcription fills."""
        chunks = recording_runs(
            len(plan.recordings), self.bucket.audio_batch_size, self.bucket.transcriptions_at_once
        )
        start = 0
        for size in chunks:
            chunk = plan.recordings[start : start + size]
            start += size
            plan.new_partitions.extend(consultation_id for consultation_id, _, _ in chunk)
            if len(chunk) == 1:
                plan.run_requests.append(_run_request(*chunk[0]))
            else:
                plan.run_requests.append(_batch_run_request(chunk, "recordings"))

    def _wait(self, obj: StoredObject, token: str, plan: TickPlan) -> None:
        """Still being written: look again next tick."""
        if len(plan.pending) < MAX_PENDING_IN_CURSOR:
            plan.pending[cursor_key(obj.key)] = token
        plan.counts["waiting"] += 1

    def _admit_if_unchanged(
        self,
        recheck: list[tuple[StoredObject, str, KnownObject | None]],
        plan: TickPlan,
        previously_pending: dict[str, str],
    ) -> None:
        """A young file whose size and modification time are the same after `recheck_s` is
        complete: admitted in this tick instead of waiting for the next (a writer that is
        still copying changes one of them within a second). Anything else waits a tick."""
        if not recheck:
            return
        if self.budget <= 0 or time.monotonic() + self.recheck_s > self.deadline:
            for obj, token, _ in recheck:
                self._wait(obj, token, plan)
            return
        _pause(self.recheck_s)
        for obj, token, known in recheck:
            if time.monotonic() > self.deadline or not self._unchanged(obj, token):
                self._wait(obj, token, plan)
                continue
            self._try_admit(obj, token, known, plan, previously_pending)

    def _unchanged(self, obj: StoredObject, token: str) -> bool:
        """Same size and mtime as listed, and no sidecar appeared meanwhile (one copied just
        after its recording would otherwise make a second version and a second run)."""
        try:
            if self.store.stat(obj.key).version_token != obj.version_token:
                return False
        except (StorageError, OSError):
            return False  # gone or unreadable now: the next tick sees what it is
        if "|meta:" in token:
            return True
        for sidecar in (
            obj.key + SIDECAR_SUFFIX,
            str(PurePosixPath(obj.key).with_suffix("")) + SIDECAR_SUFFIX,
        ):
            try:
                self.store.stat(sidecar)
                return False
            except (StorageError, OSError):
                continue
        return True

    def _try_admit(
        self,
        obj: StoredObject,
        token: str,
        known: KnownObject | None,
        plan: TickPlan,
        previously_pending: dict[str, str],
    ) -> None:
        if self.budget <= 0 or time.monotonic() > self.deadline:
            # This tick's budget is spent: the object is admitted on a later tick.
            if cursor_key(obj.key) in previously_pending:
                plan.pending[cursor_key(obj.key)] = token
            plan.counts["deferred"] += 1
            return
        try:
            self._admit(obj, token, known, plan)
        except (StorageError, OSError) as exc:
            # The store hiccupped on this object (or it is unreadable): leave it out of
            # the inventory so the next tick retries it; never mark it processed.
            self._admission_failed(
                obj, token, known, plan,
                f"the bucket could not read this file ({_readable(exc)}); retrying every tick",
            )  # fmt: skip
            plan.counts["unreadable"] += 1
        except Exception as exc:
            # Anything else about this one object (its name, its shape, a row the
            # warehouse refuses): its own failure, and the tick goes on with the others.
            # It costs no run budget, so broken objects never starve the good ones.
            self.budget += 1
            self._admission_failed(
                obj, token, known, plan,
                f"the sensor could not admit this file ({type(exc).__name__}: "
                f"{_readable(exc)}); retrying every tick",
            )  # fmt: skip
            plan.counts["failed"] += 1

    def _list(
        self, resume_after: str | None
    ) -> tuple[list[StoredObject], dict[str, str], str | None]:
        """List in key order from `resume_after`; stop when the listing budget is spent and
        return where to resume, so a huge bucket is covered over several ticks."""
        objects: list[StoredObject] = []
        sidecars: dict[str, str] = {}
        deadline = self.started + self.list_budget_s
        last_key: str | None = None
        for obj in self.store.list_objects(self.bucket.incoming_prefix, start_after=resume_after):
            is_sidecar = obj.key.lower().endswith(SIDECAR_SUFFIX)
            # Stop only before a consultation, so `x.wav` and `x.wav.meta.json` (adjacent in
            # key order) are seen in the same tick.
            if not is_sidecar and last_key is not None and time.monotonic() > deadline:
                return objects, sidecars, last_key
            last_key = obj.key
            if is_sidecar:
                sidecars[obj.key[: -len(SIDECAR_SUFFIX)]] = obj.version_token
            elif not is_ignored(obj.key):
                objects.append(obj)
        return objects, sidecars, None

    def _consultation_id(self, key: str, known: KnownObject | None) -> str:
        # A known object keeps the id it was given (its partition exists under that name),
        # even after the id rule changed; only new objects get an id from today's rule.
        if known is not None:
            return known.consultation_id
        return consultation_id_for(key, self.bucket.incoming_prefix)

    def _admission_failed(
        self, obj: StoredObject, token: str, known: KnownObject | None, plan: TickPlan, reason: str
    ) -> None:
        try:
            shown = display_key(obj.key)
            consultation_id = self._consultation_id(obj.key, known)
        except Exception:
            # Even the name rules failed on this key: a status under a hash of it, no name.
            digest = cursor_key(obj.key)[:8]
            shown = f"{self.bucket.incoming_prefix}(name not shown: {digest})"
            consultation_id = f"consultation-{digest}"
        self.log.warning(f"{shown}: {reason}")
        self.statuses.set(consultation_id, shown, "failed", stage="sensor", error=reason)
        plan.pending[cursor_key(obj.key)] = token

    def _reject(
        self,
        obj: StoredObject,
        token: str,
        consultation_id: str,
        fingerprint: str | None,
        known: KnownObject | None,
        reason: str,
        plan: TickPlan,
    ) -> None:
        # Status first, inventory second: a tick that dies in between sees the object as new
        # next time and does it again, never "known" without a status.
        self.statuses.set(
            consultation_id, display_key(obj.key), "rejected", stage="sensor", error=reason
        )
        self._record(obj.key, token, obj.size, consultation_id, fingerprint, known, "rejected")
        plan.counts["rejected"] += 1

    def _admit(
        self, obj: StoredObject, token: str, known: KnownObject | None, plan: TickPlan
    ) -> None:
        self.budget -= 1  # first: an admission that fails gives it back (see scan)
        consultation_id = self._consultation_id(obj.key, known)
        if known is not None and consultation_id in self.in_batches:
            self.budget += 1
            plan.pending[cursor_key(obj.key)] = token
            plan.counts["deferred"] += 1
            return
        if obj.name_problem:
            self._reject(obj, token, consultation_id, None, known, obj.name_problem, plan)
            return
        if guess_file_type(obj.key) is None:
            self._reject(
                obj, token, consultation_id, None, known, unsupported_reason(obj.key), plan
            )
            return
        # Fingerprint only what the pipeline will read (ETag where the store has one, so no
        # download); empty and oversize files fail with their reason in their own run.
        fingerprint = (
            self.store.fingerprint(obj) if 0 < obj.size <= self.bucket.max_file_bytes else None
        )
        unchanged = (
            fingerprint is not None
            and known is not None
            and known.state == "active"
            and known.fingerprint == fingerprint
            and _sidecar_part(known.version_token) == _sidecar_part(token)
        )
        if unchanged:
            # Touched or re-copied with identical content and metadata: nothing to do.
            self._record(
                obj.key, token, obj.size, consultation_id, fingerprint, known, "active", bump=False
            )
            return
        duplicate_of = self.active_by_fingerprint.get(fingerprint) if fingerprint else None
        if duplicate_of and duplicate_of != consultation_id:
            reason = f"duplicate of consultation {duplicate_of} (identical content)"
            self._reject(obj, token, consultation_id, fingerprint, known, reason, plan)
            return
        shown = display_key(obj.key)
        # Status first, inventory second (see _reject); the partition and the run travel
        # together in this tick's result.
        self.statuses.set(consultation_id, shown, "queued", stage="sensor")
        version = self._record(
            obj.key, token, obj.size, consultation_id, fingerprint, known, "active"
        )
        if fingerprint:
            self.active_by_fingerprint[fingerprint] = consultation_id
        plan.counts["changed" if known else "new"] += 1
        # Only brand-new partitions are batched: a batch is a range of partitions added together.
        if self.has_partition is None or not self.has_partition(consultation_id):
            is_text = guess_file_type(obj.key) == FileType.TEXT
            if is_text and self.bucket.text_batch_size > 1:
                plan.batchable.append((consultation_id, shown, version))
                return
            if not is_text and self.bucket.audio_batch_size > 1:
                plan.recordings.append((consultation_id, shown, version))
                return
        plan.new_partitions.append(consultation_id)
        plan.run_requests.append(_run_request(consultation_id, shown, version))

    def _record(
        self,
        key: str,
        token: str,
        size: int,
        consultation_id: str,
        fingerprint: str | None,
        known: KnownObject | None,
        state: str,
        *,
        bump: bool = True,
    ) -> int:
        version = max((known.version if known else 0) + (1 if bump else 0), 1)
        current = KnownObject(consultation_id, token, fingerprint, version, state)
        self.inventory.record(key, known, current, size)
        self.known[key] = current
        return version

    def _mark_deleted(self, gone_if: Callable[[str], bool], plan: TickPlan) -> None:
        gone = [k for k, row in self.known.items() if row.state != "deleted" and gone_if(k)]
        if not gone:
            return
        # Results stay in the tables; a re-upload later counts as a new version.
        self.inventory.mark_deleted(gone)
        for key in gone:
            self.known[key].state = "deleted"
        plan.counts["deleted"] += len(gone)

    def _repair_missing_partitions(self, plan: TickPlan) -> None:
        """Request again, with its partition, a `queued` consultation whose partition is
        missing (a tick that died between recording it and returning its result)."""
        requested = {r.partition_key for r in plan.run_requests}
        requested |= {consultation_id for consultation_id, _, _ in plan.batchable}
        requested |= {consultation_id for consultation_id, _, _ in plan.recordings}
        # Status rows show the display key; the inventory, keyed by the real key, has the id.
        active = {
            row.consultation_id: (key, row)
            for key, row in self.known.items()
            if row.state == "active"
        }
        checks_left = MAX_PARTITION_CHECKS
        for status in self.statuses.with_status("queued"):
            consultation_id = status["consultation_id"]
            if consultation_id in requested or consultation_id not in active:
                continue
            if self.has_partition is None or checks_left <= 0:
                break
            checks_left -= 1
            if self.has_partition(consultation_id):
                # Its run was requested with it. A run that never appeared or died is the
                # recovery sensor's (defs/recovery/sensors.py), with a fresh run key.
                continue
            key, known = active[consultation_id]
            plan.new_partitions.append(consultation_id)
            plan.run_requests.append(_run_request(consultation_id, display_key(key), known.version))


def _pause(seconds: float) -> None:
    time.sleep(seconds)


def cursor_key(key: str) -> str:
    """Object keys are not kept in the cursor (Dagster stores it with every tick, and a file
    name can hold PII): a short hash stands for the key."""
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()[:16]


RESUME_STATE = "bucket_sensor.resume_after"


def _load_resume_after(warehouse: WarehouseResource, token: str | None) -> str | None:
    """Where an unfinished listing resumes: the key lives in the warehouse's internal
    `sensor_state`, the cursor holds only its hash; a mismatch (a tick that died between
    the two writes) starts a fresh pass, which is always safe."""
    if not token:
        return None
    key = warehouse.inventory.get_state(RESUME_STATE)
    return key if key is not None and cursor_key(key) == token else None


def _sidecar_part(token: str) -> str:
    return token.partition("|meta:")[2]


def _readable(exc: BaseException, limit: int = 300) -> str:
    """An error as a status reason: its first line only (a database error goes on with the
    statement and every value), PII redacted (messages quote paths), bounded."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    text = redact_text(display_key(text))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _run_request(consultation_id: str, source_key: str, version: int) -> RunRequest:
    return RunRequest(
        partition_key=consultation_id,
        # One run per content version: re-dropping identical content never runs twice, and a
        # changed file (even back to an older content) always gets a fresh run.
        run_key=f"{consultation_id}@v{version}",
        tags={SOURCE_KEY_TAG: source_key, VERSION_TAG: str(version)},
    )


def _in_unfinished_batches(instance: DagsterInstance) -> set[str]:
    runs = instance.get_runs(
        RunsFilter(job_name=process_consultation_job.name, statuses=UNFINISHED_RUNS)
    )
    return {member for run in runs for member in batch_members(run.tags) or {}}


def recording_runs(count: int, batch_size: int, at_once: int) -> list[int]:
    """Sizes of the runs `count` new recordings go in, in order: at least as many runs as
    recordings are transcribed at once (each gets a core), at most `batch_size` recordings
    each, sizes within one of each other so the runs finish together."""
    if count == 0:
        return []
    runs = max(math.ceil(count / max(1, batch_size)), min(count, max(1, at_once)))
    if batch_size <= 1:
        runs = count
    share, extra = divmod(count, runs)
    return [share + 1 if i < extra else share for i in range(runs)]


def _batch_run_request(chunk: list[tuple[str, str, int]], what: str) -> RunRequest:
    members = {consultation_id: version for consultation_id, _, version in chunk}
    digest = hashlib.sha1(json.dumps(members, sort_keys=True).encode()).hexdigest()[:16]
    return RunRequest(
        run_key=f"batch:{digest}",
        tags={
            ASSET_PARTITION_RANGE_START_TAG: chunk[0][0],
            ASSET_PARTITION_RANGE_END_TAG: chunk[-1][0],
            # The range is resolved when the run starts; only these members are processed.
            BATCH_TAG: json.dumps(members, separators=(",", ":")),
            SOURCE_KEY_TAG: f"{len(chunk)} {what}",
        },
    )


BUCKET_SERVICE = "bucket"


def build_bucket_sensor(interval_s: int = 10) -> SensorDefinition:
    """The sensor, ticking every `interval_s` (CSCOACH_SENSOR_INTERVAL_S); how it admits
    files comes from the bucket resource's fields."""

    @sensor(
        name="consultation_bucket_sensor",
        job=process_consultation_job,
        minimum_interval_seconds=interval_s,
        default_status=DefaultSensorStatus.RUNNING,
        description="Finds new or changed consultations under incoming/ and requests their runs "
        "(a partition each; new chats, and bursts of recordings, several per run).",
    )
    def consultation_bucket_sensor(
        context: SensorEvaluationContext, bucket: BucketResource, warehouse: WarehouseResource
    ) -> SensorResult | SkipReason:
        return scan_bucket(context, bucket, warehouse)

    return consultation_bucket_sensor


def scan_bucket(
    context: SensorEvaluationContext, bucket: BucketResource, warehouse: WarehouseResource
) -> SensorResult | SkipReason:
    """One tick: scan, record, and return the runs with their partitions and the cursor."""
    started = time.monotonic()
    cursor = json.loads(context.cursor) if context.cursor else {}
    scanner = BucketScanner(
        bucket,
        warehouse,
        log=context.log,
        has_partition=lambda key: context.instance.has_dynamic_partition(
            consultation_partitions.name, key
        ),
        in_batches=_in_unfinished_batches(context.instance),
    )
    resume_after = _load_resume_after(warehouse, cursor.get("resume"))
    try:
        plan = scanner.scan(cursor.get("pending", {}), datetime.now(tz=UTC), resume_after)
    except (StorageError, OSError) as exc:
        # The listing failed: the tick fails (Dagster shows it) and the alerts say so.
        warehouse.health.observe(
            BUCKET_SERVICE, "unreachable", healthy="reachable",
            detail=f"{type(exc).__name__}: {_readable(exc)}",
        )  # fmt: skip
        raise
    warehouse.health.observe(BUCKET_SERVICE, "reachable", healthy="reachable")
    context.log.info(
        f"bucket scan in {time.monotonic() - started:.2f} s: {plan.counts}"
        + (
            f"; listing resumes after {display_key(plan.resume_after)!r}"
            if plan.resume_after
            else ""
        )
    )
    state: dict[str, Any] = {"pending": plan.pending}
    if plan.resume_after:
        warehouse.inventory.set_state(RESUME_STATE, plan.resume_after)
        state["resume"] = cursor_key(plan.resume_after)
    new_cursor = json.dumps(state, sort_keys=True)
    if not plan.run_requests and not plan.new_partitions:
        context.update_cursor(new_cursor)
        return SkipReason(f"no new consultations ({plan.counts})")
    # Every run's partition is in the same result (Dagster skips those that exist already):
    # both _admit and _repair_missing_partitions add the partition of each run they request.
    # Batched partitions keep their order at the end: each batch run is a range of them.
    batched = [c for c, _, _ in plan.recordings] + [c for c, _, _ in plan.batchable]
    partitions = sorted(set(plan.new_partitions) - set(batched)) + batched
    return SensorResult(
        run_requests=plan.run_requests,
        dynamic_partitions_requests=[consultation_partitions.build_add_request(partitions)],
        cursor=new_cursor,
    )
