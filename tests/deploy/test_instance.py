"""`make instance` with DAGSTER_PG_URL set installs Dagster's storage in PostgreSQL (the
template plus deploy/dagster.postgres.yaml), switches an unedited copy between the SQLite and
PostgreSQL variants as the variable comes and goes, and never touches an edited one; the
installed file is a valid Dagster instance whose storage is dagster-postgres."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location(
    "install_instance", REPO_ROOT / "deploy" / "install_instance.py"
)
assert spec and spec.loader
install_instance = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install_instance)


def test_postgres_variant_is_installed_and_switched_while_unedited(tmp_path: Path) -> None:
    installed = tmp_path / "dagster.yaml"
    assert "Installed" in install_instance.install(tmp_path, postgres=True)
    config = yaml.safe_load(installed.read_text())
    assert config["storage"] == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}
    assert config["concurrency"]["runs"]["max_concurrent_runs"] == 3  # the template's too
    assert install_instance.install(tmp_path, postgres=True) == ""
    assert "Updated" in install_instance.install(tmp_path, postgres=False)
    assert "storage" not in yaml.safe_load(installed.read_text())
    assert "Updated" in install_instance.install(tmp_path, postgres=True)
    edited = installed.read_text() + "\nrun_retries:\n  enabled: true\n"
    installed.write_text(edited)
    message = install_instance.install(tmp_path, postgres=False)
    assert message.startswith(f"Keeping your edited {installed}")
    assert installed.read_text() == edited


def test_installed_postgres_instance_loads_with_dagster_postgres(
    tmp_path: Path, monkeypatch: object
) -> None:
    from dagster import DagsterInstance
    from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

    from tests.support.postgres import temporary_database

    install_instance.install(tmp_path, postgres=True)
    with temporary_database() as url:
        plain = url  # postgresql+psycopg2://, as `make` exports it
        previous = os.environ.get("DAGSTER_PG_URL")
        os.environ["DAGSTER_PG_URL"] = plain
        try:
            instance = DagsterInstance.from_config(str(tmp_path))
            assert isinstance(instance.run_storage, PostgresRunStorage)
            assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
            assert instance.get_runs_count() == 0
            instance.dispose()
        finally:
            if previous is None:
                os.environ.pop("DAGSTER_PG_URL", None)
            else:
                os.environ["DAGSTER_PG_URL"] = previous


def test_make_instance_follows_dagster_pg_url(tmp_path: Path) -> None:
    import subprocess

    def make_instance(*args: str) -> str:
        done = subprocess.run(
            ["make", "-s", "-C", str(REPO_ROOT), "instance", f"DAGSTER_HOME={tmp_path}", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if k != "DAGSTER_PG_URL"},
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "dagster.postgres.yaml" in make_instance("DAGSTER_PG_URL=postgresql://u@h/dagster")
    assert "storage" in yaml.safe_load((tmp_path / "dagster.yaml").read_text())
    assert "Updated" in make_instance()
    assert "storage" not in yaml.safe_load((tmp_path / "dagster.yaml").read_text())


def test_the_current_postgres_variant_is_listed_as_released() -> None:
    import hashlib

    released = (REPO_ROOT / "deploy" / "dagster.yaml.sha256").read_text()
    digest = hashlib.sha256(install_instance.variant(install_instance.DEFAULT_TEMPLATE, True))
    assert digest.hexdigest() in released
