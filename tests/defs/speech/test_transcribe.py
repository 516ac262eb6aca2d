"""Proves the speech-to-text layer: the hallucination filter, pause splitting, channel-aware
transcription with the real faster-whisper engine (bundled tiny.en), and model resolution.

`is_hallucination` drops Whisper's known silence phrases only when decoding was unsure, drops
repetition loops, zero-length and near-zero-confidence fragments, and keeps normal speech.
`split_at_pauses` cuts a segment at pauses longer than 0.8 s, timing each piece by its words.
`transcribe_recording` on real espeak-ng speech: silence gives no segments and no language;
speech on one stereo channel is labelled by `agent_channel`; dual-mono is one 'unknown' mix.
`resolve_whisper_model` maps "" to the bundled model, resolves existing paths, passes names
through, and the openai-whisper engine refuses a CTranslate2 model (or the missing extra) with a
clear message.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cscoach_pipeline.defs.speech.media import SAMPLE_RATE, channels_are_duplicates, read_wav
from cscoach_pipeline.defs.speech.resources import SpeechToTextResource
from cscoach_pipeline.defs.speech.transcribe import (
    OpenAIWhisperEngine,
    RecognizedSegment,
    SpeechToTextEngine,
    bundled_model_path,
    is_hallucination,
    resolve_whisper_model,
    split_at_pauses,
    transcribe_recording,
)
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


# --------------------------------------------------------------------------- split_at_pauses


def _word(text: str, start: float, end: float, probability: float) -> SimpleNamespace:
    return SimpleNamespace(word=text, start=start, end=end, probability=probability)


def _whisper_segment(words: list[SimpleNamespace] | None, **extra: object) -> SimpleNamespace:
    fields: dict[str, object] = {
        "start": 0.0,
        "end": 30.0,  # Whisper's decoding window, not the speech
        "text": " Hello there. My card is blocked.",
        "avg_logprob": -0.25,
        "no_speech_prob": 0.02,
        "compression_ratio": 1.1,
        "words": words,
    }
    fields.update(extra)
    return SimpleNamespace(**fields)


def test_split_at_pauses_cuts_long_pauses_and_times_by_words() -> None:
    words = [
        _word(" Hello", 1.0, 1.4, 0.9),
        _word(" there.", 1.9, 2.2, 0.7),  # 0.5 s pause: same utterance
        _word(" My", 3.4, 3.6, 0.8),  # 1.2 s pause: new utterance
        _word(" card", 3.7, 4.0, 0.6),
        _word(" is", 4.1, 4.2, 1.0),
        _word(" blocked.", 5.5, 6.0, 0.4),  # 1.3 s pause: new utterance
    ]

    pieces = split_at_pauses(_whisper_segment(words))

    assert [p.text for p in pieces] == ["Hello there.", "My card is", "blocked."]
    assert [(p.start_s, p.end_s) for p in pieces] == [(1.0, 2.2), (3.4, 4.2), (5.5, 6.0)]
    assert [p.word_confidence for p in pieces] == pytest.approx([0.8, 0.8, 0.4])
    for piece in pieces:
        assert (piece.avg_logprob, piece.no_speech_prob, piece.compression_ratio) == (
            -0.25,
            0.02,
            1.1,
        )


def test_split_at_pauses_keeps_a_continuous_segment_whole() -> None:
    words = [_word(" Yes,", 0.5, 0.8, 0.9), _word(" please.", 1.5, 1.9, 0.9)]  # 0.7 s pause

    pieces = split_at_pauses(_whisper_segment(words))

    assert len(pieces) == 1
    assert (pieces[0].start_s, pieces[0].end_s, pieces[0].text) == (0.5, 1.9, "Yes, please.")


@pytest.mark.parametrize("words", [None, []])
def test_split_at_pauses_without_word_timings_uses_segment_times(
    words: list[SimpleNamespace] | None,
) -> None:
    pieces = split_at_pauses(_whisper_segment(words, start=2.0, end=4.5))

    assert len(pieces) == 1
    assert (pieces[0].start_s, pieces[0].end_s) == (2.0, 4.5)
    assert pieces[0].text == " Hello there. My card is blocked."
    assert pieces[0].word_confidence is None


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
    assert transcript.model == engine.model_name
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


# ---------------------------------------------------------------------- model resolution


def test_empty_model_resolves_to_the_bundled_model() -> None:
    resolved = resolve_whisper_model("")

    assert resolved == bundled_model_path()
    assert Path(resolved).is_dir()
    assert (Path(resolved) / "model.bin").is_file()


def test_existing_model_path_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model_dir = tmp_path / "models" / "whisper-small-ct2"
    model_dir.mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))

    assert resolve_whisper_model("models/whisper-small-ct2") == str(model_dir.resolve())
    assert resolve_whisper_model("~/models/whisper-small-ct2") == str(model_dir.resolve())


@pytest.mark.parametrize("name", ["small", "large-v3", "Systran/faster-whisper-base"])
def test_model_name_passes_through(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # so no folder of that name can exist by accident

    assert resolve_whisper_model(name) == name


def test_openai_whisper_refuses_a_ctranslate2_model_clearly() -> None:
    model_dir = resolve_whisper_model("")

    with pytest.raises(RuntimeError) as caught:
        OpenAIWhisperEngine(model_dir)

    message = str(caught.value)
    # Without the optional package installed, the missing extra is reported first; with it,
    # the CTranslate2 directory is refused. Both are readable, actionable messages.
    assert ("CTranslate2" in message and model_dir in message) or (
        "optional extra" in message and "make setup-openai-whisper" in message
    )


def test_resource_rejects_an_unknown_engine() -> None:
    with pytest.raises(ValueError, match="faster-whisper, openai-whisper"):
        SpeechToTextResource(engine="whisper-cpp").load()
