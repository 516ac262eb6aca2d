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
    PreviewWarning,
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

    def evaluation(self, asset_key: AssetKey, partition: str) -> AssetCheckEvaluation:
        return AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=self.name,
            passed=self.passed,
            partition=partition,
            metadata=self.metadata,
            description=self.description,
            severity=AssetCheckSeverity.ERROR if self.error else AssetCheckSeverity.WARN,
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
