"""Partition retention (issue 9, point 5), on a real SQLite warehouse and a real Dagster
instance: only consultations settled before the cut-off are retired, oldest first and in
batches; a pending outage retry, an unfinished run or an unfinished backfill keeps its
partition; a consultation registered again (a new version, or a reanalysis) is live again;
a reanalysis registers exactly the retired partitions again; the sensor's result asks Dagster
to delete the keys and leaves every warehouse row in place."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    SensorResult,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.execution.backfill import PartitionBackfill
from dagster._core.test_utils import create_run_for_test

from cscoach_pipeline.definitions import build_defs
from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.defs.retention.policy import (
    busy_partitions,
    partitions_to_retire,
    restore_partitions,
)
from cscoach_pipeline.defs.retention.sensors import build_retention_sensor
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.settings import load_settings

# The sensor reads the real clock: every age here is relative to it.
NOW = datetime.now(UTC)
CUTOFF = NOW - timedelta(days=2)


@pytest.fixture
def instance() -> Iterator[DagsterInstance]:
    with instance_for_test() as instance:
        yield instance


@pytest.fixture
def warehouse(tmp_path: Path) -> WarehouseResource:
    return WarehouseResource(url=f"sqlite:///{tmp_path / 'warehouse.db'}")


def status(
    warehouse: WarehouseResource, cid: str, state: str, age_days: float, **extra: object
) -> None:
    warehouse.rows.write_many(
        tables.consultation_status,
        [
            {"consultation_id": cid, "source_key": f"incoming/{cid}.txt", "status": state,
             "updated_at": NOW - timedelta(days=age_days), **extra}
        ],
    )  # fmt: skip


def test_only_settled_consultations_older_than_the_cutoff_are_retired(
    warehouse: WarehouseResource, instance: DagsterInstance
) -> None:
    status(warehouse, "old-ok", "succeeded", 5)
    status(warehouse, "older-failed", "failed", 9, failure_kind="input")
    status(warehouse, "old-failed-no-kind", "failed", 8)  # e.g. an admission failure
    status(warehouse, "old-no-speech", "no_speech", 3)
    status(warehouse, "recent-ok", "succeeded", 1)
    status(warehouse, "old-processing", "processing", 5)
    status(warehouse, "old-queued", "queued", 5)
    status(warehouse, "old-outage", "failed", 5, failure_kind="outage", error="bucket down")
    status(warehouse, "old-retry", "failed", 5, next_attempt_at=NOW + timedelta(minutes=5))
    status(
        warehouse, "old-gave-up", "failed", 4, failure_kind="outage",
        error="bucket down; gave up after 4 attempts",
    )  # fmt: skip
    store = warehouse.retention
    retired = partitions_to_retire(store, instance, before=CUTOFF, limit=100)
    # Oldest first; a gave-up outage is final, a pending one is not.
    assert retired == [
        "older-failed", "old-failed-no-kind", "old-ok", "old-gave-up", "old-no-speech",
    ]  # fmt: skip
    assert partitions_to_retire(store, instance, before=CUTOFF, limit=2) == [
        "older-failed",
        "old-failed-no-kind",
    ]


def test_retired_ones_are_not_retired_again_until_registered_again(
    warehouse: WarehouseResource, instance: DagsterInstance
) -> None:
    status(warehouse, "a", "succeeded", 5)
    status(warehouse, "b", "succeeded", 4)
    store = warehouse.retention
    assert store.mark_retired(["a", "b"], NOW - timedelta(minutes=1), before=CUTOFF) == ["a", "b"]
    assert store.retirable(before=CUTOFF, limit=10) == []
    assert store.retired_among(["a", "b", "c"]) == ["a", "b"]

    # A new version of "a" was uploaded and processed after the retirement: live again.
    warehouse.statuses.set("a", "incoming/a.txt", "succeeded")
    assert store.retired_among(["a", "b"]) == ["a", "b"]  # still marked; re-adding is a no-op
    assert store.retirable(before=datetime.now(UTC) + timedelta(seconds=1), limit=10) == ["a"]


def test_a_reanalysis_registers_the_retired_partitions_again_and_keeps_them(
    warehouse: WarehouseResource, instance: DagsterInstance
) -> None:
    for cid in ("a", "b", "c", "d"):
        status(warehouse, cid, "succeeded", 5)
    # c was never retired; d is marked retired but Dagster has not deleted it yet.
    instance.add_dynamic_partitions(consultation_partitions.name, ["c", "d"])
    store = warehouse.retention
    store.mark_retired(["a", "b", "d"], NOW - timedelta(days=1), before=CUTOFF)

    restored = restore_partitions(store, instance, ["a", "c", "d"], NOW)
    assert restored == ["a"]  # what the instance lacks, whatever the warehouse recorded
    assert set(instance.get_dynamic_partitions(consultation_partitions.name)) == {"a", "c", "d"}
    assert store.retired_among(["a", "b", "c", "d"]) == ["b"]
    # All three are kept for another period: not retirable before the reanalysis settles.
    assert store.retirable(before=CUTOFF, limit=10) == []
    assert set(store.retirable(before=NOW + timedelta(days=3), limit=10)) == {"a", "c", "d"}
    # A retirement selected before the reanalysis claimed them is not recorded for them.
    assert store.mark_retired(["a", "b", "c"], NOW, before=CUTOFF) == ["b"]


def test_unfinished_runs_and_backfills_keep_their_partitions(
    warehouse: WarehouseResource, instance: DagsterInstance
) -> None:
    ages = {"in-run": 6, "in-backfill": 5, "done-run": 4, "free": 3}
    for cid, age in ages.items():
        status(warehouse, cid, "succeeded", age)
    instance.add_dynamic_partitions(consultation_partitions.name, list(ages))
    create_run_for_test(
        instance, job_name="process_consultation", status=DagsterRunStatus.STARTED,
        tags={"dagster/partition": "in-run"},
    )  # fmt: skip
    create_run_for_test(
        instance, job_name="process_consultation", status=DagsterRunStatus.SUCCESS,
        tags={"dagster/partition": "done-run"},
    )  # fmt: skip
    # A reanalysis backfill as the UI or reanalyze.py launches it, over the real asset graph.
    graph = build_defs(load_settings()).resolve_asset_graph()
    backfill = PartitionBackfill.from_asset_partitions(
        backfill_id="reanalysis",
        asset_graph=graph,
        partition_names=["in-backfill"],
        asset_selection=[AssetKey("consultation_analysis"), AssetKey("quality_metrics")],
        backfill_timestamp=NOW.timestamp(),
        tags={},
        dynamic_partitions_store=instance,
        all_partitions=False,
        title=None,
        description=None,
        run_config=None,
    )
    instance.add_backfill(backfill)

    assert busy_partitions(instance) == {"in-run", "in-backfill"}
    retired = partitions_to_retire(warehouse.retention, instance, before=CUTOFF, limit=10)
    assert retired == ["done-run", "free"]


def test_the_sensor_asks_dagster_to_delete_the_keys_and_keeps_the_rows(
    warehouse: WarehouseResource, instance: DagsterInstance
) -> None:
    status(warehouse, "old", "succeeded", 5)
    status(warehouse, "new", "succeeded", 0.1)
    warehouse.rows.write_many(
        tables.consultations,
        [{"consultation_id": "old", "source_key": "incoming/old.txt", "file_type": "text",
          "updated_at": NOW}],
    )  # fmt: skip
    sensor = build_retention_sensor(retention_days=2, interval_s=60, batch=100)
    with build_sensor_context(instance=instance, resources={"warehouse": warehouse}) as context:
        result = sensor(context)
    assert isinstance(result, SensorResult)
    (request,) = result.dynamic_partitions_requests
    assert request.partitions_def_name == consultation_partitions.name
    assert list(request.partition_keys) == ["old"]
    assert warehouse.retention.retired_among(["old", "new"]) == ["old"]
    assert warehouse.fetch_rows(tables.consultations, consultation_id="old")  # rows stay
    with build_sensor_context(instance=instance, resources={"warehouse": warehouse}) as context:
        again = sensor(context)
    assert not isinstance(again, SensorResult)  # a SkipReason: nothing left to retire
