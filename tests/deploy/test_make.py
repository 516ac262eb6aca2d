"""What a new user meets in the Makefile, run for real with `make` (always on a scratch VENV
and DAGSTER_HOME, never the project's): `make dev` stops at once, before any set-up, with a
message naming `PORT=` when its port is taken; the instance template lives in deploy/ (a
dagster.yaml in the working directory makes Dagster warn) and is installed into DAGSTER_HOME
only when none is there or the one there is an unedited released template, so an operator's
edits survive; a .venv without a working pip is detected and rebuilt; `make sql` prints a query.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = REPO_ROOT / "deploy" / "dagster.yaml"

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(REPO_ROOT), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_make_dev_on_a_taken_port_stops_first_and_names_port(
    taken_port: int, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    done = make("dev", f"PORT={taken_port}", f"VENV={venv}", f"DAGSTER_HOME={tmp_path / 'home'}")
    assert done.returncode != 0
    assert f"port {taken_port} on 127.0.0.1 is already in use" in done.stderr
    assert f"make dev PORT={taken_port + 1}" in done.stderr
    # Stopped before set-up and before Dagster: no venv, no instance.
    assert not venv.exists()
    assert not (tmp_path / "home").exists()


def test_a_free_port_passes_the_check() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    done = make("-s", "check-port", f"PORT={port}")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_no_dagster_yaml_in_the_working_directory() -> None:
    # `make dev` runs Dagster from the repository root; a dagster.yaml there is ignored with
    # a warning, because DAGSTER_HOME points elsewhere.
    assert not (REPO_ROOT / "dagster.yaml").exists()
    assert TEMPLATE.is_file()


def test_the_current_template_is_listed_as_released() -> None:
    digest = hashlib.sha256(TEMPLATE.read_bytes()).hexdigest()
    listed = (REPO_ROOT / "deploy" / "dagster.yaml.sha256").read_text().split()
    assert digest in listed, "append the new template's sha256 to deploy/dagster.yaml.sha256"


def test_instance_template_is_installed_updated_or_kept(tmp_path: Path) -> None:
    old = b"telemetry:\n  enabled: false\n"
    template = tmp_path / "dagster.yaml"
    template.write_bytes(old + b"sensors:\n  use_threads: true\n")
    (tmp_path / "dagster.yaml.sha256").write_text(
        f"# released\n{hashlib.sha256(old).hexdigest()}  v1\n"
        f"{hashlib.sha256(template.read_bytes()).hexdigest()}  v2\n"
    )
    home = tmp_path / "home"
    installed = home / "dagster.yaml"

    def instance() -> str:
        done = make("-s", "instance", f"INSTANCE_TEMPLATE={template}", f"DAGSTER_HOME={home}")
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "Installed" in instance()
    assert installed.read_bytes() == template.read_bytes()
    assert instance() == ""  # already the current template

    installed.write_bytes(old)  # an unedited older release
    assert "Updated" in instance()
    assert installed.read_bytes() == template.read_bytes()

    edited = old + b"run_monitoring:\n  enabled: false\n"
    installed.write_bytes(edited)
    assert f"Keeping your edited {installed}" in instance()
    assert installed.read_bytes() == edited


def test_a_venv_without_pip_is_rebuilt(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    # Even with its marker newer than pyproject.toml, setup must not trust it.
    (venv / ".installed").touch()
    planned = make("-n", "setup", f"VENV={venv}")
    assert f"{venv}/bin/python -m pip install --quiet -e ." in planned.stdout

    rebuilt = make("venv", f"VENV={venv}", f"PYTHON={sys.executable}")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "has no working python or pip: recreating it" in rebuilt.stdout
    pip = subprocess.run([venv / "bin" / "python", "-m", "pip", "--version"], check=False)
    assert pip.returncode == 0

    (venv / ".installed").touch()
    (venv / ".installed-diarization").touch()
    assert "pip install" not in make("-n", "setup", f"VENV={venv}").stdout


def test_make_sql_prints_a_query(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    database = tmp_path / "warehouse.db"
    engine = create_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE notes (id INTEGER, body TEXT)")
        conn.exec_driver_sql("INSERT INTO notes VALUES (1, 'it''s \"quoted\"')")
    engine.dispose()
    venv = Path(sys.prefix)
    done = make(
        "-s",
        f"-o{venv}/.installed",  # the running venv is set up already: no pip install
        f"-o{venv}/.installed-diarization",
        "sql",
        f"VENV={venv}",
        # Quotes and % reach the database as typed.
        """Q=SELECT body FROM notes WHERE body LIKE 'it''s "quo%'""",
        env={"CSCOACH_WAREHOUSE_URL": f"sqlite:///{database}"},
    )
    assert done.returncode == 0, done.stderr
    assert [line.strip() for line in done.stdout.splitlines()] == [
        "body",
        'it\'s "quoted"',
        "(1 row)",
    ]
