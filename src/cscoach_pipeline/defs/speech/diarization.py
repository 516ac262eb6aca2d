"""Who spoke when in a mono recording.

Voice embeddings over sliding windows (Resemblyzer's pretrained encoder, which ships inside
its PyPI package: nothing is downloaded at run time) are clustered into speakers, two by
default and more when the recording says so (a transfer to a second agent, a three-way
call). Each recognised word takes the speaker of the windows around it, and a segment that
spans a change of speaker is split there, on Whisper's word timestamps."""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

from cscoach_pipeline.defs.speech.engines import RecognizedSegment
from cscoach_pipeline.defs.speech.engines.base import RecognizedWord
from cscoach_pipeline.defs.speech.media import SAMPLE_RATE

# Resemblyzer's partial utterances cover 1.6 s; two per second is enough to place a turn
# change within a word or two, at half the cost of its default rate.
WINDOWS_PER_SECOND = 2.0
WINDOW_S = 1.6
# A further speaker must beat fewer on silhouette by this much. Measured on generated calls:
# two voices score 0.47-0.49 as two and 0.35-0.40 forced into three; a transfer to a third
# voice 0.45 as three against 0.41 as two.
EXTRA_SPEAKER_MARGIN = 0.02
# Below this silhouette the windows are one voice (a voicemail, a monologue).
ONE_SPEAKER_SILHOUETTE = 0.08
MIN_CLUSTER_WINDOWS = 3


class DiarizationUnavailable(Exception):
    """Mono diarization cannot run here (the extra is not installed); speakers stay unknown."""


@dataclass(frozen=True)
class VoiceWindows:
    centers_s: np.ndarray  # (n,) the window's middle, seconds from the start
    embeddings: np.ndarray  # (n, d), L2-normalised


class VoiceEmbedder(ABC):
    name: str

    @abstractmethod
    def windows(self, samples: np.ndarray) -> VoiceWindows:
        """Embeddings of 16 kHz mono float32 audio over sliding windows."""


class ResemblyzerEmbedder(VoiceEmbedder):
    """Resemblyzer's GE2E voice encoder on the CPU, `threads` torch threads."""

    name = "resemblyzer"

    def __init__(self, threads: int = 1) -> None:
        try:
            with warnings.catch_warnings():
                # webrtcvad, which Resemblyzer imports, still imports pkg_resources.
                warnings.simplefilter("ignore")
                import torch
                from resemblyzer import VoiceEncoder
        except ImportError as exc:
            raise DiarizationUnavailable(
                f"mono diarization needs the `diarization` extra ({exc.name} is not "
                "installed): `make setup` installs it"
            ) from exc
        if threads > 0:
            torch.set_num_threads(threads)
        self._encoder = VoiceEncoder("cpu", verbose=False)

    def windows(self, samples: np.ndarray) -> VoiceWindows:
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if len(samples) < int(WINDOW_S * SAMPLE_RATE):
            return VoiceWindows(np.zeros(0), np.zeros((0, 256), dtype=np.float32))
        _, partials, splits = self._encoder.embed_utterance(
            samples, return_partials=True, rate=WINDOWS_PER_SECOND, min_coverage=0.5
        )
        centers = np.array([(s.start + s.stop) / 2 / SAMPLE_RATE for s in splits])
        return VoiceWindows(centers, np.asarray(partials, dtype=np.float32))


@dataclass(frozen=True)
class Diarization:
    segments: list[tuple[RecognizedSegment, int]]  # each piece with its speaker (0, 1, ...)
    speaker_count: int
    separation: float | None  # the clustering's silhouette: how distinct the voices were


def cluster_speakers(embeddings: np.ndarray, max_speakers: int = 3) -> tuple[np.ndarray, float]:
    """Speaker labels 0..k-1 of the windows, and the silhouette they were chosen by."""
    n = len(embeddings)
    if n < 2 * MIN_CLUSTER_WINDOWS:
        return np.zeros(n, dtype=int), 0.0
    best: tuple[float, np.ndarray] | None = None
    for k in range(2, max(2, max_speakers) + 1):
        if n < k * MIN_CLUSTER_WINDOWS:
            break
        # k-means on unit vectors (spherical): on generated calls it told a third voice
        # apart where average-linkage clustering merged it into the nearest one.
        labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(embeddings)
        sizes = np.bincount(labels, minlength=k)
        if k > 2 and sizes.min() < MIN_CLUSTER_WINDOWS:
            continue  # a handful of odd windows (noise, laughter) is no extra speaker
        score = float(silhouette_score(embeddings, labels, metric="cosine"))
        if best is None or score > best[0] + EXTRA_SPEAKER_MARGIN:
            best = (score, labels)
    assert best is not None
    score, labels = best
    if score < ONE_SPEAKER_SILHOUETTE:
        return np.zeros(n, dtype=int), score
    return _in_order_of_appearance(labels), score


def _in_order_of_appearance(labels: np.ndarray) -> np.ndarray:
    order = {old: new for new, old in enumerate(dict.fromkeys(labels.tolist()))}
    return np.array([order[label] for label in labels.tolist()], dtype=int)


def word_speakers(
    words: list[RecognizedWord], centers_s: np.ndarray, labels: np.ndarray
) -> list[int]:
    """Each word's speaker: a vote of the windows over it, nearer centres weighing more."""
    half = WINDOW_S / 2
    result = []
    for word in words:
        middle = (word.start_s + word.end_s) / 2
        distance = np.abs(centers_s - middle)
        near = distance <= half
        if not near.any():
            result.append(int(labels[int(np.argmin(distance))]))
            continue
        votes: Counter[int] = Counter()
        for label, d in zip(labels[near].tolist(), distance[near].tolist(), strict=True):
            votes[label] += 1.0 - d / half + 1e-6
        result.append(votes.most_common(1)[0][0])
    return _smooth(words, result)


def _smooth(words: list[RecognizedWord], speakers: list[int]) -> list[int]:
    # One short word between two of another speaker is the window's blur, not a turn.
    smoothed = list(speakers)
    for i in range(1, len(words) - 1):
        before, after = smoothed[i - 1], speakers[i + 1]
        if before == after != smoothed[i] and words[i].end_s - words[i].start_s < 0.5:
            smoothed[i] = before
    return smoothed


def split_by_speaker(
    segment: RecognizedSegment, speakers: list[int]
) -> list[tuple[RecognizedSegment, int]]:
    """A segment cut where its words change speaker."""
    pieces: list[tuple[RecognizedSegment, int]] = []
    start = 0
    for i in range(1, len(speakers) + 1):
        if i == len(speakers) or speakers[i] != speakers[start]:
            words = segment.words[start:i]
            pieces.append(
                (
                    replace(
                        segment,
                        start_s=words[0].start_s,
                        end_s=words[-1].end_s,
                        text="".join(w.text for w in words).strip(),
                        word_confidence=float(np.mean([w.probability for w in words])),
                        words=words,
                    ),
                    speakers[start],
                )
            )
            start = i
    return pieces


def diarize(
    samples: np.ndarray,
    segments: list[RecognizedSegment],
    embedder: VoiceEmbedder,
    max_speakers: int = 3,
) -> Diarization:
    """Speakers of a mono recording's recognised segments."""
    windows = embedder.windows(samples)
    words = [w for s in segments for w in s.words]
    if not words or len(windows.centers_s) == 0:
        return Diarization([(s, 0) for s in segments], 1 if segments else 0, None)
    # Only windows over speech: silence and hold music are nobody's voice.
    spans = np.array([(w.start_s, w.end_s) for w in words])
    over_speech = np.array(
        [
            bool(np.any((spans[:, 0] <= c + 0.4) & (spans[:, 1] >= c - 0.4)))
            for c in windows.centers_s
        ]
    )
    if over_speech.sum() == 0:
        return Diarization([(s, 0) for s in segments], 1, None)
    centers, embeddings = windows.centers_s[over_speech], windows.embeddings[over_speech]
    labels, separation = cluster_speakers(embeddings, max_speakers)
    pieces: list[tuple[RecognizedSegment, int]] = []
    for segment in segments:
        if not segment.words:
            middle = (segment.start_s + segment.end_s) / 2
            pieces.append((segment, int(labels[int(np.argmin(np.abs(centers - middle)))])))
            continue
        pieces += split_by_speaker(segment, word_speakers(list(segment.words), centers, labels))
    speakers = {label for _, label in pieces}
    return Diarization(pieces, len(speakers), round(separation, 4))
