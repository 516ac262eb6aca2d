"""Print the result of one SQL query on the warehouse: the same command for the embedded SQLite
file and for PostgreSQL (the URL is `CSCOACH_WAREHOUSE_URL`, default `data/warehouse.db`), so
nobody needs the `sqlite3` or `psql` clients. Read-only: the tables are changed by the
pipeline (and `requeue`, `reanalyze`), never by hand.

    python -m cscoach_pipeline.query "SELECT consultation_id, status FROM consultation_status"
    python -m cscoach_pipeline.query --csv "SELECT * FROM latest_quality_metrics" > metrics.csv
    python -m cscoach_pipeline.query --file bi/queries/agent_ranking.sql
    python -m cscoach_pipeline.query            # lists the tables and views
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

import pandas as pd
from sqlalchemy import Connection, create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import NullPool

from cscoach_pipeline.defs.warehouse.engine import with_default_driver
from cscoach_pipeline.settings import load_settings

# Cells wider than this are cut in the table view (`--csv` prints them whole): one analysis'
# result_json would otherwise fill the terminal.
MAX_CELL_CHARS = 100


class QueryError(Exception):
    """Something the user can fix: a missing warehouse, bad SQL, a refused write."""


def run_query(url: str, sql: str | None) -> pd.DataFrame:
    """The rows of ``sql`` (or the list of tables and views when it is None), read-only."""
    parsed = with_default_driver(make_url(url))
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        # Connecting would create an empty file and hide the mistake.
        if database not in ("", ":memory:") and not Path(database).is_file():
            raise QueryError(
                f"no warehouse at {database} yet: it is created when `make dev` starts "
                "(or set CSCOACH_WAREHOUSE_URL)"
            )
    engine = create_engine(parsed, poolclass=NullPool, hide_parameters=True)
    try:
        with engine.connect() as conn:
            _read_only(conn)
            if sql is None:
                return _tables(conn)
            # exec_driver_sql sends the text as typed (":30" in a timestamp is no bind
            # parameter); psycopg2 still reads "%" as a placeholder, so it is doubled.
            if conn.dialect.paramstyle in ("format", "pyformat"):
                sql = sql.replace("%", "%%")
            result = conn.exec_driver_sql(sql)
            if not result.returns_rows:
                raise QueryError("the statement returns no rows")
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    except DBAPIError as exc:
        # The driver's first line names the problem; SQLAlchemy's wrapper repeats the SQL.
        raise QueryError(str(exc.orig).strip().splitlines()[0]) from exc
    finally:
        engine.dispose()


def _read_only(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("PRAGMA query_only = ON")
    elif conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")


def _tables(conn: Connection) -> pd.DataFrame:
    inspector = inspect(conn)
    names = [(name, "table") for name in inspector.get_table_names()]
    names += [(name, "view") for name in inspector.get_view_names()]
    return pd.DataFrame(sorted(names), columns=["name", "kind"])


def print_frame(frame: pd.DataFrame, out: TextIO, *, csv: bool = False) -> None:
    if csv:
        frame.to_csv(out, index=False)
        return
    if frame.empty:
        print(" | ".join(frame.columns), file=out)
    else:
        # SQL NULL arrives as None, NaN or NaT depending on the column: show each as NULL.
        shown = frame.copy()
        for column in shown.columns:
            if not pd.api.types.is_numeric_dtype(shown[column]):
                shown[column] = shown[column].astype(object).where(shown[column].notna(), "NULL")
        text = shown.to_string(index=False, max_colwidth=MAX_CELL_CHARS, na_rep="NULL")
        print(text, file=out)
    print(f"({len(frame)} row{'' if len(frame) == 1 else 's'})", file=out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sql", nargs="?", help="one SQL query; none lists the tables and views")
    parser.add_argument("--csv", action="store_true", help="CSV with whole values, for export")
    parser.add_argument("--file", type=Path, help="read the query from this file")
    args = parser.parse_args(argv)
    if args.file is not None:
        if args.sql is not None:
            parser.error("give the query or --file, not both")
        try:
            args.sql = args.file.read_text(encoding="utf-8")
        except OSError as exc:
            print(f"cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
            return 2
    try:
        url = load_settings().warehouse_url
        shown = make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError) as exc:
        print(f"invalid setting: {exc}", file=sys.stderr)
        return 2
    try:
        frame = run_query(url, args.sql)
    except QueryError as exc:
        print(f"{shown}: {exc}", file=sys.stderr)
        return 1
    print_frame(frame, sys.stdout, csv=args.csv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
