"""Install the Dagster instance settings into DAGSTER_HOME, never over an operator's edits.

    python deploy/install_instance.py DAGSTER_HOME [--postgres]

The installed file is the template `deploy/dagster.yaml`, plus `deploy/dagster.postgres.yaml`
with --postgres (DAGSTER_PG_URL set: Dagster's storage in PostgreSQL). It is written when
DAGSTER_HOME has none, or replaced when the one there is an unedited copy of a released
variant (its sha256 is listed in deploy/dagster.yaml.sha256, or it is a current variant);
anything else is the operator's and is kept. Standard library only: it runs before `.venv`.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

DEFAULT_TEMPLATE = Path(__file__).resolve().parent / "dagster.yaml"


def variant(template: Path, postgres: bool) -> bytes:
    text = template.read_bytes()
    if not postgres:
        return text
    return text + b"\n" + template.with_name("dagster.postgres.yaml").read_bytes()


def known_hashes(template: Path) -> set[str]:
    released = template.with_name(template.name + ".sha256")
    listed = {
        line.split()[0]
        for line in released.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    snippet = template.with_name("dagster.postgres.yaml").exists()
    current = {hashlib.sha256(variant(template, pg)).hexdigest() for pg in {False, snippet}}
    return listed | current


def install(home: Path, postgres: bool, template: Path = DEFAULT_TEMPLATE) -> str:
    """Install or update `home/dagster.yaml`; returns what was done, for the user."""
    wanted = variant(template, postgres)
    shown = str(template) + (
        f" + {template.with_name('dagster.postgres.yaml')}" if postgres else ""
    )
    home.mkdir(parents=True, exist_ok=True)
    installed = home / "dagster.yaml"
    if not installed.exists():
        installed.write_bytes(wanted)
        return f"Installed {shown} as {installed}"
    current = installed.read_bytes()
    if current == wanted:
        return ""
    if hashlib.sha256(current).hexdigest() in known_hashes(template):
        installed.write_bytes(wanted)
        return f"Updated {installed} to the current {shown}"
    return (
        f"Keeping your edited {installed}; the template may have changed: "
        f"diff {template} {installed}"
        + (
            " (DAGSTER_PG_URL is set: add deploy/dagster.postgres.yaml's storage)"
            if postgres
            else ""
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("home", type=Path, help="DAGSTER_HOME")
    parser.add_argument("--postgres", action="store_true", help="Dagster storage in PostgreSQL")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    args = parser.parse_args(argv)
    message = install(args.home, args.postgres, args.template)
    if message:
        print(message, file=sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
