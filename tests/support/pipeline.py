"""Drives the real Dagster objects the way the daemon does: evaluate the bucket sensor, apply
its dynamic-partition requests to the instance, execute the requested partition runs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import (
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    RunRequest,
    SensorResult,
    build_sensor_context,
)

from cscoach_pipeline.defs.consultation_assets import consultation_assets
from cscoach_pipeline.defs.ingest.sensors import consultation_bucket_sensor
from cscoach_pipeline.defs.jobs import process_consultation_job, reanalyze_consultations_job
from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.resources_build import (
    AnalyzerResource,
    BucketResource,
    RecoveryResource,
    SpeechToTextResource,
    WarehouseResource,
)
from tests.support.backends import BucketBackend, LocalBackend

BI_TABLES = (
    "consultations",
    "consultation_status",
    "transcript_segments",
    "analyses",
    "quality_metrics",
)


@dataclass
class PipelineHarness:
    root: Path
    backend: BucketBackend | None = None
    warehouse_url: str | None = None
    max_file_bytes: int = 50 * 1024 * 1024
    analyzer: AnalyzerResource = field(default_factory=AnalyzerResource)
    settle_seconds: float = 0.0
    cursor: str | None = None
    results: dict[str, ExecuteInProcessResult] = field(default_factory=dict)
    originals_before: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bucket_root = self.root / "bucket"
        self.incoming = self.bucket_root / "incoming"
        self.incoming.mkdir(parents=True, exist_ok=True)
        self.backend = self.backend or LocalBackend(self.bucket_root)
        self.warehouse_url = self.warehouse_url or f"sqlite:///{self.root / 'warehouse.db'}"
        self.resources: dict[str, Any] = {
            "bucket": BucketResource(
                url=self.backend.url,
                max_file_bytes=self.max_file_bytes,
                **self.backend.resource_kwargs,
            ),
            "warehouse": WarehouseResource(url=self.warehouse_url),
            "speech_to_text": SpeechToTextResource(),
            "analyzer": self.analyzer,
            "recovery": RecoveryResource(
                backoff_base_s=0.0, stale_after_s=120.0, step_retry_base_s=0.0
            ),
        }
        self.rebuild()
        self.instance = DagsterInstance.ephemeral()

    def rebuild(self) -> None:
        """(Re)build the Definitions after swapping a resource."""
        self.defs = Definitions(
            assets=consultation_assets,
            jobs=[process_consultation_job, reanalyze_consultations_job],
            sensors=[consultation_bucket_sensor],
            resources=self.resources,
        )

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

    def tick(self) -> list[RunRequest]:
        context = build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources=self.resources,
            definitions=self.defs,
        )
        with _environ(CSCOACH_SETTLE_SECONDS=str(self.settle_seconds)):
            result = consultation_bucket_sensor(context)
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


@contextmanager
def _environ(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old
