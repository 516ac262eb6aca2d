"""Shared fixtures. Every test gets its own bucket folder and SQLite warehouse; the sensor
settles immediately so tests need not wait (the settle logic has its own tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pipeline import PipelineHarness


@pytest.fixture(autouse=True)
def _fast_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSCOACH_SETTLE_SECONDS", "0")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[PipelineHarness]:
    yield PipelineHarness(root=tmp_path)
