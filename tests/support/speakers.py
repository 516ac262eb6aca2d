"""Scoring who-spoke-when against a generated call's own tracks: what the diarization tests
and benchmark share."""

from __future__ import annotations

import numpy as np

from cscoach_pipeline.defs.speech.transcript import Speaker, Transcript

FRAME = 160  # 10 ms at 16 kHz


def active_frames(track: np.ndarray) -> np.ndarray:
    """Per 10 ms frame: is this track speaking (espeak's own silence is exact zeros)."""
    n = len(track) // FRAME
    return np.abs(track[: n * FRAME]).reshape(n, FRAME).max(axis=1) > 1e-3


def attribution_accuracy(transcript: Transcript, agent: np.ndarray, customer: np.ndarray) -> float:
    """Time-weighted: of the frames where exactly one true speaker talks and a segment lies,
    the share whose segment names that speaker."""
    a, c = active_frames(agent), active_frames(customer)
    n = min(len(a), len(c))
    said = np.full(n, None, dtype=object)
    for segment in transcript.segments:
        said[int(segment.start_s * 100) : int(segment.end_s * 100)] = segment.speaker
    scored = [i for i in range(n) if a[i] != c[i] and said[i] is not None]
    right = [said[i] is (Speaker.AGENT if a[i] else Speaker.CUSTOMER) for i in scored]
    return float(np.mean(right))
