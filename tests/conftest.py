"""Shared fixtures. Every test gets its own bucket folder and SQLite warehouse; harnesses
settle files immediately so tests need not wait (the settle logic has its own tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.pipeline import PipelineHarness


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from cscoach_pipeline.defs.analysis.analyzers.gemini import _cached_client
    from cscoach_pipeline.resilience import reset_shared

    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    # The circuit breaker, rate limiter and Gemini clients are process-wide by design;
    # every test starts with healthy, empty ones.
    reset_shared()
    _cached_client.cache_clear()
    yield
    reset_shared()
    _cached_client.cache_clear()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[PipelineHarness]:
    yield PipelineHarness(root=tmp_path)


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real recordings made once per session with espeak-ng (two voices) and ffmpeg."""
    from tests.support.media_factory import make_call_recordings

    return make_call_recordings(tmp_path_factory.mktemp("recordings"))


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1, started once per session (tests/support/s3_server.py)."""
    from tests.support.s3_server import s3_server

    with s3_server() as endpoint:
        yield endpoint
