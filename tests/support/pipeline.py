"""Drives the real Dagster objects the way the daemon does: evaluate the bucket sensor, apply
its dynamic-partition requests to the instance, execute the requested partition runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from dagster import (
    ConfigurableResource,
    DagsterInstance,
    ExecuteInProcessResult,
    RunRequest,
    SensorResult,
    SkipReason,
    build_sensor_context,
)

from cscoach_pipeline.definitions import build_defs, build_resources
from cscoach_pipeline.defs.analysis.prompts import PROMPT_VERSION_TAG
from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from cscoach_pipeline.defs.jobs import process_consultation_job, reanalyze_consultations_job
from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.recovery.resources import RecoveryResource
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.settings import Settings
from tests.support.backends import BucketBackend, LocalBackend

R = TypeVar("R", bound=ConfigurableResource)

BI_TABLES = (
    "consultations",
    "consultation_status",
    "transcript_segments",
    "analyses",
    "quality_metrics",
    "scorecard_answers",
    "category_matches",
    "qa_reviews",
    "review_errors",
    "scorecard_calibration",
)


@dataclass
class PipelineHarness:
    root: Path
    backend: BucketBackend | None = None
    warehouse_url: str | None = None
    max_file_bytes: int = 50 * 1024 * 1024
    analyzer: AnalyzerResource = field(default_factory=AnalyzerResource)
    settle_seconds: float = 0.0
    # One run per chat unless a test batches them (tests/test_text_batches.py).
    text_batch_size: int = 1
    audio_batch_size: int = 1
    cursor: str | None = None
    results: dict[str, ExecuteInProcessResult] = field(default_factory=dict)
    originals_before: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bucket_root = self.root / "bucket"
        self.incoming = self.bucket_root / "incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)
        self.backend = self.backend or LocalBackend(self.bucket_root)
        self.warehouse_url = self.warehouse_url or f"sqlite:///{self.root / 'warehouse.db'}"
        # The real settings and definitions, as the code location builds them; the bucket's
        # backend options, the analyzer and fast retries are swapped in.
        self.settings = Settings(
            bucket_url=self.backend.url,
            warehouse_url=self.warehouse_url,
            max_file_mb=self.max_file_bytes / 1024 / 1024,
            settle_seconds=self.settle_seconds,
            text_batch_size=self.text_batch_size,
            audio_batch_size=self.audio_batch_size,
        )
        self.resources: dict[str, Any] = build_resources(self.settings)
        self.resources |= {
            "bucket": with_fields(self.resources["bucket"], **self.backend.resource_kwargs),
            "analyzer": self.analyzer,
            "recovery": RecoveryResource(
                backoff_base_s=0.0, stale_after_s=120.0, step_retry_base_s=0.0
            ),
        }
        self.rebuild()
        self.instance = DagsterInstance.ephemeral()

    def rebuild(self) -> None:
        """(Re)build the Definitions after swapping a resource."""
        self.defs = build_defs(self.settings, resources=self.resources)
        self.sensor = self.defs.get_sensor_def("consultation_bucket_sensor")

    @property
    def warehouse(self) -> WarehouseResource:
        return self.resources["warehouse"]

    def drop(
        self, relative: str, data: bytes | Path, metadata: dict[str, str] | None = None
    ) -> Any:
        """Put a file under incoming/ (a Path on the folder backend, the key elsewhere)."""
        assert self.backend is not None
        content = data.read_bytes() if isinstance(data, Path) else data
        return self.backend.put(f"incoming/{relative}", content, metadata)

    def artifact(self, consultation_id: str, name: str) -> bytes:
        assert self.backend is not None
        return self.backend.get(f"artifacts/{consultation_id}/{name}")

    def evaluate(self, **bucket_fields: Any) -> tuple[SensorResult | SkipReason, Any]:
        """One evaluation of the sensor, not applied (what a daemon that dies right after
        leaves); `bucket_fields` override the bucket resource's. Returns it and its context."""
        fields = {"settle_seconds": self.settle_seconds, **bucket_fields}
        bucket = with_fields(self.resources["bucket"], **fields)
        context = build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={**self.resources, "bucket": bucket},
            definitions=self.defs,
        )
        return self.sensor(context), context

    def tick(self, **bucket_fields: Any) -> list[RunRequest]:
        """One sensor tick, applied as the daemon does: partitions added, cursor kept."""
        result, context = self.evaluate(**bucket_fields)
        if isinstance(result, SensorResult):
            for request in result.dynamic_partitions_requests or []:
                self.instance.add_dynamic_partitions(
                    consultation_partitions.name, list(request.partition_keys)
                )
            self.cursor = result.cursor
            return list(result.run_requests or [])
        self.cursor = context.cursor
        return []

    def run(self, request: RunRequest) -> ExecuteInProcessResult:
        job = self.defs.resolve_job_def(process_consultation_job.name)
        return job.execute_in_process(
            partition_key=request.partition_key,
            instance=self.instance,
            tags=request.tags,
            raise_on_error=False,
        )

    def reanalyze_all(self, prompt_version: str) -> ExecuteInProcessResult:
        """The reanalysis job over every partition in one run, as the backfill daemon runs a
        multi-run chunk, with the QA lead's prompt version tag."""
        keys = self.instance.get_dynamic_partitions(consultation_partitions.name)
        job = self.defs.resolve_job_def(reanalyze_consultations_job.name)
        return job.execute_in_process(
            instance=self.instance,
            tags={
                PROMPT_VERSION_TAG: prompt_version,
                "dagster/asset_partition_range_start": keys[0],
                "dagster/asset_partition_range_end": keys[-1],
            },
            raise_on_error=False,
        )

    def process(self) -> dict[str, ExecuteInProcessResult]:
        """One sensor tick, then every run it requested; keyed by partition."""
        return {r.partition_key: self.run(r) for r in self.tick()}

    def process_batch(self, drops: dict[str, bytes | Path]) -> PipelineHarness:
        """Drop files, remember the originals' hashes, process them; results kept on self."""
        for relative, data in drops.items():
            self.drop(relative, data)
        assert self.backend is not None
        self.originals_before = self.backend.digest("incoming/")
        self.results = self.process()
        return self

    def table(self, name: str) -> pd.DataFrame:
        return self.warehouse.read_frame(f"SELECT * FROM {name}")

    def status_by_key(self) -> dict[str, dict[str, Any]]:
        rows = self.warehouse.fetch_rows(tables.consultation_status)
        return {row["source_key"]: row for row in rows}

    def all_table_text(self) -> str:
        return "\n".join(self.table(name).to_csv(index=False) for name in BI_TABLES)


def with_fields(resource: R, **changes: Any) -> R:
    """A copy of a Dagster resource with some fields changed (`model_copy` would not reach
    the config Dagster initializes resources from)."""
    fields = {name: getattr(resource, name) for name in type(resource).model_fields}
    return type(resource)(**{**fields, **changes})
