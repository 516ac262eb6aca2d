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


@pytest.fixture(scope="session")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real recordings made once per session with espeak-ng (two voices) and ffmpeg."""
    from tests.support import media_factory as mf
    from tests.support.scripts import BAD_CALL, GOOD_CALL

    root = tmp_path_factory.mktemp("recordings")
    agent, customer = mf.dialogue_tracks(GOOD_CALL, root / "good")
    bad_agent, bad_customer = mf.dialogue_tracks(BAD_CALL, root / "bad")
    files = {
        "good_stereo.wav": mf.write_wav(root / "good_stereo.wav", [agent, customer]),
        "good_mono.wav": mf.write_wav(root / "good_mono.wav", [agent + customer]),
        "bad_stereo.wav": mf.write_wav(root / "bad_stereo.wav", [bad_agent, bad_customer]),
    }
    files["good_mono.mp3"] = mf.encode(files["good_mono.wav"], root / "good_mono.mp3")
    files["bad_stereo.mp4"] = mf.encode(files["bad_stereo.wav"], root / "bad.mp4", video=True)
    files["silence.wav"] = mf.silent_wav(root / "silence.wav", 8.0)
    files["no_audio.mp4"] = mf.video_without_audio(root / "no_audio.mp4")
    return files
