"""A real PostgreSQL on loopback for the warehouse tests: use the running server, or start
the machine's Debian cluster; each test session gets a fresh database, dropped afterwards."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2

HOST = os.environ.get("CSCOACH_TEST_PG_HOST", "127.0.0.1")
PORT = int(os.environ.get("CSCOACH_TEST_PG_PORT", "5432"))
USER = os.environ.get("CSCOACH_TEST_PG_USER", "postgres")
PASSWORD = os.environ.get("CSCOACH_TEST_PG_PASSWORD", "")


def _connect(dbname: str = "postgres") -> psycopg2.extensions.connection:
    return psycopg2.connect(
        host=HOST, port=PORT, user=USER, password=PASSWORD, dbname=dbname, connect_timeout=3
    )


def _reachable() -> bool:
    try:
        _connect().close()
        return True
    except psycopg2.OperationalError:
        return False


def ensure_server() -> None:
    if _reachable():
        return
    versions = sorted(os.path.basename(p) for p in glob.glob("/etc/postgresql/*"))
    if versions and shutil.which("pg_ctlcluster"):
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
            check=False,
            capture_output=True,
        )
        for _ in range(30):
            if _reachable():
                return
            time.sleep(0.5)
    raise RuntimeError(
        f"no PostgreSQL reachable on {HOST}:{PORT} as {USER}; `make setup-test` installs "
        "Debian postgresql, or set CSCOACH_TEST_PG_HOST/PORT/USER/PASSWORD"
    )


@contextmanager
def temporary_database() -> Iterator[str]:
    ensure_server()
    name = f"cscoach_test_{uuid.uuid4().hex[:10]}"
    admin = _connect()
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        auth = f"{USER}:{PASSWORD}@" if PASSWORD else f"{USER}@"
        yield f"postgresql+psycopg2://{auth}{HOST}:{PORT}/{name}"
    finally:
        from cscoach_pipeline.defs.warehouse.engine import warehouse_engine

        warehouse_engine.cache_clear()  # release pooled connections before dropping
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
