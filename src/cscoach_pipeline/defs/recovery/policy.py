"""Recovery rules, plain Python: what kind a failure is, when an outage is retried, which
run tags carry the version and attempt, and how a dead run's reason is read back from
Dagster's event log. The sensors in `sensors.py` and `run_status.py` beside it apply them;
nothing here talks to the warehouse."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

# Run tags set by the sensors: the content version a run was started for and its attempt.
SOURCE_KEY_TAG = "cscoach/source_key"
VERSION_TAG = "cscoach/version"
ATTEMPT_TAG = "cscoach/attempt"
# Whose consultation the run is, set by the upload step (filterable on the Runs page),
# and a failed run's readable reason, set when its consultation's outcome is settled.
AGENT_TAG = "cscoach/agent_id"
TEAM_TAG = "cscoach/team"
FAILURE_TAG = "cscoach/failure"
SEVERAL = "(several)"
# A run of several new text consultations (one launch for many): {consultation id: version}.
BATCH_TAG = "cscoach/batch"


def failure_tag_value(reason: str, limit: int = 250) -> str:
    """A reason as the `cscoach/failure` run tag: its first line, bounded."""
    text = reason.strip()
    first = text.splitlines()[0] if text else "failed"
    return first if len(first) <= limit else first[: limit - 3] + "..."


def batch_members(tags: Mapping[str, str]) -> dict[str, int] | None:
    """The consultations (and versions) a batch run was started for; None for other runs."""
    raw = tags.get(BATCH_TAG)
    if not raw:
        return None
    return {str(k): int(v) for k, v in json.loads(raw).items()}


# Statuses that end a consultation's processing (for its current version).
FINAL_STATUSES = frozenset({"succeeded", "failed", "no_speech", "rejected"})
# What an operator may run again (a rejected file never runs: rename or replace it).
REQUEUABLE_STATUSES = ("failed", "no_speech", "succeeded", "queued")


class FailureKind(StrEnum):
    INPUT = "input"  # the file itself: retrying cannot help
    OUTAGE = "outage"  # warehouse, bucket, disk, a dead worker: retried with backoff
    ERROR = "error"  # an unexpected error in our code: shown with its type, not retried
    CANCELLED = "cancelled"  # an operator cancelled the run: re-queue by hand
    SUPERSEDED = "superseded"  # a newer version of the file took over


@dataclass(frozen=True)
class RetryPolicy:
    """Outages are retried `max_attempts - 1` times, waiting base, base*4, base*16 ..."""

    max_attempts: int = 4
    backoff_base_s: float = 60.0
    backoff_max_s: float = 3600.0

    def delay(self, attempt: int) -> timedelta:
        """How long to wait after failed attempt number `attempt` (1-based)."""
        return timedelta(
            seconds=min(self.backoff_base_s * 4 ** max(attempt - 1, 0), self.backoff_max_s)
        )

    def next_attempt_at(self, attempt: int, now: datetime) -> datetime | None:
        """When to try again, or None once the attempts are used up."""
        return now + self.delay(attempt) if attempt < self.max_attempts else None


def run_attempt(tags: Mapping[str, str]) -> int:
    try:
        return max(int(tags.get(ATTEMPT_TAG, "1")), 1)
    except ValueError:
        return 1


def retry_run_key(consultation_id: str, version: int, attempt: int) -> str:
    """A fresh run key per retry: the first run's key is used up by its failed run, so a
    retry under the same key would be skipped as 'already completed'."""
    return f"{consultation_id}@v{version}.a{attempt}.{time.time_ns():x}"


GAVE_UP = "gave up after"


def outage_message(
    reason: str, attempt: int, policy: RetryPolicy, retry_at: datetime | None
) -> str:
    if retry_at is None:
        return f"{reason} ({GAVE_UP} {attempt} attempts)"
    return (
        f"{reason} (attempt {attempt} of {policy.max_attempts} failed; retrying at "
        f"{retry_at.strftime('%Y-%m-%d %H:%M:%S')} UTC)"
    )


@dataclass(frozen=True)
class RunFailure:
    """Why a run ended without success, as read from its events."""

    reason: str
    kind: FailureKind
    stage: str


_STARTED_PROCESS = re.compile(r"Started process for run \(pid: (\d+)\)")


def failure_from_events(events: Iterable[Any], run_failure_message: str | None) -> RunFailure:
    """The true reason of a failed run: the first failed step's own reason and kind (our
    steps attach them as metadata), else the error it raised, else, when no step failed at
    all, the run's own message (a worker that died, a run that never started)."""
    for event in events:
        dagster_event = getattr(event, "dagster_event", None)
        if dagster_event is None or dagster_event.event_type_value != "STEP_FAILURE":
            continue
        data = dagster_event.step_failure_data
        stage = dagster_event.step_key or "run"
        metadata = (data.user_failure_data.metadata if data.user_failure_data else None) or {}
        kind_value = _metadata_text(metadata.get("failure_kind"))
        reason = _metadata_text(metadata.get("reason"))
        if kind_value in _KINDS:
            stage = _metadata_text(metadata.get("stage")) or stage
            error_text = data.error.message.strip() if data.error else ""
            return RunFailure(reason or error_text, FailureKind(kind_value), stage)
        error = data.error
        if error is not None:
            cause = error.cause or error
            if INTERRUPTED in (error.cls_name, cause.cls_name):
                # Dagster itself was stopped (Ctrl-C, a deploy): nothing wrong with the file.
                return RunFailure(
                    f"{stage} was interrupted: Dagster stopped during the run",
                    FailureKind.OUTAGE,
                    stage,
                )
            return RunFailure(
                f"{stage} failed unexpectedly: {cause.cls_name}: "
                + (cause.message.strip().splitlines() or [""])[0],
                FailureKind.ERROR,
                stage,
            )
    message = (run_failure_message or "").strip() or "the run failed before any step ran"
    return RunFailure(f"the run failed: {message}", FailureKind.OUTAGE, "run")


_KINDS = frozenset(kind.value for kind in FailureKind)
INTERRUPTED = "DagsterExecutionInterruptedError"


def _metadata_text(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", getattr(value, "text", value)))


def worker_pid(events: Iterable[Any]) -> int | None:
    """The run worker's pid from its 'Started process for run (pid: N)' engine event."""
    pid: int | None = None
    for event in events:
        match = _STARTED_PROCESS.search(event.message or "")
        if match:
            pid = int(match.group(1))
    return pid
