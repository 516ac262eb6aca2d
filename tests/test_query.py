"""`python -m cscoach_pipeline.query`, the README's way to look at the tables without the
sqlite3 or psql clients, behaves the same on the embedded SQLite warehouse and on a real
PostgreSQL server: it prints the rows as a table (or whole values as CSV), takes SQL as typed
(`:30` in a timestamp, `%` in a LIKE), lists the tables and views when given no query, refuses
writes, reads the URL from CSCOACH_WAREHOUSE_URL, and answers a missing warehouse or bad SQL
with one line instead of a traceback (and without creating an empty SQLite file)."""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from cscoach_pipeline import query
from cscoach_pipeline.defs.warehouse.engine import warehouse_engine

LONG = "x" * 500


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A warehouse with the real schema plus a small `notes` table, on each database."""
    if request.param == "sqlite":
        database_url = f"sqlite:///{tmp_path / 'warehouse.db'}"
        yield from _filled(database_url)
    else:
        from tests.support.postgres import temporary_database

        with temporary_database() as database_url:
            yield from _filled(database_url)


def _filled(url: str) -> Iterator[str]:
    warehouse_engine(url)  # the pipeline's tables and views
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (id INTEGER, at TEXT, body TEXT)")
        conn.exec_driver_sql(
            f"INSERT INTO notes VALUES (1, '2026-11-20T09:30:00', 'half done'), (2, NULL, '{LONG}')"
        )
    engine.dispose()
    yield url
    warehouse_engine.cache_clear()


def _printed(frame: object, *, csv: bool = False) -> str:
    out = io.StringIO()
    query.print_frame(frame, out, csv=csv)  # type: ignore[arg-type]
    return out.getvalue()


def test_rows_print_as_a_table_with_sql_taken_as_typed(url: str) -> None:
    frame = query.run_query(
        url, "SELECT id, at FROM notes WHERE at > '2026-11-20T09:29:00' AND body LIKE 'half%'"
    )
    assert frame.to_dict("records") == [{"id": 1, "at": "2026-11-20T09:30:00"}]
    assert _printed(frame).splitlines() == [
        " id                  at",
        "  1 2026-11-20T09:30:00",
        "(1 row)",
    ]


def test_long_cells_are_cut_in_the_table_and_whole_in_csv(url: str) -> None:
    frame = query.run_query(url, "SELECT body FROM notes WHERE id = 2")
    assert LONG not in _printed(frame)
    assert f"{'x' * (query.MAX_CELL_CHARS - 3)}..." in _printed(frame)
    assert _printed(frame, csv=True) == f"body\n{LONG}\n"


def test_null_shows_as_null(url: str) -> None:
    frame = query.run_query(url, "SELECT id, at FROM notes ORDER BY id")
    assert _printed(frame).splitlines()[1:] == [
        "  1 2026-11-20T09:30:00",
        "  2                NULL",
        "(2 rows)",
    ]
    assert _printed(frame, csv=True).splitlines()[2] == "2,"


def test_no_rows_prints_the_columns(url: str) -> None:
    frame = query.run_query(url, "SELECT consultation_id, status FROM consultation_status")
    assert _printed(frame) == "consultation_id | status\n(0 rows)\n"


def test_no_query_lists_tables_and_views(url: str) -> None:
    listing = query.run_query(url, None).set_index("name")["kind"].to_dict()
    assert listing["consultation_status"] == "table"
    assert listing["notes"] == "table"
    assert listing["latest_quality_metrics"] == "view"


@pytest.mark.parametrize("sql", ["DELETE FROM notes", "DROP TABLE notes"])
def test_writes_are_refused(url: str, sql: str) -> None:
    with pytest.raises(query.QueryError, match=r"read-?only"):
        query.run_query(url, sql)
    assert len(query.run_query(url, "SELECT * FROM notes")) == 2


def test_bad_sql_is_one_line(url: str) -> None:
    with pytest.raises(query.QueryError) as error:
        query.run_query(url, "SELECT nope FROM notes")
    assert "nope" in str(error.value)
    assert "\n" not in str(error.value)


def test_a_missing_sqlite_warehouse_is_named_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "data" / "warehouse.db"
    with pytest.raises(query.QueryError, match=r"no warehouse at .*make dev"):
        query.run_query(f"sqlite:///{missing}", "SELECT 1")
    assert not missing.exists()


def test_the_command_reads_cscoach_warehouse_url(url: str, tmp_path: Path) -> None:
    def run(*args: str, warehouse: str = url) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "CSCOACH_WAREHOUSE_URL": warehouse}
        return subprocess.run(
            [sys.executable, "-m", "cscoach_pipeline.query", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )

    done = run("SELECT id FROM notes ORDER BY id")
    assert (done.returncode, done.stdout, done.stderr) == (0, " id\n  1\n  2\n(2 rows)\n", "")

    failed = run("SELECT nope")
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.count("\n") == 1 and "nope" in failed.stderr

    absent = run(warehouse=f"sqlite:///{tmp_path / 'absent.db'}")
    assert absent.returncode == 1
    assert "no warehouse at" in absent.stderr
