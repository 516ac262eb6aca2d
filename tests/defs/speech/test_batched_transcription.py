"""Proves the batched decoding path (faster-whisper's BatchedInferencePipeline) with the real
bundled model on generated speech, next to the sequential path on the same audio.

On a two-speaker stereo call and its mono mix, batched output keeps what the pipeline relies
on: the script's words (word error rate within a bound of the sequential path's), one speaker
per channel, segments in time order that start and end on speech (word timings), split at
pauses, recorded as `decoding="batched"`. On silence, a noise floor and a long silent tail the
batched path, like the sequential one, invents no text. Automatic sizing (threads from cores
and concurrent steps, batching by model) is proven in test_sizing.py and test_engines.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cscoach_pipeline.defs.speech.engines import SpeechToTextEngine
from cscoach_pipeline.defs.speech.media import SAMPLE_RATE
from cscoach_pipeline.defs.speech.resources import SpeechToTextResource
from cscoach_pipeline.defs.speech.transcribe import transcribe_recording
from cscoach_pipeline.defs.speech.transcript import Speaker, Transcript
from tests.support import media_factory as mf
from tests.support.scripts import BAD_CALL, GOOD_CALL, script_text
from tests.support.wer import word_error_rate

CALL = GOOD_CALL + BAD_CALL


def _wer(reference: str, transcript: Transcript, speaker: Speaker | None = None) -> float:
    said = " ".join(s.text for s in transcript.segments if speaker in (None, s.speaker))
    return word_error_rate(reference, said)


@pytest.fixture(scope="module")
def batched() -> SpeechToTextEngine:
    # Batched on every length, so a one-minute call goes through the pipeline's batches.
    return SpeechToTextResource(batch_size=8, batch_min_audio_s=0.0, cpu_threads=1).load()


@pytest.fixture(scope="module")
def sequential() -> SpeechToTextEngine:
    return SpeechToTextResource(batch_size=1, cpu_threads=1).load()


@pytest.fixture(scope="module")
def call(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """The good and the bad call back to back (about a minute): agent left, customer right."""
    agent, customer = mf.dialogue_tracks(CALL, tmp_path_factory.mktemp("call"))
    return np.stack([agent, customer])


def _speech_share(samples: np.ndarray, start_s: float, end_s: float) -> float:
    """Share of 20 ms frames in [start, end] that carry sound (espeak's silence is digital)."""
    clip = samples[int(start_s * SAMPLE_RATE) : int(end_s * SAMPLE_RATE)]
    frames = clip[: len(clip) // 320 * 320].reshape(-1, 320)
    if not len(frames):
        return 0.0
    return float(np.mean(np.sqrt(np.mean(frames**2, axis=1)) > 1e-3))


def test_batched_stereo_keeps_words_speakers_and_timings(
    batched: SpeechToTextEngine, sequential: SpeechToTextEngine, call: np.ndarray
) -> None:
    fast = transcribe_recording(batched, call, agent_channel=0)
    slow = transcribe_recording(sequential, call, agent_channel=0)

    assert (fast.decoding, slow.decoding) == ("batched", "sequential")
    agent_said = script_text([line for line in CALL if line.speaker == "agent"])
    customer_said = script_text([line for line in CALL if line.speaker == "customer"])
    for speaker, reference in ((Speaker.AGENT, agent_said), (Speaker.CUSTOMER, customer_said)):
        # Each channel's words are that speaker's script, as well as sequentially decoded.
        assert _wer(reference, fast, speaker) <= max(0.2, _wer(reference, slow, speaker) + 0.1)
    assert {s.speaker for s in fast.segments} == {Speaker.AGENT, Speaker.CUSTOMER}
    assert {s.channel for s in fast.segments if s.speaker is Speaker.AGENT} == {0}
    # In time order, turns apart (split at pauses, not one 30 s chunk each), on speech.
    starts = [s.start_s for s in fast.segments]
    assert starts == sorted(starts)
    assert len(fast.segments) >= len(CALL) - 2
    for segment in fast.segments:
        assert segment.start_s is not None and segment.end_s is not None
        assert 0.0 <= segment.start_s < segment.end_s <= fast.duration_s
        assert segment.end_s - segment.start_s < 30.0
        assert _speech_share(call[segment.channel], segment.start_s, segment.end_s) > 0.6
        assert segment.confidence is not None and 0.0 < segment.confidence <= 1.0


def test_batched_mono_mix_hears_the_whole_call(
    batched: SpeechToTextEngine, sequential: SpeechToTextEngine, call: np.ndarray
) -> None:
    mono = call.sum(axis=0, keepdims=True)

    fast = transcribe_recording(batched, mono)
    slow = transcribe_recording(sequential, mono)

    assert fast.decoding == "batched"
    assert {s.speaker for s in fast.segments} == {Speaker.UNKNOWN}
    reference = script_text(CALL)
    assert _wer(reference, fast) <= max(0.2, _wer(reference, slow) + 0.1)


@pytest.mark.parametrize("kind", ["digital silence", "noise floor"])
def test_batched_silence_gives_no_text(
    batched: SpeechToTextEngine, tmp_path: Path, kind: str
) -> None:
    seconds = 90
    if kind == "digital silence":
        from cscoach_pipeline.defs.speech.media import read_wav

        audio = read_wav(mf.silent_wav(tmp_path / "silence.wav", seconds, channels=2))
    else:
        rng = np.random.default_rng(11)
        audio = (rng.standard_normal((2, seconds * SAMPLE_RATE)) * 2e-3).astype(np.float32)

    transcript = transcribe_recording(batched, audio)

    assert transcript.segments == []
    assert transcript.language is None


def test_batched_invents_nothing_in_a_long_silent_tail(
    batched: SpeechToTextEngine, call: np.ndarray
) -> None:
    rng = np.random.default_rng(3)
    tail = (rng.standard_normal((2, 60 * SAMPLE_RATE)) * 2e-3).astype(np.float32)
    spoken_s = call.shape[1] / SAMPLE_RATE

    transcript = transcribe_recording(batched, np.concatenate([call, tail], axis=1))

    assert transcript.segments
    assert all(s.end_s is not None and s.end_s <= spoken_s + 1.0 for s in transcript.segments)
