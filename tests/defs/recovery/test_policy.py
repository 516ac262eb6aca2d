"""Reading a failed run's true reason from its events: our steps' own reason and kind win; an
unexpected error is an `error`; a run Dagster itself interrupted (Ctrl-C on `make dev`, a
deploy) is an outage, retried later like any other, not the file's fault."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from cscoach_pipeline.defs.recovery.policy import FailureKind, failure_from_events


def _step_failure(step: str, *, metadata: dict[str, Any] | None = None, error: Any = None) -> Any:
    user = SimpleNamespace(metadata=metadata) if metadata is not None else None
    data = SimpleNamespace(user_failure_data=user, error=error)
    return SimpleNamespace(
        dagster_event=SimpleNamespace(
            event_type_value="STEP_FAILURE", step_key=step, step_failure_data=data
        )
    )


def _error(cls_name: str, message: str, cause: Any = None) -> Any:
    return SimpleNamespace(cls_name=cls_name, message=message, cause=cause)


def test_a_steps_own_reason_and_kind_win() -> None:
    event = _step_failure(
        "consultation_audio",
        metadata={"failure_kind": "input", "reason": "the file has no audio stream"},
        error=_error("Failure", "the file has no audio stream"),
    )
    failure = failure_from_events([event], None)
    assert (failure.kind, failure.reason) == (FailureKind.INPUT, "the file has no audio stream")


def test_an_unexpected_error_is_an_error() -> None:
    event = _step_failure("transcript", error=_error("KeyError", "'segments'\nmore"))
    failure = failure_from_events([event], None)
    assert failure.kind == FailureKind.ERROR
    assert failure.reason == "transcript failed unexpectedly: KeyError: 'segments'"


def test_an_interrupted_run_is_an_outage_to_retry() -> None:
    interrupted = _error("DagsterExecutionInterruptedError", "")
    event = _step_failure("raw_transcript", error=interrupted)
    failure = failure_from_events([event], None)
    assert failure.kind == FailureKind.OUTAGE
    assert failure.reason == "raw_transcript was interrupted: Dagster stopped during the run"


def test_no_failed_step_means_the_run_itself_failed() -> None:
    failure = failure_from_events([], "worker died")
    assert (failure.kind, failure.reason) == (FailureKind.OUTAGE, "the run failed: worker died")
