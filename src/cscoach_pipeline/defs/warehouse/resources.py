"""The SQL warehouse BI tools read: SQLite by default, PostgreSQL when the URL says so."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import ConfigurableResource
from pydantic import Field
from sqlalchemy import (
    URL,
    Engine,
    String,
    Table,
    Text,
    and_,
    create_engine,
    event,
    inspect,
    or_,
    select,
    text,
)
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import DBAPIError

from cscoach_pipeline.defs.recovery.policy import GAVE_UP, REQUEUABLE_STATUSES
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
        attempt: int | None = None,
        failure_kind: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """Every column is written each time, so a new version or a new attempt never
        inherits an older attempt's reason or retry time."""
        self.upsert(
            tables.consultation_status,
            {"consultation_id": consultation_id},
            {
                "source_key": source_key,
                "status": status,
                "stage": stage,
                "error": error,
                "run_id": run_id,
                "attempt": attempt,
                "failure_kind": failure_kind,
                "next_attempt_at": next_attempt_at,
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

    def recovery_candidates(
        self, *, now: datetime, stale_before: datetime, limit: int
    ) -> list[dict[str, Any]]:
        """Status rows the recovery sensor looks at: `queued`/`processing` rows untouched
        since `stale_before` (and not waiting for a retry on purpose), outages recorded by a
        step but not yet scheduled, and retries or re-queue requests whose time has come."""
        c = tables.consultation_status.c
        query = (
            select(tables.consultation_status)
            .where(
                or_(
                    and_(
                        c.status.in_(("queued", "processing")),
                        c.updated_at < stale_before,
                        c.next_attempt_at.is_(None),
                    ),
                    and_(c.status == "queued", c.next_attempt_at <= now),
                    and_(
                        c.status == "failed",
                        c.failure_kind == "outage",
                        c.updated_at < stale_before,
                        c.error.not_like(f"%{GAVE_UP}%"),
                    ),
                )
            )
            .order_by(c.updated_at)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def mark_for_requeue(
        self,
        *,
        statuses: Sequence[str],
        ids: Sequence[str] = (),
        failure_kinds: Sequence[str] = (),
        dry_run: bool = False,
    ) -> list[str]:
        """Flag consultations for a fresh run (the recovery sensor launches it on its next
        tick); attempts count again (stored as 0, the next run is 1). Returns the ids selected."""
        c = tables.consultation_status.c
        where = [c.status.in_([s for s in statuses if s in REQUEUABLE_STATUSES])]
        if ids:
            where.append(c.consultation_id.in_(list(ids)))
        if failure_kinds:
            where.append(c.failure_kind.in_(list(failure_kinds)))
        with self.engine.begin() as conn:
            selected = list(
                conn.execute(
                    select(c.consultation_id).where(*where).order_by(c.consultation_id)
                ).scalars()
            )
            if selected and not dry_run:
                now = utcnow()
                for start in range(0, len(selected), 500):
                    conn.execute(
                        tables.consultation_status.update()
                        .where(c.consultation_id.in_(selected[start : start + 500]))
                        .values(
                            status="queued",
                            stage="requeue",
                            error=None,
                            attempt=0,
                            failure_kind=None,
                            next_attempt_at=now,
                            updated_at=now,
                        )
                    )
        return selected

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
