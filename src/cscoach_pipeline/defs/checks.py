"""Per-consultation asset checks. A step computes plain `CheckOutcome`s (what the check found,
in words and figures, never the PII itself) and logs them on the consultation's own
partition, so one doubtful file shows as a failed check where it is, beside an otherwise
green graph. Checks never fail a run: they tell a supervisor what to look at."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    PreviewWarning,
)

# Not exported at the top level: the pointer an evaluation keeps to what it checked.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData,
)

from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.privacy.pii import redact_text


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    name: str
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)
    # ERROR for what must not happen (PII left), WARN for what deserves a look.
    error: bool = False

    def evaluation(
        self,
        instance: DagsterInstance,
        asset_key: AssetKey,
        partition: str,
        of_materialization: bool = True,
    ) -> AssetCheckEvaluation:
        """The evaluation on `partition`, pointing at its latest materialization: only then
        does the UI count it as the partition's current result (Checks → Partitions). So it
        is made after the step's materialization was recorded. A step that materialized
        nothing (its input was unreadable) points at nothing."""
        target = (
            _latest_materialization(instance, asset_key, partition) if of_materialization else None
        )
        return AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=self.name,
            passed=self.passed,
            partition=partition,
            metadata=self.metadata,
            description=self.description,
            severity=AssetCheckSeverity.ERROR if self.error else AssetCheckSeverity.WARN,
            target_materialization_data=target,
        )


@dataclass(frozen=True, slots=True)
class PendingCheck:
    """An outcome to log on `partition` once the step has recorded its materialization."""

    asset_key: AssetKey
    partition: str
    outcome: CheckOutcome

    def evaluation(self, instance: DagsterInstance) -> AssetCheckEvaluation:
        return self.outcome.evaluation(instance, self.asset_key, self.partition)


def _latest_materialization(
    instance: DagsterInstance, asset_key: AssetKey, partition: str
) -> AssetCheckEvaluationTargetMaterializationData | None:
    # As Dagster's own AssetCheckResult finds it for a partitioned step.
    found = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    )
    if not found.records:
        return None
    latest = found.records[0]
    return AssetCheckEvaluationTargetMaterializationData(
        storage_id=latest.storage_id, run_id=latest.event_log_entry.run_id,
        timestamp=latest.timestamp,
    )  # fmt: skip


INPUT_READABLE = "input_readable"
INPUT_READABLE_TEXT = (
    "the original could be read at this stage; a file that cannot ends here, with its "
    "reason, and nothing downstream runs for it"
)


def input_readable(passed: bool, stage: str = "", reason: str = "") -> CheckOutcome:
    """Whether a step that reads the original could: failed, it says where and why."""
    if passed:
        return CheckOutcome(INPUT_READABLE, True, "read")
    shown = redact_text(reason)
    return CheckOutcome(
        INPUT_READABLE,
        False,
        f"{stage}: {shown}",
        {"stage": stage, "reason": shown, "failure_kind": "input"},
        error=True,
    )


def guarded_check(name: str, check: Callable[[], CheckOutcome]) -> CheckOutcome:
    """A check that raises is a failed check saying so, never a failed step."""
    try:
        return check()
    except Exception as exc:
        reason = redact_text(str(exc))[:200]
        return CheckOutcome(
            name, False, f"the check could not run: {type(exc).__name__}", {"error": reason}
        )


def consultation_checks(asset: str, checks: Sequence[tuple[str, str]]) -> list[AssetCheckSpec]:
    """Check specs partitioned like the consultation assets: (name, description) each."""
    with warnings.catch_warnings():
        # Partitioned checks are a preview feature of Dagster 1.13: said once here, not at
        # every load of the code location.
        warnings.simplefilter("ignore", PreviewWarning)
        return [
            AssetCheckSpec(
                name, asset=asset, description=text, partitions_def=consultation_partitions
            )
            for name, text in checks
        ]
