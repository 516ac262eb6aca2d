"""The BI tables on a real PostgreSQL server (the production warehouse): the same pipeline
writes the same rows as on SQLite, re-running a partition replaces its rows in one
transaction, and a BI reader sees consistent data while the pipeline writes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import RunRequest
from sqlalchemy import create_engine, text

from cscoach_pipeline.lib import tables
from tests.support.pipeline import PipelineHarness
from tests.support.postgres import temporary_database

pytestmark = [pytest.mark.integration, pytest.mark.postgres]

CHAT = (
    "Agent: Thank you for calling, how can I help you today?\n"
    "Customer: I was double charged, my number is 010-9876-5432.\n"
    "Agent: I am sorry about that. I have issued a refund. Anything else? Have a great day.\n"
)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with temporary_database() as url:
        yield url


@pytest.fixture
def pg_harness(tmp_path: Path, pg_url: str) -> PipelineHarness:
    harness = PipelineHarness(root=tmp_path, warehouse_url=pg_url)
    with harness.warehouse.engine.begin() as conn:  # each test starts from empty tables
        for table in reversed(tables.metadata.sorted_tables):
            conn.execute(table.delete())
    return harness


def test_pipeline_writes_bi_tables_to_postgres(pg_harness: PipelineHarness) -> None:
    pg_harness.drop("pg/chat.txt", CHAT.encode())
    pg_harness.drop("pg/notes.pdf", b"%PDF")
    results = pg_harness.process()
    assert all(r.success for r in results.values())
    statuses = pg_harness.status_by_key()
    assert statuses["incoming/pg/chat.txt"]["status"] == "succeeded"
    assert statuses["incoming/pg/notes.pdf"]["status"] == "rejected"
    segments = pg_harness.table("transcript_segments")
    assert list(segments.speaker) == ["agent", "customer", "agent"]
    assert "[PHONE]" in segments.text.iloc[1] and "010-9876" not in pg_harness.all_table_text()
    analyses = pg_harness.table("analyses")
    assert analyses.result_json.iloc[0]["rubric"]["empathy"]["score"] >= 3  # JSON round-trips
    assert pg_harness.table("quality_metrics").overall_score.iloc[0] > 50
    # The BI views exist on PostgreSQL too.
    assert len(pg_harness.table("latest_analyses")) == 1
    assert len(pg_harness.table("rubric_scores_by_version")) == 8
    assert pg_harness.table("rubric_shifts").empty  # one prompt version so far


def test_rerun_replaces_rows_and_readers_never_see_half(pg_harness: PipelineHarness) -> None:
    pg_harness.drop("pg/chat.txt", CHAT.encode())
    (request,) = pg_harness.tick()
    assert pg_harness.run(request).success
    reader = create_engine(pg_harness.warehouse_url)
    seen: list[int] = []
    stop = threading.Event()

    def read_continuously() -> None:
        with reader.connect() as conn:
            while not stop.is_set():
                seen.append(
                    conn.execute(text("SELECT count(*) FROM transcript_segments")).scalar_one()
                )
                conn.commit()

    thread = threading.Thread(target=read_continuously)
    thread.start()
    try:
        for _ in range(3):
            assert pg_harness.run(RunRequest(partition_key=request.partition_key)).success
    finally:
        stop.set()
        thread.join()
        reader.dispose()
    assert seen and set(seen) == {3}  # never 0 (deleted, not yet inserted) nor 6
    assert len(pg_harness.table("transcript_segments")) == 3
    assert len(pg_harness.table("analyses")) == 1
