"""Benchmark (not a test): a reanalysis backfill of N consultations against the fake Gemini
server with a fixed latency and a requests-per-minute quota. Reports throughput as a share of
the quota and how many runs the multi-run backfill policy launches.

The consultations (redacted transcripts, inventory rows, partitions) are seeded directly, as
an earlier pipeline pass would have left them; the measured part is what a backfill does:
runs over ranges of 100 partitions of the `reanalyze_consultations` job, each analysing its
consultations concurrently through the real google-genai client, rate limiter and tables.

Usage: `python -m benchmarks.backfill_benchmark [--consultations 2000] [--latency 0.3]
[--rpm 600] [--concurrency 8]`. Results: bench-results/backfill.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import DagsterInstance

from benchmarks.results import save_results
from cscoach_pipeline.definitions import build_defs
from cscoach_pipeline.defs.analysis.assets import BACKFILL_PARTITIONS_PER_RUN
from cscoach_pipeline.defs.analysis.prompts import PROMPT_VERSION_TAG
from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.jobs import reanalyze_consultations_job
from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.privacy.redaction import TRANSCRIPT_ARTIFACT
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.settings import Settings
from tests.support.fake_gemini import FakeGemini, RecordedRequest, Reply, default_responder


def seed(
    root: Path, count: int, instance: DagsterInstance
) -> tuple[BucketResource, WarehouseResource]:
    bucket = BucketResource(url=(root / "bucket").as_uri())
    warehouse = WarehouseResource(url=f"sqlite:///{root / 'warehouse.db'}")
    seed_consultations(bucket, warehouse, instance, count)
    return bucket, warehouse


def seed_consultations(
    bucket: BucketResource, warehouse: WarehouseResource, instance: DagsterInstance, count: int
) -> list[str]:
    """`count` chats as an earlier pass leaves them: a redacted transcript in the bucket,
    inventory, status and consultation rows, and a partition each. Returns their ids."""
    now = datetime.now(tz=UTC)
    keys = [f"bench-{i:05d}" for i in range(count)]
    inventory, statuses, consultations = [], [], []
    for i, key in enumerate(keys):
        transcript = Transcript(
            segments=[
                Segment(start_s=0, end_s=3, speaker=Speaker.AGENT, text="Hello, how can I help?"),
                Segment(start_s=3.5, end_s=6, speaker=Speaker.CUSTOMER, text=f"Order {i} is late."),
                Segment(start_s=6.5, end_s=9, speaker=Speaker.AGENT, text="Sorry, I fixed it."),
            ],
            language="en",
            duration_s=9,
            source="text",
        )
        bucket.artifacts(key).write_json(TRANSCRIPT_ARTIFACT, transcript.model_dump(mode="json"))
        source_key = f"incoming/{key}.txt"
        inventory.append(
            {
                "source_key": source_key, "consultation_id": key, "version_token": "seed",
                "size_bytes": 1, "fingerprint": key, "version": 1, "state": "active",
                "first_seen_at": now, "updated_at": now,
            }
        )  # fmt: skip
        consultations.append(
            {"consultation_id": key, "source_key": source_key, "file_type": "text",
             "uploaded_at": now, "updated_at": now}
        )  # fmt: skip
        statuses.append(
            {"consultation_id": key, "source_key": source_key, "status": "succeeded",
             "updated_at": now}
        )  # fmt: skip
    warehouse.rows.write_many(tables.bucket_objects, inventory)
    warehouse.rows.write_many(tables.consultation_status, statuses)
    warehouse.rows.write_many(tables.consultations, consultations)
    instance.add_dynamic_partitions(consultation_partitions.name, keys)
    return keys


def run(count: int, latency_s: float, rpm: float, concurrency: int) -> dict[str, Any]:
    def slow(request: RecordedRequest) -> Reply:
        time.sleep(latency_s)
        return default_responder(request)

    with tempfile.TemporaryDirectory() as tmp, FakeGemini(api_key="bench-key") as fake:
        fake.set_default(slow)
        instance = DagsterInstance.ephemeral()
        bucket, warehouse = seed(Path(tmp), count, instance)
        analyzer = AnalyzerResource(
            analyzer="gemini",
            api_key="bench-key",
            base_url=fake.url,
            requests_per_minute=rpm,
            max_concurrent=concurrency,
            backoff_base_s=0.5,
        )
        settings = Settings(bucket_url=bucket.url, warehouse_url=warehouse.url)
        defs = build_defs(
            settings, resources={"bucket": bucket, "warehouse": warehouse, "analyzer": analyzer}
        )
        job = defs.resolve_job_def(reanalyze_consultations_job.name)
        keys = instance.get_dynamic_partitions(consultation_partitions.name)
        # What the backfill daemon does with a multi-run policy: one run per 100 partitions.
        chunks = [
            keys[i : i + BACKFILL_PARTITIONS_PER_RUN]
            for i in range(0, len(keys), BACKFILL_PARTITIONS_PER_RUN)
        ]
        started = time.perf_counter()
        failed_runs = 0
        for chunk in chunks:
            result = job.execute_in_process(
                instance=instance,
                tags={
                    PROMPT_VERSION_TAG: "v2",
                    "dagster/asset_partition_range_start": chunk[0],
                    "dagster/asset_partition_range_end": chunk[-1],
                },
                raise_on_error=False,
            )
            failed_runs += not result.success
        elapsed = time.perf_counter() - started
        requests = len(fake.requests)
        rows = len(warehouse.read_frame("SELECT 1 FROM analyses WHERE prompt_version = 'v2'"))
    per_minute = requests / elapsed * 60
    return {
        "consultations": count,
        "latency_s": latency_s,
        "quota_rpm": rpm,
        "concurrency": concurrency,
        "runs_launched": len(chunks),
        "failed_runs": failed_runs,
        "requests": requests,
        "analyses_written": rows,
        "elapsed_s": round(elapsed, 1),
        "requests_per_minute": round(per_minute, 1),
        "share_of_quota": round(per_minute / rpm, 3),
        "max_in_any_minute_allowed": rpm,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consultations", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--rpm", type=float, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    result = run(args.consultations, args.latency, args.rpm, args.concurrency)
    save_results("backfill", result)


if __name__ == "__main__":
    main()
