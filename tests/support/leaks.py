"""Where a deployment could leak PII, gathered as text for "never appears" assertions:
every warehouse table a BI user can read, every artifact outside `private/`, and the raw
bytes of every file under DAGSTER_HOME (run and event storage, run tags, materialization
metadata, sensor tick logs, compute logs), so nothing Dagster stored is missed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import inspect, text

# The sensor's internal inventory and state keep real object keys (the steps open them);
# they are not part of the BI contract (README: internal tables).
INTERNAL_TABLES = frozenset({"bucket_objects", "sensor_state"})


def warehouse_text(engine: Any) -> str:
    parts: list[str] = []
    with engine.connect() as conn:
        names = inspect(conn).get_table_names() + inspect(conn).get_view_names()
        for name in sorted(set(names) - INTERNAL_TABLES):
            for row in conn.execute(text(f'SELECT * FROM "{name}"')):
                parts.append(" | ".join(str(value) for value in row))
    return "\n".join(parts)


def artifacts_text(bucket: Path) -> str:
    parts: list[str] = []
    root = bucket / "artifacts"
    for path in sorted(root.rglob("*")) if root.exists() else []:
        if path.is_file() and "private" not in path.relative_to(root).parts:
            parts.append(path.read_bytes().decode("utf-8", errors="ignore"))
    return "\n".join(parts)


def private_text(bucket: Path) -> str:
    root = bucket / "artifacts"
    return "\n".join(p.read_text(errors="ignore") for p in root.rglob("private/*") if p.is_file())


def dagster_home_bytes(dagster_home: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in sorted(dagster_home.rglob("*")) if p.is_file())


def digits(number: str) -> str:
    """A pattern for a digit group that is not part of a longer hex or decimal token (run
    ids, hashes and timestamps under DAGSTER_HOME are full of digits)."""
    return rf"(?<![0-9A-Fa-f]){number}(?![0-9A-Fa-f])"


def leaks(
    patterns: list[str], *, engine: Any, bucket: Path, dagster_home: Path, extra: str = ""
) -> dict[str, list[str]]:
    """Which regex patterns match where: {place: [pattern, ...]}, empty when nothing leaked."""
    places = {
        "warehouse": warehouse_text(engine).encode(),
        "artifacts": artifacts_text(bucket).encode(),
        "dagster_home": dagster_home_bytes(dagster_home),
        "extra": extra.encode(),
    }
    compiled = {p: re.compile(p.encode()) for p in patterns}
    found = {
        place: [p for p, rx in compiled.items() if rx.search(blob)]
        for place, blob in places.items()
    }
    return {place: hits for place, hits in found.items() if hits}
