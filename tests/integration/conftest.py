"""Recordings and a deployment fixture shared by the real-daemon tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import media_factory as mf
from tests.support.media_factory import Line
from tests.support.scripts import GOOD_CALL

SHORT_CALL = [
    Line("agent", "Thank you for calling Acme support. How can I help you today?"),
    Line("customer", "Hi, I would like to check my order status, please."),
]


@pytest.fixture(scope="session")
def short_call_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~8 s stereo call (agent left, customer right), espeak-ng voices."""
    root = tmp_path_factory.mktemp("short-call")
    agent, customer = mf.dialogue_tracks(SHORT_CALL, root / "lines")
    return mf.write_wav(root / "short_call.wav", [agent, customer])


@pytest.fixture(scope="session")
def long_call_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~50 s stereo call: several seconds of transcription, a window to kill a run in."""
    root = tmp_path_factory.mktemp("long-call")
    agent, customer = mf.dialogue_tracks(GOOD_CALL, root / "lines")
    return mf.write_wav(root / "long_call.wav", [agent, customer])
