"""The warehouse connection: one engine per URL, the schema created and upgraded in place,
errors without row values. SQLite by default, PostgreSQL when the URL says so."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    URL,
    Engine,
    String,
    Text,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError

from cscoach_pipeline.defs.warehouse import tables


def utcnow() -> datetime:
    return datetime.now(tz=UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC, see _utc_values)."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@lru_cache(maxsize=8)
def warehouse_engine(url: str) -> Engine:
    """One engine (and pool) per URL per process; creates the schema on first use.

    Errors never carry row values: SQLAlchemy leaves the parameters out (`hide_parameters`)
    and `_hide_row_values` trims what the server adds about the row."""
    parsed = with_default_driver(make_url(url))
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # The pool hands a connection to one thread at a time; Dagster evaluates sensors and
        # steps in worker threads, so connections must not be pinned to their creator.
        engine = create_engine(
            parsed,
            connect_args={"timeout": 30, "check_same_thread": False},
            hide_parameters=True,
        )

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
        engine = create_engine(parsed, pool_pre_ping=True, hide_parameters=True)
    event.listen(engine, "handle_error", _hide_row_values)
    tables.metadata.create_all(engine)
    add_missing_columns(engine)
    create_missing_indexes(engine)
    widen_text_columns(engine)
    create_views(engine)
    return engine


def with_default_driver(url: URL) -> URL:
    """`postgresql://` (as documented, and `postgres://` as many hosts print it) means
    psycopg2. SQLAlchemy 2.1 would pick psycopg 3 for a driver-less URL; psycopg2-binary is
    the driver this project already ships and tests, so a second one is not added just to
    honour the default. An explicit `postgresql+<driver>://` is left as it is."""
    if url.drivername in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+psycopg2")
    return url


def _hide_row_values(context: ExceptionContext) -> None:
    """Database errors are shown to users (Dagster UI, `consultation_status.error`, logs), so
    keep only the driver's first line: it names the constraint, column or type. PostgreSQL
    adds the row after it ("DETAIL: Failing row contains (...)", "LINE 1: INSERT ... VALUES
    ('...')"), and a data error quotes the rejected value ("invalid input syntax for type
    integer: \"...\""), which is hidden too."""
    orig = context.original_exception
    error = context.sqlalchemy_exception
    if not isinstance(error, DBAPIError) or orig is None:
        return
    full = str(orig)
    message = full.strip().split("\n", 1)[0]
    if str(getattr(orig, "pgcode", "") or "").startswith("22"):  # SQLSTATE class 22: data
        message = _QUOTED_RE.sub('"(hidden)"', message)
    if message != full:
        orig.args = (message,)  # the driver's exception is shown as the cause
        error.args = (f"({type(orig).__module__}.{type(orig).__name__}) {message}",)


_QUOTED_RE = re.compile(r'"[^"]*"')


def create_views(engine: Engine) -> None:
    """(Re)create the BI views; PostgreSQL fixes a view's columns at creation, so replace."""
    with engine.begin() as conn:
        for name, sql in tables.VIEWS.items():
            if engine.dialect.name == "sqlite":
                conn.execute(text(f"DROP VIEW IF EXISTS {name}"))
                conn.execute(text(f"CREATE VIEW {name} AS {sql}"))
            else:
                conn.execute(text(f"CREATE OR REPLACE VIEW {name} AS {sql}"))


def create_missing_indexes(engine: Engine) -> None:
    """Indexes added by a newer release, on a warehouse whose tables already exist."""
    with engine.begin() as conn:
        for table in tables.metadata.sorted_tables:
            for index in table.indexes:
                index.create(conn, checkfirst=True)


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


def widen_text_columns(engine: Engine) -> None:
    """Columns that are `Text` now were `varchar(N)` in older releases; PostgreSQL enforces N
    (a longer sidecar value failed the consultation), so widen them in place. SQLite never
    enforces a length: nothing to do there."""
    if engine.dialect.name != "postgresql":
        return
    existing = inspect(engine)
    widen: list[tuple[str, str]] = []
    for table in tables.metadata.sorted_tables:
        present = {c["name"]: c["type"] for c in existing.get_columns(table.name)}
        for column in table.columns:
            old = present.get(column.name)
            if (
                isinstance(column.type, Text)
                and isinstance(old, String)
                and not isinstance(old, Text)
                and old.length is not None
            ):
                widen.append((table.name, column.name))
    if not widen:
        return
    with engine.begin() as conn:
        # A view fixes its columns' types: drop ours (create_views makes them again) first.
        for name in reversed(list(tables.VIEWS)):
            conn.execute(text(f"DROP VIEW IF EXISTS {name}"))
        for table_name, column_name in widen:
            conn.execute(text(f'ALTER TABLE {table_name} ALTER COLUMN "{column_name}" TYPE TEXT'))
