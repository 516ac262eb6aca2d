"""The reanalysis command line: it selects consultations from the warehouse (all, an upload
date range, or ids), refuses an unknown prompt version, and asks a real Dagster webserver for
an asset backfill of analysis and scoring only, tagged with the prompt version."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance

from cscoach_pipeline.defs.analysis.prompts import PROMPT_VERSION_TAG
from cscoach_pipeline.defs.warehouse import tables
from cscoach_pipeline.defs.warehouse.resources import WarehouseResource
from cscoach_pipeline.reanalyze import main, select_consultations

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def warehouse(tmp_path: Path) -> WarehouseResource:
    resource = WarehouseResource(url=f"sqlite:///{tmp_path / 'warehouse.db'}")
    rows = [
        ("c-oct", datetime(2026, 10, 30, 23, 0, tzinfo=UTC)),
        ("c-nov-1", datetime(2026, 11, 1, 0, 0, tzinfo=UTC)),
        ("c-nov-30", datetime(2026, 11, 30, 23, 59, tzinfo=UTC)),
        ("c-dec", datetime(2026, 12, 1, 0, 0, tzinfo=UTC)),
        ("c-nov-broken", datetime(2026, 11, 15, 0, 0, tzinfo=UTC)),  # failed, never analysed
    ]
    resource.rows.write_many(
        tables.consultations,
        [
            {"consultation_id": cid, "source_key": f"incoming/{cid}.txt", "file_type": "text",
             "uploaded_at": when, "updated_at": when}
            for cid, when in rows
        ],
    )  # fmt: skip
    resource.rows.write_many(
        tables.analyses,
        [
            {"consultation_id": cid, "prompt_version": "v1", "analyzer": "local-rules",
             "model": "local-rules-v1", "summary": "s", "result_json": {}, "created_at": when}
            for cid, when in rows
            if cid != "c-nov-broken"
        ],
    )  # fmt: skip
    return resource


def test_selection_by_dates_and_ids(warehouse: WarehouseResource) -> None:
    url = warehouse.url
    assert select_consultations(url) == ["c-dec", "c-nov-1", "c-nov-30", "c-oct"]
    november = select_consultations(
        url, uploaded_from=date(2026, 11, 1), uploaded_to=date(2026, 11, 30)
    )
    assert november == ["c-nov-1", "c-nov-30"]
    assert select_consultations(url, ids=["c-dec", "nope"]) == ["c-dec"]


def test_unknown_prompt_version_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--prompt-version", "v99", "--all"])
    assert "unknown prompt version 'v99'" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def webserver(tmp_path: Path, warehouse: WarehouseResource) -> Iterator[tuple[str, Path]]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    port = _free_port()
    env = os.environ | {
        "DAGSTER_HOME": str(home),
        "CSCOACH_WAREHOUSE_URL": warehouse.url,
        "CSCOACH_BUCKET_URL": (tmp_path / "bucket").as_uri(),
    }
    env.pop("GEMINI_API_KEY", None)
    instance = DagsterInstance.from_ref(_instance_ref(home))
    instance.add_dynamic_partitions("consultations", ["c-oct", "c-nov-1", "c-nov-30", "c-dec"])
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-h", "127.0.0.1", "-p",
         str(port), "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        yield url, home
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _instance_ref(home: Path):  # type: ignore[no-untyped-def]
    from dagster._core.instance.ref import InstanceRef

    return InstanceRef.from_dir(str(home))


def test_launches_an_asset_backfill_of_analysis_only(
    webserver: tuple[str, Path], warehouse: WarehouseResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, home = webserver
    monkeypatch.setenv("CSCOACH_WAREHOUSE_URL", warehouse.url)
    code = main(
        ["--prompt-version", "v2", "--uploaded-from", "2026-11-01", "--uploaded-to",
         "2026-11-30", "--webserver", url, "--dagster-home", str(home)]
    )  # fmt: skip
    assert code == 0
    instance = DagsterInstance.from_ref(_instance_ref(home))
    (backfill,) = instance.get_backfills()
    assert backfill.tags[PROMPT_VERSION_TAG] == "v2"
    subset = backfill.asset_backfill_data.target_subset
    assert set(subset.asset_keys) == {
        AssetKey("consultation_analysis"),
        AssetKey("quality_metrics"),
        AssetKey("call_categories"),
    }
    partitions = subset.get_partitions_subset(
        AssetKey("consultation_analysis")
    ).get_partition_keys()
    assert sorted(partitions) == ["c-nov-1", "c-nov-30"]


@pytest.mark.postgres
def test_registers_retired_partitions_in_a_postgres_instance_from_a_plain_url(
    tmp_path: Path, warehouse: WarehouseResource, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The command runs outside `make`, which names psycopg2 for Dagster's processes: a plain
    # postgresql:// DAGSTER_PG_URL must still open Dagster's PostgreSQL storage.
    from cscoach_pipeline.reanalyze import restore_retired
    from tests.support.postgres import temporary_database

    home = tmp_path / "dagster_home"
    subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "install_instance.py"), str(home), "--postgres"],
        check=True,
    )
    retired = datetime(2026, 11, 1, tzinfo=UTC)
    warehouse.retention.mark_retired(["c-oct"], retired, before=retired)
    with temporary_database() as url:
        monkeypatch.setenv("DAGSTER_PG_URL", url)
        with DagsterInstance.from_ref(_instance_ref(home)) as instance:
            instance.add_dynamic_partitions("consultations", ["c-dec"])
        monkeypatch.setenv("DAGSTER_PG_URL", url.replace("postgresql+psycopg2://", "postgresql://"))
        assert restore_retired(warehouse.url, ["c-oct", "c-dec"], home) == ["c-oct"]
        with DagsterInstance.from_ref(_instance_ref(home)) as instance:
            assert sorted(instance.get_dynamic_partitions("consultations")) == ["c-dec", "c-oct"]
    assert warehouse.retention.retired_among(["c-oct", "c-dec"]) == []


def test_refuses_a_dagster_home_without_an_instance(
    tmp_path: Path, warehouse: WarehouseResource
) -> None:
    from cscoach_pipeline.reanalyze import restore_retired

    with pytest.raises(FileNotFoundError, match=r"no dagster\.yaml"):
        restore_retired(warehouse.url, ["c-oct"], tmp_path / "typo")
    assert not (tmp_path / "typo").exists()
