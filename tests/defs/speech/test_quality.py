"""Proves the `transcript_confidence` check: confident speech passes, mostly unsure speech
fails with its figures, imported text and silence pass as not applicable, and the mean is
weighted by each segment's duration (a long unsure stretch outweighs short sure ones)."""

from __future__ import annotations

from cscoach_pipeline.defs.speech.quality import transcript_confidence
from cscoach_pipeline.defs.speech.transcript import Segment, Transcript


def _stt(*segments: tuple[float, float, float]) -> Transcript:
    return Transcript(
        source="stt",
        segments=[Segment(start_s=a, end_s=b, text="words", confidence=c) for a, b, c in segments],
    )


def test_confident_speech_passes() -> None:
    outcome = transcript_confidence(_stt((0, 5, 0.9), (5, 9, 0.8)))
    assert outcome.passed and outcome.metadata["mean_confidence"] > 0.8


def test_unsure_speech_fails_with_its_figures() -> None:
    outcome = transcript_confidence(_stt((0, 20, 0.3), (20, 22, 0.95)))
    assert not outcome.passed and not outcome.error  # a warning: listen first
    assert outcome.metadata["low_confidence_share"] > 0.8
    assert "listen before trusting" in outcome.description


def test_the_mean_is_weighted_by_duration() -> None:
    short_sure_long_unsure = transcript_confidence(_stt((0, 1, 1.0), (1, 31, 0.45)))
    assert short_sure_long_unsure.metadata["mean_confidence"] < 0.5
    assert not short_sure_long_unsure.passed


def test_text_and_silence_are_not_applicable() -> None:
    text = Transcript(source="text", segments=[Segment(text="Agent: hi")])
    assert transcript_confidence(text).passed
    assert transcript_confidence(Transcript(source="stt", segments=[])).passed
