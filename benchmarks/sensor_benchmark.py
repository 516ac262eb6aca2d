"""Benchmark (not a test): the bucket sensor's tick at 1k, 10k and 100k objects under
`incoming/`, on every backend that runs here: the local folder, a real S3 server on loopback
(moto, through boto3) and the Supabase Storage REST double (through supabase-py).

For each size, all objects are already known (the inventory is seeded from one listing), then:
- steady tick: nothing new; the cost every 10 s forever;
- tick with 10 new objects: what a trickle of uploads costs;
- peak Python memory of a steady tick (tracemalloc, separate run).

Usage: `python -m benchmarks.sensor_benchmark [--sizes 1000 10000 100000] [--backends ...]`.
Results print as a table and are saved to bench-results/sensor.json.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, Definitions, SensorResult, build_sensor_context

from benchmarks.results import save_results
from cscoach_pipeline.defs.ingest.partition_keys import consultation_id_for
from cscoach_pipeline.defs.ingest.resources import BucketResource
from cscoach_pipeline.defs.ingest.sensors import build_bucket_sensor
from cscoach_pipeline.defs.ingest.storage import S3Options, SupabaseOptions, _open_cached
from cscoach_pipeline.defs.jobs import process_consultation_job
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource


def _body(index: int) -> bytes:
    return f"Agent: Hello, this is call {index}.\nCustomer: Thanks.\n".encode()


def _key(index: int) -> str:
    # 100 objects per folder, like incoming/<team>/<day>/...
    return f"incoming/team-{index // 10_000:02d}/day-{index // 100:04d}/call-{index:06d}.txt"


@contextmanager
def local_backend(size: int) -> Iterator[tuple[dict[str, Any], Callable[[int], None]]]:
    with tempfile.TemporaryDirectory(prefix="cscoach-sensor-bench-") as tmp:
        root = Path(tmp)

        def put(index: int) -> None:
            path = root / _key(index)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_body(index))
            old = time.time() - 3600  # settled
            os.utime(path, (old, old))

        for index in range(size):
            put(index)
        yield {"url": root.as_uri()}, put


@contextmanager
def s3_backend(size: int) -> Iterator[tuple[dict[str, Any], Callable[[int], None]]]:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    from tests.support.s3_server import ACCESS_KEY, REGION, SECRET_KEY, s3_client, s3_server

    with s3_server() as endpoint:
        os.environ.update(
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_DEFAULT_REGION=REGION,
        )
        _open_cached.cache_clear()
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3_client(endpoint).create_bucket(Bucket=bucket)
        # Seed through moto's in-process model: 100k HTTP PUTs would take minutes and are not
        # what is measured; every listing in the measurement goes over real HTTP.
        model = s3_backends[DEFAULT_ACCOUNT_ID]["global"]

        def put(index: int) -> None:
            model.put_object(bucket, f"cc/{_key(index)}", _body(index))

        for index in range(size):
            put(index)
        yield {"url": f"s3://{bucket}/cc", "s3": S3Options(endpoint_url=endpoint)}, put


@contextmanager
def supabase_backend(size: int) -> Iterator[tuple[dict[str, Any], Callable[[int], None]]]:
    from tests.support.fake_supabase_storage import FakeSupabaseStorage

    with FakeSupabaseStorage() as fake:
        old = datetime.fromtimestamp(time.time() - 3600, tz=UTC)

        def put(index: int) -> None:
            fake.put(f"tenant/{_key(index)}", _body(index), updated_at=old)

        for index in range(size):
            put(index)
        yield (
            {
                "url": f"supabase://{fake.default_bucket}/tenant",
                "supabase": SupabaseOptions(url=fake.url, key=fake.service_key),
            },
            put,
        )


BACKENDS = {"local": local_backend, "s3": s3_backend, "supabase": supabase_backend}


def _seed_inventory(bucket: BucketResource, warehouse: WarehouseResource) -> int:
    now = datetime.now(tz=UTC)
    rows = [
        {
            "source_key": obj.key,
            "consultation_id": consultation_id_for(obj.key),
            "version_token": obj.version_token,
            "size_bytes": obj.size,
            "fingerprint": f"seed:{obj.key}",
            "version": 1,
            "state": "active",
            "first_seen_at": now,
            "updated_at": now,
        }
        for obj in bucket.store().list_objects(bucket.incoming_prefix)
    ]
    warehouse.rows.write_many(tables.bucket_objects, rows)
    return len(rows)


def _tick(
    bucket: BucketResource, warehouse: WarehouseResource, cursor: str | None
) -> tuple[Any, str | None]:
    """One evaluation of the real sensor; returns its result and the cursor it left."""
    resources = {"bucket": bucket, "warehouse": warehouse}
    sensor = build_bucket_sensor()
    defs = Definitions(jobs=[process_consultation_job], sensors=[sensor], resources=resources)
    context = build_sensor_context(
        instance=DagsterInstance.ephemeral(), cursor=cursor, resources=resources, definitions=defs
    )
    result = sensor(context)
    return result, (result.cursor if isinstance(result, SensorResult) else context.cursor)


def _resumes(cursor: str | None) -> bool:
    return bool(cursor and json.loads(cursor).get("resume"))


def measure(backend: str, size: int) -> dict[str, Any]:
    with BACKENDS[backend](size) as (bucket_kwargs, put), tempfile.TemporaryDirectory() as tmp:
        _open_cached.cache_clear()
        bucket = BucketResource(**bucket_kwargs, settle_seconds=10)
        warehouse = WarehouseResource(url=f"sqlite:///{tmp}/warehouse.db")
        started = time.perf_counter()
        seeded = _seed_inventory(bucket, warehouse)
        seed_s = time.perf_counter() - started
        _tick(bucket, warehouse, None)  # warm-up: client pools, imports (may be partial)

        # Steady state: ticks (carrying the cursor, as the daemon does) until one full pass.
        steady_ticks, steady_s, cursor = _full_pass(bucket, warehouse)

        tracemalloc.start()
        _tick(bucket, warehouse, None)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        for index in range(size, size + 10):
            put(index)
        os.environ["CSCOACH_SETTLE_SECONDS"] = "0"  # just uploaded; S3 objects are complete
        requested, new_ticks, new_s = 0, 0, []
        while requested < 10 and new_ticks < 20:
            started = time.perf_counter()
            result, cursor = _tick(bucket, warehouse, cursor)
            new_s.append(time.perf_counter() - started)
            new_ticks += 1
            requested += len(result.run_requests) if isinstance(result, SensorResult) else 0
    return {
        "backend": backend,
        "objects": seeded,
        "steady_ticks_per_pass": steady_ticks,
        "steady_max_tick_s": round(max(steady_s), 2),
        "steady_pass_s": round(sum(steady_s), 2),
        "ticks_until_10_new_requested": new_ticks,
        "max_tick_with_new_s": round(max(new_s), 2),
        "runs_requested": requested,
        "peak_python_mb": round(peak / 1024 / 1024, 1),
        "cursor_bytes": len(cursor or ""),
        "seed_listing_s": round(seed_s, 2),
    }


def _full_pass(
    bucket: BucketResource, warehouse: WarehouseResource
) -> tuple[int, list[float], str | None]:
    cursor: str | None = None
    times: list[float] = []
    while True:
        started = time.perf_counter()
        result, cursor = _tick(bucket, warehouse, cursor)
        times.append(time.perf_counter() - started)
        assert not isinstance(result, SensorResult), "a steady tick must request nothing"
        if not _resumes(cursor) or len(times) > 50:
            return len(times), times, cursor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    args = parser.parse_args()
    rows = []
    for backend in args.backends:
        for size in args.sizes:
            row = measure(backend, size)
            rows.append(row)
            print(json.dumps(row), flush=True)
    save_results("sensor", rows, echo=False)  # each row was printed as it came


if __name__ == "__main__":
    main()
