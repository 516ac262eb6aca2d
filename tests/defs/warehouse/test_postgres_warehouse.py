"""The BI tables on a real PostgreSQL server (the production warehouse): the same pipeline
writes the same rows as on SQLite, re-running a partition replaces its rows in one
transaction, and a BI reader sees consistent data while the pipeline writes. The documented
driver-less `postgresql://` URL (and `postgres://`) works; context columns take values longer
than their old varchar(N), and an older warehouse's varchar(N) columns are widened in place;
database errors (data too long, bad input, NOT NULL, duplicate key) show no row value."""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from dagster import RunRequest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import DataError, IntegrityError

from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.engine import warehouse_engine
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
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


SECRET = "row-value-010-5555-0000"


def _consultation(consultation_id: str, **values: object) -> dict[str, object]:
    return {
        "consultation_id": consultation_id,
        "source_key": f"incoming/{consultation_id}.txt",
        "file_type": "text",
        "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
        **values,
    }


@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://"])
def test_driverless_url_uses_psycopg2(pg_url: str, scheme: str) -> None:
    url = pg_url.replace("postgresql+psycopg2://", scheme, 1)
    warehouse = WarehouseResource(url=url)
    assert warehouse.engine.dialect.driver == "psycopg2"
    warehouse.statuses.set("c-url", "incoming/c-url.txt", "queued")
    assert warehouse.fetch_rows(tables.consultation_status, consultation_id="c-url")
    with warehouse.engine.begin() as conn:
        conn.execute(tables.consultation_status.delete())


def test_long_context_values_fit(pg_harness: PipelineHarness) -> None:
    long_values = {
        "agent_id": "A" * 300,
        "team": "Cards and loans, second line, " * 20,
        "channel": "web chat (embedded widget, mobile app) " * 3,
        "customer_id": "C" * 300,
        "call_direction": "inbound transferred from the IVR callback queue",
    }
    pg_harness.warehouse.rows.write_many(
        tables.consultations, [_consultation("c-long", **long_values)]
    )
    [row] = pg_harness.warehouse.fetch_rows(tables.consultations, consultation_id="c-long")
    assert {name: row[name] for name in long_values} == long_values


def test_old_varchar_columns_are_widened() -> None:
    widened = ("agent_id", "team", "channel", "customer_id", "call_direction")
    with temporary_database() as url:
        engine = warehouse_engine(url)
        with engine.begin() as conn:  # as an older release created them
            for name, length in zip(widened, (200, 200, 40, 200, 20), strict=True):
                conn.execute(
                    text(f'ALTER TABLE consultations ALTER COLUMN "{name}" TYPE varchar({length})')
                )
        types = {c["name"]: str(c["type"]) for c in inspect(engine).get_columns("consultations")}
        assert types["call_direction"] == "VARCHAR(20)"
        warehouse_engine.cache_clear()
        engine.dispose()

        warehouse = WarehouseResource(url=url)  # the upgrade runs with the first engine
        types = {
            c["name"]: str(c["type"])
            for c in inspect(warehouse.engine).get_columns("consultations")
        }
        assert {name: types[name] for name in widened} == dict.fromkeys(widened, "TEXT")
        warehouse.rows.write_many(
            tables.consultations, [_consultation("c1", call_direction="x" * 50)]
        )
        with warehouse.engine.connect() as conn:  # the BI views were made again
            views = set(inspect(conn).get_view_names())
            assert set(tables.VIEWS) <= views
            assert conn.execute(text("SELECT count(*) FROM latest_analyses")).scalar_one() == 0


def _shown(exc: BaseException) -> str:
    """Everything a user could be shown: the message and the traceback with its cause."""
    return str(exc) + "".join(traceback.format_exception(exc))


def test_database_errors_never_show_row_values(pg_harness: PipelineHarness) -> None:
    warehouse = pg_harness.warehouse
    status = {
        "consultation_id": "c-err",
        "source_key": "incoming/c-err.txt",
        "status": "queued",
        "error": SECRET,
        "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    warehouse.rows.write_many(tables.consultation_status, [status])
    failures: list[tuple[type[Exception], dict[str, object], str]] = [
        (IntegrityError, status, "duplicate key value violates unique constraint"),
        (IntegrityError, {**status, "consultation_id": "c2", "source_key": None},
         'null value in column "source_key"'),
        (DataError, {**status, "consultation_id": "c3", "status": f"x{SECRET}"},
         "value too long for type character varying(16)"),
    ]  # fmt: skip
    for error_type, row, reason in failures:
        with pytest.raises(error_type) as caught:
            warehouse.rows.write_many(tables.consultation_status, [row])
        shown = _shown(caught.value)
        assert reason in shown and "parameters hidden" in shown
        assert SECRET not in shown and "DETAIL" not in shown and "Failing row" not in shown
    # The server quotes the value it rejects.
    with pytest.raises(DataError) as bad_input, warehouse.engine.begin() as conn:
        conn.execute(text("SELECT CAST(:v AS integer)"), {"v": SECRET})
    shown = _shown(bad_input.value)
    assert 'invalid input syntax for type integer: "(hidden)"' in shown
    assert SECRET not in shown
