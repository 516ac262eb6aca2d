"""Partition retention (issue 9, point 5) under the real code server, daemon and webserver:
with CSCOACH_PARTITION_RETENTION_DAYS set (here 20 seconds), the retention sensor removes the
partitions of settled consultations from Dagster's instance while every warehouse row and
bucket artifact stays; `reanalyze.py` registers a retired consultation again, its backfill
runs to the end with prompt v2, and once settled it is retired again. (That an unfinished
run or backfill keeps its partitions is tests/defs/retention/test_policy.py's.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from cscoach_pipeline.defs.partitions import consultation_partitions
from cscoach_pipeline.reanalyze import main as reanalyze
from tests.support.daemon import DagsterDeployment, deployment

pytestmark = [pytest.mark.integration, pytest.mark.timeout(360)]

RETENTION_S = 20
ENV = {
    "CSCOACH_PARTITION_RETENTION_DAYS": str(RETENTION_S / 86400),
    "CSCOACH_RETENTION_INTERVAL_S": "5",
}
CHAT = (
    "Agent: Hello, Acme support, this is Sam. How can I help?\n"
    "Customer: My parcel is late.\nAgent: I am sorry, it arrives tomorrow.\n"
)


def live_partitions(d: DagsterDeployment) -> set[str]:
    return set(d.instance.get_dynamic_partitions(consultation_partitions.name))


def count(d: DagsterDeployment, sql: str, **params: str) -> int:
    with d.engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_old_partitions_leave_the_instance_and_come_back_for_a_reanalysis(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with deployment(request, tmp_path, env=ENV) as d:
        d.drop("team-a/chat-1.txt", CHAT)
        d.drop("team-a/chat-2.txt", CHAT.replace("Sam", "Kim"))
        keys = {d.source_key("team-a/chat-1.txt"), d.source_key("team-a/chat-2.txt")}
        final = d.wait_for_final(keys, timeout=120)
        assert {row["status"] for row in final.values()} == {"succeeded"}, d.describe()
        ids = sorted(row["consultation_id"] for row in final.values())
        artifacts = sorted(
            p for p in d.bucket.rglob("*") if p.is_file() and "incoming" not in p.parts
        )
        assert artifacts

        d.wait_for(lambda: not live_partitions(d) & set(ids), 90, "the partitions retired")
        # Everything but the partition key stays: rows, artifacts, run history.
        for table in ("consultations", "analyses", "quality_metrics", "transcript_segments"):
            assert count(d, f"SELECT count(DISTINCT consultation_id) FROM {table}") == 2, table
        assert all(path.exists() for path in artifacts)
        assert len(d.runs()) == 2

        monkeypatch.setenv("CSCOACH_WAREHOUSE_URL", d.warehouse_url)
        webserver = f"http://127.0.0.1:{d.webserver_port}"
        command = ["--prompt-version", "v2", "--ids", ids[0], "--webserver", webserver]
        assert reanalyze([*command, "--dagster-home", str(d.dagster_home)]) == 0
        assert ids[0] in live_partitions(d) and ids[1] not in live_partitions(d)

        def reanalysed() -> bool:
            return bool(
                count(
                    d,
                    "SELECT count(*) FROM analyses WHERE consultation_id = :cid "
                    "AND prompt_version = 'v2'",
                    cid=ids[0],
                )
            )

        d.wait_for(reanalysed, 180, "the v2 analysis")
        backfill_runs = [run for run in d.runs() if run.tags.get("dagster/backfill")]
        d.wait_for(lambda: all(run.finished for run in d.runs()), 60, "the backfill's runs")
        assert backfill_runs and {run.status for run in d.runs()} == {"SUCCESS"}, d.describe()
        # Settled again, it leaves again after another retention period.
        d.wait_for(lambda: ids[0] not in live_partitions(d), 120, "the partition retired again")
