"""Recordings and a deployment fixture shared by the real-daemon tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.media_factory import Line, stereo_call
from tests.support.scripts import GOOD_CALL

SHORT_CALL = [
    Line("agent", "Thank you for calling Acme support. How can I help you today?"),
    Line("customer", "Hi, I would like to check my order status, please."),
]


@pytest.fixture(scope="session")
def short_call_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~8 s call."""
    return stereo_call(tmp_path_factory.mktemp("short-call"), "short_call", SHORT_CALL)


@pytest.fixture(scope="session")
def long_call_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~50 s call: several seconds of transcription, a window to kill a run in."""
    return stereo_call(tmp_path_factory.mktemp("long-call"), "long_call", GOOD_CALL)
