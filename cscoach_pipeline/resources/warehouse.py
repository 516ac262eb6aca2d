"""The SQL warehouse BI tools read: SQLite by default, PostgreSQL when the URL says so."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import Engine, Table, and_, create_engine, event, inspect, select, text
from sqlalchemy.engine import make_url

from ..lib import tables


def utcnow() -> datetime:
    return datetime.now(tz=UTC)


@lru_cache(maxsize=8)
def warehouse_engine(url: str) -> Engine:
    """One engine (and pool) per URL per process; creates the schema on first use."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # The pool hands a connection to one thread at a time; Dagster evaluates sensors and
        # steps in worker threads, so connections must not be pinned to their creator.
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # WAL lets a BI tool read while the pipeline writes; busy_timeout makes concurrent
            # runs queue for the write lock instead of failing with "database is locked".
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    tables.metadata.create_all(engine)
    add_missing_columns(engine)
    create_views(engine)
    return engine


def create_views(engine: Engine) -> None:
    """(Re)create the BI views; PostgreSQL fixes a view's columns at creation, so replace."""
    with engine.begin() as conn:
        for name, sql in tables.VIEWS.items():
            if engine.dialect.name == "sqlite":
                conn.execute(text(f"DROP VIEW IF EXISTS {name}"))
                conn.execute(text(f"CREATE VIEW {name} AS {sql}"))
            else:
                conn.execute(text(f"CREATE OR REPLACE VIEW {name} AS {sql}"))


def add_missing_columns(engine: Engine) -> None:
    """Additive schema upgrades: a warehouse created by an older release gains the new
    (nullable) columns, so upgrading never needs a manual migration or loses rows."""
    existing = inspect(engine)
    with engine.begin() as conn:
        for table in tables.metadata.sorted_tables:
            present = {c["name"] for c in existing.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                kind = column.type.compile(dialect=engine.dialect)
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


class WarehouseResource(ConfigurableResource):
    """Writes the BI tables idempotently: each call replaces one partition's rows atomically."""

    url: str = Field(description="SQLAlchemy URL, e.g. sqlite:///data/warehouse.db")

    @property
    def engine(self) -> Engine:
        return warehouse_engine(self.url)

    def replace_rows(
        self, table: Table, match: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Delete the rows matching `match`, insert `rows`, in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(table.delete().where(_where(table, match)))
            if rows:
                conn.execute(table.insert(), [_utc_values(r) for r in rows])

    def upsert(self, table: Table, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """Update the row with primary key `key` (only the given columns), or insert it."""
        values = _utc_values(values)
        with self.engine.begin() as conn:
            result = conn.execute(table.update().where(_where(table, key)).values(**values))
            if result.rowcount == 0:
                conn.execute(table.insert().values(**key, **values))

    def set_status(
        self,
        consultation_id: str,
        source_key: str,
        status: str,
        *,
        stage: str | None = None,
        error: str | None = None,
        run_id: str | None = None,
    ) -> None:
        self.upsert(
            tables.consultation_status,
            {"consultation_id": consultation_id},
            {
                "source_key": source_key,
                "status": status,
                "stage": stage,
                "error": error,
                "run_id": run_id,
                "updated_at": utcnow(),
            },
        )

    def fetch_rows(self, table: Table, **match: Any) -> list[dict[str, Any]]:
        query = select(table)
        if match:
            query = query.where(_where(table, match))
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def read_frame(self, sql: str) -> pd.DataFrame:
        with self.engine.connect() as conn:
            return pd.read_sql_query(sql, conn)

    def write_many(self, table: Table, rows: Iterable[Mapping[str, Any]]) -> None:
        batch = [dict(r) for r in rows]
        if batch:
            with self.engine.begin() as conn:
                conn.execute(table.insert(), batch)


def _utc_values(row: Mapping[str, Any]) -> dict[str, Any]:
    # SQLite keeps a datetime's wall-clock time and drops its offset: store UTC everywhere.
    return {
        name: value.astimezone(UTC) if isinstance(value, datetime) and value.tzinfo else value
        for name, value in row.items()
    }


def _where(table: Table, match: Mapping[str, Any]) -> Any:
    return and_(*(table.c[name] == value for name, value in match.items()))
