"""Dagster's own storage on PostgreSQL (issue 9, part 1), under the real code server, daemon
and webserver: with the instance `make instance` installs when DAGSTER_PG_URL is set
(deploy/dagster.postgres.yaml over the template) and the warehouse on PostgreSQL too, a chat
dropped into the bucket gets its partition, its run and its rows; the runs, the event log and
the sensor state are in that database, and DAGSTER_HOME holds no SQLite storage at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.support.daemon import DagsterDeployment, deployment
from tests.support.postgres import temporary_database

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.timeout(240)]

REPO_ROOT = Path(__file__).resolve().parents[2]
POSTGRES_STORAGE = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.postgres.yaml").read_text())
CHAT = (
    "Agent: Hello, thank you for calling Acme support, my name is Sarah. How can I help?\n"
    "Customer: My parcel has not arrived yet.\n"
    "Agent: I am sorry about that; it will arrive tomorrow.\n"
    "Customer: Thank you.\n"
)


@pytest.fixture
def postgres_deployment(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DagsterDeployment, str]]:
    with temporary_database() as dagster_db, temporary_database() as warehouse_db:
        # What `make` exports for DAGSTER_PG_URL=postgresql://... (the psycopg2 driver named).
        dagster_url = dagster_db
        monkeypatch.setenv("DAGSTER_PG_URL", dagster_url)  # the harness's own instance too
        with deployment(
            request,
            tmp_path,
            env={"DAGSTER_PG_URL": dagster_url},
            warehouse_url=warehouse_db,
            instance_overrides=POSTGRES_STORAGE,
        ) as d:
            yield d, dagster_url


def test_a_consultation_runs_with_dagster_storage_in_postgres(
    postgres_deployment: tuple[DagsterDeployment, str],
) -> None:
    d, dagster_url = postgres_deployment
    d.drop("team-a/chat-01.txt", CHAT)
    key = d.source_key("team-a/chat-01.txt")
    final = d.wait_for_final({key}, timeout=120)
    assert final[key]["status"] == "succeeded", d.describe()
    # The last step writes the status a moment before Dagster marks the run finished.
    d.wait_for_runs_finished([final[key]["consultation_id"]], timeout=60)

    engine = create_engine(dagster_url)
    with engine.connect() as conn:
        runs = conn.execute(text("SELECT status FROM runs")).scalars().all()
        events = conn.execute(text("SELECT count(*) FROM event_logs")).scalar_one()
        ticks = conn.execute(
            text("SELECT count(*) FROM job_ticks WHERE selector_id IS NOT NULL")
        ).scalar_one()
    engine.dispose()
    assert runs.count("SUCCESS") == 1
    assert events > 0 and ticks > 0  # event log and sensor ticks are there too
    sqlite_files = [p.name for p in d.dagster_home.rglob("*.db")]
    assert sqlite_files == [], sqlite_files
