"""Proves the SQL warehouse contract on a real SQLite file.

`replace_rows` is idempotent (replacing twice leaves one set) and atomic (a failing insert
leaves the previous rows in place) and touches only the matched partition; `upsert` inserts,
then updates only the columns it is given; `statuses.set` keeps one row per consultation. The
database runs in WAL mode, so a BI reader is not blocked by an open write transaction and a
writer can commit while a reader holds a snapshot (a rollback-journal control shows the same
steps fail without WAL). Every BI column the README promises exists in the created tables;
free-text context columns are TEXT; and a database error (here a duplicate key and a NOT NULL
violation) never repeats an inserted value, neither in its message nor in its cause.
"""

from __future__ import annotations

import sqlite3
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource

BI_COLUMNS: dict[str, set[str]] = {
    "consultations": {
        "consultation_id",
        "source_key",
        "file_type",
        "content_sha256",
        "size_bytes",
        "duration_s",
        "language",
        "uploaded_at",
    },
    "consultation_status": {"consultation_id", "source_key", "status", "error", "updated_at"},
    "transcript_segments": {
        "consultation_id",
        "segment_index",
        "start_s",
        "end_s",
        "speaker",
        "text",
        "confidence",
    },
    "analyses": {
        "consultation_id",
        "prompt_version",
        "model",
        "analyzer",
        "summary",
        "result_json",
        "created_at",
    },
    "quality_metrics": {"consultation_id", "prompt_version", "overall_score"},
}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "warehouse" / "warehouse.db"


@pytest.fixture
def warehouse(db_path: Path) -> Iterator[WarehouseResource]:
    resource = WarehouseResource(url=f"sqlite:///{db_path}")
    yield resource
    resource.engine.dispose()


def _segments(consultation_id: str, texts: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "consultation_id": consultation_id,
            "segment_index": index,
            "start_s": float(index),
            "end_s": index + 0.9,
            "speaker": "agent" if index % 2 == 0 else "customer",
            "channel": index % 2,
            "text": text_,
            "confidence": 0.9,
        }
        for index, text_ in enumerate(texts)
    ]


def _texts(warehouse: WarehouseResource, consultation_id: str) -> list[str]:
    rows = warehouse.fetch_rows(tables.transcript_segments, consultation_id=consultation_id)
    return [r["text"] for r in sorted(rows, key=lambda r: r["segment_index"])]


def _raw(path: Path, timeout: float = 0.0) -> sqlite3.Connection:
    # Autocommit mode: transactions only where the test says BEGIN.
    return sqlite3.connect(path, timeout=timeout, isolation_level=None)


# ---------------------------------------------------------------------------- replace_rows


def test_replace_rows_is_idempotent_and_scoped(warehouse: WarehouseResource) -> None:
    table = tables.transcript_segments
    warehouse.rows.replace_rows(
        table, {"consultation_id": "other"}, _segments("other", ["keep me"])
    )
    first = _segments("c1", ["hello", "hi, my card", "let me check"])

    warehouse.rows.replace_rows(table, {"consultation_id": "c1"}, first)
    warehouse.rows.replace_rows(table, {"consultation_id": "c1"}, first)

    assert _texts(warehouse, "c1") == ["hello", "hi, my card", "let me check"]
    assert _texts(warehouse, "other") == ["keep me"]

    warehouse.rows.replace_rows(table, {"consultation_id": "c1"}, _segments("c1", ["new", "set"]))
    assert _texts(warehouse, "c1") == ["new", "set"]

    warehouse.rows.replace_rows(table, {"consultation_id": "c1"}, [])
    assert _texts(warehouse, "c1") == []
    assert _texts(warehouse, "other") == ["keep me"]


def test_replace_rows_is_atomic(warehouse: WarehouseResource) -> None:
    table = tables.transcript_segments
    warehouse.rows.replace_rows(
        table, {"consultation_id": "c1"}, _segments("c1", ["old a", "old b"])
    )
    duplicate_key = _segments("c1", ["new a"]) + _segments("c1", ["new a again"])

    with pytest.raises(IntegrityError):
        warehouse.rows.replace_rows(table, {"consultation_id": "c1"}, duplicate_key)

    # The delete ran in the same transaction as the failed insert: rolled back together.
    assert _texts(warehouse, "c1") == ["old a", "old b"]


def test_replace_rows_matches_on_several_columns(warehouse: WarehouseResource) -> None:
    table = tables.analyses
    now = datetime.now(tz=UTC)

    def analysis(version: str, summary: str) -> dict[str, Any]:
        return {
            "consultation_id": "c1",
            "prompt_version": version,
            "analyzer": "local-rules",
            "model": "rules-1",
            "summary": summary,
            "result_json": {"summary": summary, "scores": {"greeting": 4}},
            "created_at": now,
        }

    v1 = {"consultation_id": "c1", "prompt_version": "v1"}
    v2 = {"consultation_id": "c1", "prompt_version": "v2"}
    warehouse.rows.replace_rows(table, v1, [analysis("v1", "first")])
    warehouse.rows.replace_rows(table, v2, [analysis("v2", "other prompt")])
    warehouse.rows.replace_rows(table, v1, [analysis("v1", "second")])

    rows = {r["prompt_version"]: r for r in warehouse.fetch_rows(table, consultation_id="c1")}
    assert {v: r["summary"] for v, r in rows.items()} == {"v1": "second", "v2": "other prompt"}
    assert rows["v1"]["result_json"] == {"summary": "second", "scores": {"greeting": 4}}


# ------------------------------------------------------------------------ upsert, statuses.set


def test_upsert_inserts_then_updates_only_given_columns(warehouse: WarehouseResource) -> None:
    table = tables.consultations
    key = {"consultation_id": "call.wav-1234abcd"}
    warehouse.rows.upsert(
        table,
        key,
        {
            "source_key": "incoming/call.wav",
            "file_type": "audio",
            "content_sha256": "ab" * 32,
            "size_bytes": 123_456,
            "updated_at": datetime(2024, 5, 1, 9, 0, tzinfo=UTC),
        },
    )

    warehouse.rows.upsert(
        table,
        key,
        {
            "duration_s": 61.5,
            "language": "ko",
            "updated_at": datetime(2024, 5, 1, 9, 5, tzinfo=UTC),
        },
    )

    rows = warehouse.fetch_rows(table)
    assert len(rows) == 1
    row = rows[0]
    assert row["source_key"] == "incoming/call.wav"
    assert row["file_type"] == "audio"
    assert row["content_sha256"] == "ab" * 32
    assert row["size_bytes"] == 123_456
    assert row["duration_s"] == 61.5
    assert row["language"] == "ko"
    assert row["updated_at"].replace(tzinfo=None) == datetime(2024, 5, 1, 9, 5)


def test_set_status_keeps_one_row_per_consultation(warehouse: WarehouseResource) -> None:
    warehouse.statuses.set("c1", "incoming/c1.wav", "queued")
    warehouse.statuses.set("c2", "incoming/c2.wav", "queued")
    (queued,) = warehouse.fetch_rows(tables.consultation_status, consultation_id="c1")
    assert (queued["status"], queued["error"]) == ("queued", None)

    warehouse.statuses.set(
        "c1", "incoming/c1.wav", "failed", stage="transcript", error="no audio", run_id="r-1"
    )
    (failed,) = warehouse.fetch_rows(tables.consultation_status, consultation_id="c1")
    assert (failed["status"], failed["stage"], failed["error"], failed["run_id"]) == (
        "failed",
        "transcript",
        "no audio",
        "r-1",
    )
    assert failed["updated_at"] >= queued["updated_at"]

    warehouse.statuses.set("c1", "incoming/c1.wav", "succeeded", stage="quality_metrics")
    (done,) = warehouse.fetch_rows(tables.consultation_status, consultation_id="c1")
    assert done["status"] == "succeeded"
    assert done["error"] is None  # a retry that succeeds clears the old reason
    assert done["run_id"] is None

    rows = warehouse.fetch_rows(tables.consultation_status)
    assert {r["consultation_id"]: r["status"] for r in rows} == {"c1": "succeeded", "c2": "queued"}


# ----------------------------------------------------------------------------- concurrency


def test_sqlite_runs_in_wal_mode(warehouse: WarehouseResource, db_path: Path) -> None:
    with warehouse.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    # WAL is a property of the file: a BI tool's own connection gets it too.
    raw = _raw(db_path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()


def _reader_and_writer_do_not_block(path: Path) -> None:
    """Fails with sqlite3.OperationalError ('database is locked') unless the file is WAL."""
    writer, reader = _raw(path), _raw(path)
    try:
        # A writer's open transaction with uncommitted rows: the reader sees committed data.
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "INSERT INTO consultation_status (consultation_id, source_key, status, updated_at) "
            "VALUES ('c2', 'incoming/c2.wav', 'processing', '2024-05-01 09:00:00')"
        )
        assert reader.execute("SELECT consultation_id FROM consultation_status").fetchall() == [
            ("c1",)
        ]
        writer.execute("COMMIT")

        # A reader's open snapshot: the writer still commits, the snapshot stays consistent.
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM consultation_status").fetchone() == (2,)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("DELETE FROM consultation_status WHERE consultation_id = 'c1'")
        writer.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM consultation_status").fetchone() == (2,)
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM consultation_status").fetchone() == (1,)
    finally:
        writer.close()
        reader.close()


def test_reader_and_writer_do_not_block_each_other(
    warehouse: WarehouseResource, db_path: Path
) -> None:
    warehouse.statuses.set("c1", "incoming/c1.wav", "queued")

    _reader_and_writer_do_not_block(db_path)

    # The pipeline's own engine sees what the raw writer committed.
    assert [r["consultation_id"] for r in warehouse.fetch_rows(tables.consultation_status)] == [
        "c2"
    ]


def test_without_wal_the_same_steps_block(tmp_path: Path) -> None:
    # Control: the check above really detects WAL, because a rollback journal fails it.
    path = tmp_path / "rollback.db"
    setup = _raw(path)
    setup.execute(
        "CREATE TABLE consultation_status (consultation_id TEXT PRIMARY KEY, source_key TEXT, "
        "status TEXT, updated_at TEXT)"
    )
    setup.execute("INSERT INTO consultation_status VALUES ('c1', 'k', 'queued', 'now')")
    assert setup.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    setup.close()

    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _reader_and_writer_do_not_block(path)


# -------------------------------------------------------------------------------- schema


def test_tables_have_every_bi_column(warehouse: WarehouseResource) -> None:
    inspector = inspect(warehouse.engine)

    for table_name, expected in BI_COLUMNS.items():
        columns = {c["name"] for c in inspector.get_columns(table_name)}
        assert expected <= columns, (table_name, expected - columns)
    quality = {c["name"] for c in inspector.get_columns("quality_metrics")}
    assert {f"{name}_score" for name in tables.RUBRIC_COLUMNS} <= quality


@pytest.mark.parametrize(
    ("table_name", "primary_key"),
    [
        ("consultations", ["consultation_id"]),
        ("consultation_status", ["consultation_id"]),
        ("transcript_segments", ["consultation_id", "segment_index"]),
        ("analyses", ["consultation_id", "prompt_version"]),
        ("quality_metrics", ["consultation_id", "prompt_version"]),
    ],
)
def test_primary_keys_make_rows_replaceable_per_partition(
    warehouse: WarehouseResource, table_name: str, primary_key: list[str]
) -> None:
    constraint = inspect(warehouse.engine).get_pk_constraint(table_name)
    assert constraint["constrained_columns"] == primary_key


def test_schema_creation_is_repeatable(db_path: Path) -> None:
    # A second process (another URL spelling of the same file) must not fail on existing tables.
    first = WarehouseResource(url=f"sqlite:///{db_path}")
    first.statuses.set("c1", "incoming/c1.wav", "queued")
    second = WarehouseResource(url=f"sqlite:///{db_path.parent}/./{db_path.name}")

    try:
        assert [r["status"] for r in second.fetch_rows(tables.consultation_status)] == ["queued"]
    finally:
        first.engine.dispose()
        second.engine.dispose()


# ------------------------------------------------------------------- column sizes, errors

CONTEXT_TEXT_COLUMNS = (
    "agent_id",
    "agent_name",
    "team",
    "channel",
    "customer_id",
    "call_direction",
)


def test_context_columns_are_text(warehouse: WarehouseResource) -> None:
    types = {
        c["name"]: str(c["type"]) for c in inspect(warehouse.engine).get_columns("consultations")
    }
    assert {name: types[name] for name in CONTEXT_TEXT_COLUMNS} == dict.fromkeys(
        CONTEXT_TEXT_COLUMNS, "TEXT"
    )


def _error_text(exc: BaseException) -> str:
    """Everything a user could be shown: the message and the whole traceback with its cause."""
    return str(exc) + "".join(traceback.format_exception(exc))


def test_integrity_errors_never_show_row_values(warehouse: WarehouseResource) -> None:
    row = {
        "consultation_id": "c-secret-key",
        "source_key": "incoming/a.txt",
        "status": "queued",
        "error": "row-value-010-5555-0000",
        "updated_at": datetime(2026, 1, 1, tzinfo=UTC),
    }
    warehouse.rows.write_many(tables.consultation_status, [row])
    with pytest.raises(IntegrityError) as duplicate:
        warehouse.rows.write_many(tables.consultation_status, [row])
    with pytest.raises(IntegrityError) as not_null:
        warehouse.rows.write_many(tables.consultation_status, [{**row, "consultation_id": "c2",
                                                           "source_key": None}])  # fmt: skip
    for caught in (duplicate, not_null):
        shown = _error_text(caught.value)
        assert "constraint failed" in shown and "parameters hidden" in shown
        assert "row-value-010-5555-0000" not in shown and "c-secret-key" not in shown
