"""What every consultation asset shares: finding its source object, checking the run still
owns it, and recording failures with their kind (the file's fault, or an outage to retry).

A file that cannot be read ends where it was found: the step that reads it records the
reason, logs a failed `input_readable` check on its own partition and materializes nothing,
so everything downstream is skipped and the run succeeds. One corrupt upload is a red check
beside a grey (skipped) branch, not a graph in red; the consultation is `failed` in
`consultation_status` with its reason, and the alert and the run tag say it too."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    AssetExecutionContext,
    AssetObservation,
    AssetsDefinition,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    RetryRequested,
    multi_asset,
)
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    InternalError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from cscoach_pipeline.defs.analysis.analyzers import AnalysisError
from cscoach_pipeline.defs.checks import (
    INPUT_READABLE,
    INPUT_READABLE_TEXT,
    CheckOutcome,
    consultation_checks,
    input_readable,
)
from cscoach_pipeline.defs.ingest.context import ConsultationContext
from cscoach_pipeline.defs.ingest.partition_keys import display_key
from cscoach_pipeline.defs.ingest.storage import ObjectNotFound, StorageError
from cscoach_pipeline.defs.ingest.storage.base import DISK_ERRNOS
from cscoach_pipeline.defs.partitions import CONSULTATION_GROUP, consultation_partitions
from cscoach_pipeline.defs.privacy.pii import redact_text
from cscoach_pipeline.defs.recovery.policy import (
    AGENT_TAG,
    FAILURE_TAG,
    SEVERAL,
    TEAM_TAG,
    VERSION_TAG,
    FailureKind,
    batch_members,
    failure_tag_value,
    run_attempt,
)
from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.errors import ConsultationInputError


@dataclass(frozen=True)
class ConsultationSource:
    consultation_id: str
    source_key: str  # the real object key: only for reading the bucket
    version: int

    @property
    def shown_key(self) -> str:
        """The key as tables, metadata and logs show it (no PII from the file name)."""
        return display_key(self.source_key)


class InputRejected(Failure):
    """The file's own fault (unreadable, empty, too large, a missing file it needs): it will
    not get better by retrying."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(
            description=reason,
            metadata={"reason": reason, "stage": stage, "failure_kind": FailureKind.INPUT.value},
        )
        self.stage = stage
        self.reason = reason


class Superseded(Exception):
    """A newer version of the file exists: this run must not write results."""


def source_of(warehouse: WarehouseResource, consultation_id: str) -> ConsultationSource:
    rows = warehouse.inventory.objects_of(consultation_id)
    active = [r for r in rows if r["state"] != "rejected"] or rows
    if not active:
        raise Failure(
            description=f"consultation {consultation_id!r} is not in the bucket inventory; "
            "partitions are added by the bucket sensor"
        )
    row = max(active, key=lambda r: r["updated_at"])
    return ConsultationSource(consultation_id, row["source_key"], row["version"])


# Step retries inside the run ride out a blip of the bucket, the warehouse or the disk
# (RecoveryResource: by default waits of 5 s and 15 s); a longer outage fails the run and the
# recovery sensor retries the consultation later with a fresh run (defs/recovery/sensors.py).

# The store's own disk errors, and a read-only filesystem (a local scratch disk too).
_DISK_ERRNOS = {*DISK_ERRNOS, errno.EROFS}


def outage_reason(exc: BaseException) -> str | None:
    """A readable reason when `exc` is an infrastructure outage (worth retrying later),
    else None. Database messages keep only the driver's first line: never row values."""
    if isinstance(exc, ObjectNotFound):
        return None
    if isinstance(exc, StorageError):
        return f"the bucket was unavailable: {exc}"
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(
            exc, OperationalError | InterfaceError | InternalError
        ):
            first = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            return f"the warehouse was unavailable: {first}"
        return None
    if isinstance(exc, DisconnectionError | PoolTimeoutError):
        return f"the warehouse was unavailable: {type(exc).__name__}"
    if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
        return f"the disk failed: {exc.strerror or exc}"
    if isinstance(exc, ConnectionError | TimeoutError):
        return f"a service was unreachable: {type(exc).__name__}: {exc}"
    return None


def _record_failure(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    source: ConsultationSource,
    stage: str,
    reason: str,
    kind: FailureKind,
) -> None:
    try:
        warehouse.statuses.set(
            source.consultation_id,
            source.shown_key,
            "failed",
            stage=stage,
            error=reason,
            run_id=context.run_id,
            attempt=run_attempt(context.run.tags),
            failure_kind=kind.value,
        )
    except SQLAlchemyError as exc:
        # The warehouse itself is down: the run-failure sensor records the reason (taken from
        # this step's failure event) once it is back.
        context.log.warning(f"could not record the failure: {outage_reason(exc) or exc}")
    if context.has_partition_key and batch_members(context.run.tags) is None:
        # The reason at the top of the run's page and in the Runs list, for a run of one
        # consultation (a batch run's tag is set when it is settled: it sums up its members).
        context.instance.add_run_tags(
            context.run_id, {FAILURE_TAG: failure_tag_value(redact_text(f"{stage}: {reason}"))}
        )


def _fail(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    source: ConsultationSource,
    stage: str,
    reason: str,
    kind: FailureKind = FailureKind.INPUT,
    rejected: bool = False,
) -> NoReturn:
    # Store messages quote the object key: show it as tables do, without PII from the name.
    reason = reason.replace(source.source_key, source.shown_key)
    _record_failure(context, warehouse, source, stage, reason, kind)
    if rejected:
        raise InputRejected(stage, reason) from None
    raise Failure(
        description=reason,
        metadata={"reason": reason, "stage": stage, "failure_kind": kind.value},
    ) from None


def record_status(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    source: ConsultationSource,
    status: str,
    stage: str,
    error: str | None = None,
) -> None:
    """A status written by a step: with its run and attempt, under the shown key."""
    warehouse.statuses.set(
        source.consultation_id,
        source.shown_key,
        status,
        stage=stage,
        error=error,
        run_id=context.run_id,
        attempt=run_attempt(context.run.tags),
    )


def check_current(
    context: AssetExecutionContext, source: ConsultationSource, started_for: int | None = None
) -> None:
    """A run writes results only for the version it was started for: once the file was
    replaced, the newer version's run owns the consultation."""
    if started_for is None and context.run.tags.get(VERSION_TAG) is not None:
        started_for = int(context.run.tags[VERSION_TAG])
    if started_for is not None and started_for < source.version:
        raise Superseded(
            f"superseded: this run was started for version {started_for} of the file, and "
            f"version {source.version} has arrived since; its run writes the results"
        )


def _step_retries(context: AssetExecutionContext) -> tuple[int, float]:
    # Every consultation asset takes the `recovery` resource for this; defaults otherwise.
    recovery = getattr(context.resources, "recovery", None) or RecoveryResource()
    return recovery.step_retries, recovery.step_retry_base_s


def _outage_retry(context: AssetExecutionContext, reason: str, exc: BaseException) -> None:
    retries, base_s = _step_retries(context)
    if context.retry_number < retries:
        context.log.warning(f"{reason}; retrying this step")
        raise RetryRequested(
            max_retries=retries, seconds_to_wait=base_s * 3**context.retry_number
        ) from exc


def _attempts(context: AssetExecutionContext) -> str:
    return f"after {_step_retries(context)[0] + 1} attempts in this run"


@contextmanager
def consultation_step(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    stage: str,
    partition_key: str | None = None,
    version: int | None = None,
) -> Iterator[ConsultationSource]:
    """Runs one step. A bad-input or analysis error fails this partition with its reason in
    `consultation_status` and the UI, and never retries (the file will not get better). An
    outage (bucket, warehouse, disk) retries the step with backoff; when it persists the
    consultation fails as an outage, which the recovery sensor retries with a fresh run."""
    key = partition_key or context.partition_key
    try:
        source = source_of(warehouse, key)
    except SQLAlchemyError as exc:
        reason = outage_reason(exc) or f"the warehouse failed: {type(exc).__name__}"
        _outage_retry(context, reason, exc)
        raise Failure(
            description=f"{reason} ({_attempts(context)})",
            metadata={"reason": reason, "stage": stage, "failure_kind": FailureKind.OUTAGE.value},
        ) from None
    try:
        if partition_key is None:  # per-consultation runs carry their version
            check_current(context, source)
        elif version is not None:  # a batch run carries each member's
            check_current(context, source, version)
        yield source
    except Superseded as exc:
        # Not a failure of the consultation: leave its status to the newer run.
        raise Failure(
            description=str(exc),
            metadata={"stage": stage, "failure_kind": FailureKind.SUPERSEDED.value},
        ) from None
    except ObjectNotFound as exc:
        missing = f"a file this step needs is missing: {exc}"
        _fail(context, warehouse, source, stage, missing, rejected=True)
    except ConsultationInputError as exc:
        _fail(context, warehouse, source, stage, str(exc), rejected=True)
    except AnalysisError as exc:
        # Not retried either, but the model's answer, not the file: a failed step.
        _fail(context, warehouse, source, stage, str(exc))
    except (Failure, RetryRequested):
        raise
    except Exception as exc:
        reason = outage_reason(exc)
        if reason is None:
            reason = f"{stage} failed unexpectedly: {type(exc).__name__}: {exc}"
            reason = reason.replace(source.source_key, source.shown_key)
            _record_failure(context, warehouse, source, stage, reason, FailureKind.ERROR)
            raise
        _outage_retry(context, reason, exc)
        _fail(
            context, warehouse, source, stage,
            f"{reason} ({_attempts(context)})", FailureKind.OUTAGE,
        )  # fmt: skip


def tag_run_with_people(context: AssetExecutionContext, who: ConsultationContext) -> None:
    """Agent id and team as run tags, so the Runs page filters by them (the agent's name
    stays in the warehouse, where retention reaches it). A batch run of several agents'
    consultations says `(several)`."""
    wanted = {AGENT_TAG: who.agent_id, TEAM_TAG: who.team}
    current = context.instance.get_run_by_id(context.run_id)
    tags = current.tags if current is not None else context.run.tags
    new: dict[str, str] = {}
    for tag, value in wanted.items():
        if not value:
            continue
        value = value[:200]
        if tag not in tags:
            new[tag] = value
        elif tags[tag] not in (value, SEVERAL):
            new[tag] = SEVERAL
    if new:
        context.instance.add_run_tags(context.run_id, new)


def is_superseded(failure: Failure) -> bool:
    kind = failure.metadata.get("failure_kind")
    return getattr(kind, "value", kind) == FailureKind.SUPERSEDED.value


def run_members(context: AssetExecutionContext) -> list[tuple[str, int]] | None:
    """A batch run's members in its partition range, with the versions it was started for;
    None for a run of one consultation (or a backfill, which has no members)."""
    members = batch_members(context.run.tags)
    if members is None:
        return None
    in_range = set(context.partition_keys)
    if in_range != set(members):
        # Another writer's partition landed inside the range, or a member left it: the
        # range would materialize what this run never worked on. Its members run again on
        # their own (the run-failure sensor queues them).
        raise Failure(
            description=f"this batch's partition range holds {len(in_range)} partitions for "
            f"its {len(members)} consultations; they run again one by one",
            metadata={"failure_kind": FailureKind.ERROR.value},
        )
    return [(key, members[key]) for key in context.partition_keys]


@dataclass(frozen=True)
class StepResult:
    """What `work` gives for one consultation: its metadata and its checks' outcomes."""

    metadata: Mapping[str, Any]
    checks: Sequence[CheckOutcome] = ()


def _done(
    result: Mapping[str, Any] | StepResult,
    key: str,
    checked: list[tuple[str, CheckOutcome]],
) -> Mapping[str, Any]:
    """A consultation's metadata; its check outcomes kept in `checked` for after the step's
    materialization."""
    if not isinstance(result, StepResult):
        return result
    checked += [(key, outcome) for outcome in result.checks]
    return result.metadata


def _checks_input(context: AssetExecutionContext) -> bool:
    return AssetCheckKey(context.asset_key, INPUT_READABLE) in context.selected_asset_check_keys


def _rejection(
    context: AssetExecutionContext, key: str, rejected: InputRejected
) -> AssetCheckEvaluation:
    outcome = input_readable(False, rejected.stage, rejected.reason)  # redacts the reason
    context.log.error(f"{key}: {outcome.description}")
    return outcome.evaluation(context.instance, context.asset_key, key, of_materialization=False)


def materialize_consultations(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    stage: str,
    work: Callable[[ConsultationSource], Mapping[str, Any] | StepResult],
) -> Iterator[MaterializeResult | AssetCheckEvaluation]:
    """One step of the per-consultation job: `work` gives a consultation's metadata (and its
    checks' outcomes, logged after the materialization on each consultation's partition,
    pointing at it).

    An asset with the `input_readable` check (`input_reading_asset`) ends a file it cannot
    read with that check failed and no materialization, so its downstream is skipped.

    In a batch run (several new chats, one launch) each member is worked on in turn with its
    own failure handling and its metadata goes on its partition as an observation; if any
    member failed, the step fails after the others, and the run-failure sensor runs the
    members that did not fail again on their own (defs/recovery/run_status.py)."""
    checked: list[tuple[str, CheckOutcome]] = []
    reads_input = _checks_input(context)

    def done(result: Mapping[str, Any] | StepResult, key: str) -> Mapping[str, Any]:
        if reads_input:
            checked.append((key, input_readable(True)))
        return _done(result, key, checked)

    members = run_members(context)
    if members is None:
        key = context.partition_key
        try:
            with consultation_step(context, warehouse, stage) as source:
                metadata = done(work(source), key)
        except InputRejected as exc:
            if not reads_input:
                raise
            yield _rejection(context, key, exc)
            return
        yield MaterializeResult(asset_key=context.asset_key, metadata=metadata)
    else:
        failures: dict[str, str] = {}
        for key, version in members:
            try:
                with consultation_step(context, warehouse, stage, key, version) as source:
                    metadata = done(work(source), key)
            except InputRejected as exc:
                if reads_input:
                    yield _rejection(context, key, exc)
                failures[key] = exc.description or "failed"
                continue
            except Failure as exc:
                if is_superseded(exc):
                    # A newer version of this file runs on its own: not a failure of the batch.
                    context.log.info(f"{key}: {exc.description}")
                    continue
                failures[key] = exc.description or "failed"
                continue
            except RetryRequested:
                raise  # an outage: the whole step is retried (its writes are idempotent)
            except Exception as exc:  # recorded on the consultation by consultation_step
                failures[key] = f"{type(exc).__name__}: {exc}"
                continue
            context.log_event(AssetObservation(context.asset_key, partition=key, metadata=metadata))
        if failures:
            listed = "; ".join(f"{k}: {v}" for k, v in sorted(failures.items())[:10])
            raise Failure(
                description=f"{len(failures)} of {len(members)} consultations of this batch "
                f"failed ({listed}); the others run again on their own",
                metadata={"failed": MetadataValue.json(failures), "stage": stage},
            )
        yield MaterializeResult(
            asset_key=context.asset_key,
            metadata={"batch_of": len(members), "details": "each consultation's observation"},
        )
    for key, outcome in checked:
        yield outcome.evaluation(context.instance, context.asset_key, key)


def input_reading_asset(
    name: str,
    *,
    deps: Sequence[Any],
    kinds: set[str],
    description: str,
    op_tags: Mapping[str, str] | None = None,
) -> Callable[[Callable[..., Any]], AssetsDefinition]:
    """A per-consultation asset whose step reads the original (or what was made from it):
    skippable, with its `input_readable` check. Checks are logged per consultation, not
    returned as outputs: with `can_subset` they are optional outputs."""
    return multi_asset(
        name=name,
        specs=[
            AssetSpec(
                name,
                deps=deps,
                kinds=kinds,
                code_version="1",
                group_name=CONSULTATION_GROUP,
                description=description,
                skippable=True,
            )
        ],
        partitions_def=consultation_partitions,
        check_specs=consultation_checks(name, [(INPUT_READABLE, INPUT_READABLE_TEXT)]),
        can_subset=True,
        op_tags=op_tags,
    )
