"""Proves the channel-aware transcription layer: the hallucination filter and
`transcribe_recording` with the real faster-whisper engine (bundled tiny.en).

`is_hallucination` drops Whisper's known silence phrases only when decoding was unsure, drops
repetition loops, zero-length and near-zero-confidence fragments, and keeps normal speech.
`transcribe_recording` on real espeak-ng speech: silence gives no segments and no language;
speech on one stereo channel is labelled by `agent_channel`; dual-mono is one 'unknown' mix;
the transcript records the engine and the model's name (`tiny.en`), not its path.
Engines, their registry and model resolution are proven in test_engines*.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cscoach_pipeline.defs.speech.engines import RecognizedSegment, SpeechToTextEngine
from cscoach_pipeline.defs.speech.media import SAMPLE_RATE, channels_are_duplicates, read_wav
from cscoach_pipeline.defs.speech.resources import SpeechToTextResource
from cscoach_pipeline.defs.speech.transcribe import is_hallucination, transcribe_recording
from cscoach_pipeline.defs.speech.transcript import Speaker, Transcript
from tests.support import media_factory as mf

SENTENCE = "My internet has been down for three days and I want it fixed."


def _seg(text: str, **overrides: float | None) -> RecognizedSegment:
    """A confidently decoded 2 s segment unless overridden."""
    values: dict[str, float | None] = {
        "start_s": 1.0,
        "end_s": 3.0,
        "avg_logprob": -0.2,
        "no_speech_prob": 0.05,
        "compression_ratio": 1.3,
        "word_confidence": 0.9,
    }
    values.update(overrides)
    return RecognizedSegment(text=text, **values)  # type: ignore[arg-type]


# -------------------------------------------------------------------------- is_hallucination


@pytest.mark.parametrize(
    "text",
    ["Thank you for watching!", " Thank you.", "Please subscribe", "시청해 주셔서 감사합니다."],
)
def test_known_phrase_with_high_no_speech_prob_is_dropped(text: str) -> None:
    assert is_hallucination(_seg(text, no_speech_prob=0.45))


def test_known_phrase_with_unsure_decoding_is_dropped() -> None:
    assert is_hallucination(_seg("Thank you.", avg_logprob=-0.9))


@pytest.mark.parametrize("text", ["Thank you.", "Thank you very much!", "감사합니다."])
def test_known_phrase_decoded_confidently_is_kept(text: str) -> None:
    # A customer really saying "thank you" must survive.
    assert not is_hallucination(_seg(text))


def test_whisper_silence_rule_drops_unsure_no_speech_segments() -> None:
    unsure = _seg("I will call you back tomorrow.", no_speech_prob=0.7, avg_logprob=-1.3)
    assert is_hallucination(unsure)
    # Likely silence but a confident decoder: kept (only both together mean "no speech").
    assert not is_hallucination(_seg("I will call you back tomorrow.", no_speech_prob=0.7))


def test_repetition_loop_is_dropped() -> None:
    loop = "I am sorry. " * 20
    assert is_hallucination(_seg(loop, compression_ratio=2.6))
    assert not is_hallucination(_seg("I am sorry about the delay.", compression_ratio=2.4))


def test_zero_length_segment_is_dropped() -> None:
    assert is_hallucination(_seg("Hello there.", start_s=4.0, end_s=4.0))
    assert is_hallucination(_seg("Hello there.", start_s=4.0, end_s=4.03))


def test_very_low_word_confidence_is_dropped() -> None:
    assert is_hallucination(_seg("Hello there.", word_confidence=0.1))
    assert not is_hallucination(_seg("Hello there.", word_confidence=0.2))


@pytest.mark.parametrize("text", ["", "   ", "♪♪", "...", " ♪ - ♫ "])
def test_empty_and_music_only_text_is_dropped(text: str) -> None:
    assert is_hallucination(_seg(text))


@pytest.mark.parametrize("word_confidence", [0.85, None])
def test_normal_sentence_is_kept(word_confidence: float | None) -> None:
    segment = _seg("I lost my credit card yesterday.", word_confidence=word_confidence)
    assert not is_hallucination(segment)


# ---------------------------------------------------------------- transcribe_recording (real)


@pytest.fixture(scope="module")
def engine() -> SpeechToTextEngine:
    return SpeechToTextResource().load()


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    """About 5 s of espeak-ng speech at 16 kHz, with half a second of silence either side."""
    root = tmp_path_factory.mktemp("speech")
    clip = mf.speak(SENTENCE, mf.CUSTOMER_VOICE, root / "customer.wav")
    pad = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    return np.concatenate([pad, clip, pad])


def _assert_heard_the_sentence(transcript: Transcript) -> None:
    assert transcript.segments
    text = " ".join(s.text for s in transcript.segments).lower()
    assert "internet" in text and "three days" in text
    assert transcript.language == "en"
    for segment in transcript.segments:
        assert segment.start_s is not None and segment.end_s is not None
        assert 0.0 <= segment.start_s < segment.end_s <= transcript.duration_s + 0.5
        assert segment.confidence is not None and 0.0 < segment.confidence <= 1.0


def test_mono_silence_gives_no_segments(engine: SpeechToTextEngine, tmp_path: Path) -> None:
    audio = read_wav(mf.silent_wav(tmp_path / "silence.wav", 5.0))

    transcript = transcribe_recording(engine, audio)

    assert transcript.segments == []
    assert transcript.language is None
    assert transcript.duration_s == 5.0
    assert transcript.source == "stt"


def test_stereo_silence_gives_no_segments(engine: SpeechToTextEngine, tmp_path: Path) -> None:
    digital_silence = read_wav(mf.silent_wav(tmp_path / "silence.wav", 5.0, channels=2))
    # Two different faint noise floors (about -54 dBFS): real stereo, but nobody talks.
    rng = np.random.default_rng(7)
    noise_floor = (rng.standard_normal((2, 5 * SAMPLE_RATE)) * 2e-3).astype(np.float32)
    assert not channels_are_duplicates(noise_floor)  # takes the per-channel path

    for audio in (digital_silence, noise_floor):
        transcript = transcribe_recording(engine, audio)

        assert transcript.segments == []
        assert transcript.language is None
        assert transcript.duration_s == 5.0


def test_speech_only_on_channel_1_is_the_customer(
    engine: SpeechToTextEngine, speech: np.ndarray
) -> None:
    audio = np.stack([np.zeros_like(speech), speech])

    transcript = transcribe_recording(engine, audio, agent_channel=0)

    _assert_heard_the_sentence(transcript)
    assert {s.speaker for s in transcript.segments} == {Speaker.CUSTOMER}
    assert {s.channel for s in transcript.segments} == {1}
    assert transcript.engine == "faster-whisper"
    assert transcript.model == engine.model_name == "tiny.en"  # a name, not a site-packages path
    assert transcript.duration_s == pytest.approx(len(speech) / SAMPLE_RATE, abs=1e-3)


def test_agent_channel_1_swaps_the_labels(engine: SpeechToTextEngine, speech: np.ndarray) -> None:
    audio = np.stack([np.zeros_like(speech), speech])

    transcript = transcribe_recording(engine, audio, agent_channel=1)

    _assert_heard_the_sentence(transcript)
    assert {s.speaker for s in transcript.segments} == {Speaker.AGENT}
    assert {s.channel for s in transcript.segments} == {1}


def test_dual_mono_is_one_unknown_mix(engine: SpeechToTextEngine, speech: np.ndarray) -> None:
    audio = np.stack([speech, speech])

    transcript = transcribe_recording(engine, audio, agent_channel=0)

    _assert_heard_the_sentence(transcript)
    assert {s.speaker for s in transcript.segments} == {Speaker.UNKNOWN}
    assert {s.channel for s in transcript.segments} == {None}
