"""Sentiment of every turn (-1..1 with a label) and of each quarter of the call per speaker,
as Amazon Transcribe Call Analytics reports it.

Where the analysis came from Gemini with a prompt that asks it (`turn_sentiment`), the model's
score of a segment is used; every other segment is scored offline by a lexicon method: VADER
(its lexicon ships in the `vaderSentiment` package) for English and the project's own Korean
lexicon (lexicons/sentiment_ko_v1.yaml), which follows VADER's rules so both languages share
one scale. Quarters are by time on timed transcripts and by turn order on typed chats.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from cscoach_pipeline.defs.analysis.schema import ConsultationAnalysis, Sentiment
from cscoach_pipeline.defs.scoring.metrics import count_speech_units
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript

LEXICONS_DIR = Path(__file__).resolve().parents[2] / "lexicons"
KOREAN_LEXICON = "v1"
# Part of the scoring assets' code version: a new lexicon marks partitions out of date.
SENTIMENT_METHOD = f"vader+ko-{KOREAN_LEXICON}"

# VADER's own constants, so a Korean segment scores as an English one would.
_BOOST = 0.293
_NEGATION_SCALAR = -0.74
_NORMALIZE_ALPHA = 15.0
# VADER's conventional thresholds on the compound score.
_LABEL_THRESHOLD = 0.05
_HANGUL = re.compile(r"[\uac00-\ud7a3]")
_CLAUSE = re.compile(r"[.!?,;~…\n]+")
_SPACE = re.compile(r"\s+")
_NEGATION_AFTER_CHARS = 6
_BOOSTER_BEFORE_CHARS = 4
_MASK = "\x00"


# A turn's label is the analysis schema's sentiment (positive / neutral / negative).
SentimentLabel = Sentiment


class SentimentSource(StrEnum):
    MODEL = "model"  # the LLM's score of the turn (prompts that ask it)
    LEXICON = "lexicon"  # VADER (English) or the shipped Korean lexicon


def sentiment_label(score: float) -> SentimentLabel:
    if score >= _LABEL_THRESHOLD:
        return SentimentLabel.POSITIVE
    if score <= -_LABEL_THRESHOLD:
        return SentimentLabel.NEGATIVE
    return SentimentLabel.NEUTRAL


# --- the Korean lexicon ---------------------------------------------------------------------

Stem = Annotated[str, StringConstraints(pattern=r"^\^?[\uac00-\ud7a3]+$")]
HangulWord = Annotated[str, StringConstraints(pattern=r"^[\uac00-\ud7a3]+$")]


class _Negation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    after: str
    before: str


class KoreanLexiconFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    stems: dict[Stem, Annotated[float, Field(ge=-4, le=4)]]
    boosters: tuple[HangulWord, ...]
    dampeners: tuple[HangulWord, ...]
    negation: _Negation
    contrast: tuple[HangulWord, ...]


@dataclass(frozen=True)
class KoreanLexicon:
    stems: tuple[tuple[str, float, bool], ...]  # (stem, valence, must start a word), longest first
    boosters: re.Pattern[str]
    dampeners: re.Pattern[str]
    negation_after: re.Pattern[str]
    negation_before: re.Pattern[str]
    contrast: re.Pattern[str]


class LexiconError(ValueError):
    """A sentiment lexicon file is missing or invalid."""


@lru_cache(maxsize=2)
def load_korean_lexicon(version: str = KOREAN_LEXICON) -> KoreanLexicon:
    path = LEXICONS_DIR / f"sentiment_ko_{version}.yaml"
    try:
        data = KoreanLexiconFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        negation_after = re.compile(data.negation.after)
        negation_before = re.compile(data.negation.before)
    except (OSError, yaml.YAMLError, ValidationError, re.error) as exc:
        raise LexiconError(f"invalid Korean sentiment lexicon {path}: {exc}") from None
    if data.version != version:
        raise LexiconError(f"{path} declares version {data.version!r}, expected {version!r}")
    stems = sorted(
        ((s.lstrip("^"), v, s.startswith("^")) for s, v in data.stems.items()),
        key=lambda item: -len(item[0]),
    )

    def alternatives(words: Sequence[str]) -> re.Pattern[str]:
        return re.compile("|".join(sorted(map(re.escape, words), key=len, reverse=True)))

    return KoreanLexicon(
        stems=tuple(stems),
        boosters=alternatives(data.boosters),
        dampeners=alternatives(data.dampeners),
        negation_after=negation_after,
        negation_before=negation_before,
        contrast=alternatives(data.contrast),
    )


def _compact_clause(clause: str) -> tuple[str, set[int]]:
    """The clause without spaces, and the positions in it where a word starts."""
    starts: set[int] = set()
    out: list[str] = []
    for word in _SPACE.split(clause.strip()):
        if word:
            starts.add(len("".join(out)))
            out.append(word)
    return "".join(out), starts


def _korean_clause_valences(clause: str, lexicon: KoreanLexicon) -> list[float]:
    text, word_starts = _compact_clause(clause)
    hits: list[tuple[int, int, float]] = []
    masked = text
    for stem, valence, word_start in lexicon.stems:
        for match in re.finditer(re.escape(stem), masked):
            if word_start and match.start() not in word_starts:
                continue
            hits.append((match.start(), match.end(), valence))
            masked = masked[: match.start()] + _MASK * len(stem) + masked[match.end() :]
    # Negators are looked for outside other stems ("불안" holds no "안" of negation), except
    # the stems that are themselves negation ("안돼").
    negation_view = list(text)
    for start, end, _ in hits:
        if not lexicon.negation_after.match(text, start):
            negation_view[start:end] = _MASK * (end - start)
    view = "".join(negation_view)
    contrast = lexicon.contrast.search(text)
    valences = []
    for start, end, valence in sorted(hits):
        before = text[max(0, start - _BOOSTER_BEFORE_CHARS) : start]
        if lexicon.boosters.search(before):
            valence += math.copysign(_BOOST, valence)
        elif lexicon.dampeners.search(before):
            valence -= math.copysign(_BOOST, valence)
        after = view[end : end + _NEGATION_AFTER_CHARS]
        if lexicon.negation_after.search(after) or lexicon.negation_before.search(view[:start]):
            valence *= _NEGATION_SCALAR
        if contrast is not None:
            valence *= 0.5 if start < contrast.start() else 1.5
        valences.append(valence)
    return valences


def korean_sentiment(text: str, lexicon: KoreanLexicon | None = None) -> float:
    """-1..1, VADER's compound formula over the Korean lexicon's valences."""
    lexicon = lexicon or load_korean_lexicon()
    total = sum(
        v for clause in _CLAUSE.split(text) for v in _korean_clause_valences(clause, lexicon)
    )
    if total == 0:
        return 0.0
    total += math.copysign(min(text.count("!"), 4) * 0.292, total)  # VADER's "!" emphasis
    return max(-1.0, min(1.0, total / math.sqrt(total * total + _NORMALIZE_ALPHA)))


@lru_cache(maxsize=1)
def _vader() -> Any:
    # Reads its 7,500-word lexicon once per process.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def lexicon_sentiment(text: str) -> float:
    """-1..1: the Korean lexicon when the text holds Hangul, else VADER."""
    if _HANGUL.search(text):
        return round(korean_sentiment(text), 4)
    return round(float(_vader().polarity_scores(text)["compound"]), 4)


# --- per segment ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentSentiment:
    index: int
    score: float
    label: SentimentLabel
    source: SentimentSource

    def row(self) -> dict[str, Any]:
        """The `transcript_segments` columns of this segment's sentiment."""
        return {
            "segment_index": self.index,
            "sentiment": self.score,
            "sentiment_label": self.label.value,
            "sentiment_source": self.source.value,
        }


def segment_sentiments(
    transcript: Transcript, analysis: ConsultationAnalysis | None = None
) -> list[SegmentSentiment]:
    """Every segment's sentiment: the model's where it gave one for that segment, else the
    lexicon's. Model scores for segments that do not exist are ignored."""
    by_model: dict[int, float] = {}
    if analysis is not None:
        by_model = {
            t.segment: t.sentiment
            for t in analysis.turn_sentiment
            if 0 <= t.segment < len(transcript.segments)
        }
    out = []
    for index, segment in enumerate(transcript.segments):
        if index in by_model:
            score, source = round(by_model[index], 4), SentimentSource.MODEL
        else:
            score, source = lexicon_sentiment(segment.text), SentimentSource.LEXICON
        out.append(SegmentSentiment(index, score, sentiment_label(score), source))
    return out


# --- per quarter of the call, per speaker ---------------------------------------------------

QUARTERS = (1, 2, 3, 4)
SPEAKERS = (Speaker.AGENT, Speaker.CUSTOMER)


def quarter_columns() -> list[str]:
    """The `quality_metrics` columns, e.g. customer_sentiment_q1 ... customer_sentiment."""
    return [
        f"{speaker.value}_sentiment{suffix}"
        for speaker in SPEAKERS
        for suffix in (*(f"_q{q}" for q in QUARTERS), "")
    ]


def _quarter(segment: Segment, index: int, transcript: Transcript, duration: float) -> int:
    if transcript.is_timed and duration > 0:
        middle = ((segment.start_s or 0.0) + (segment.end_s or 0.0)) / 2
        return min(4, int(middle / duration * 4) + 1)
    return min(4, int(index / len(transcript.segments) * 4) + 1)


def _weighted_mean(pairs: Sequence[tuple[float, float]]) -> float | None:
    weight = sum(w for _, w in pairs)
    if not pairs or weight <= 0:
        return None
    return round(sum(s * w for s, w in pairs) / weight, 3)


def sentiment_by_quarter(
    transcript: Transcript, sentiments: Sequence[SegmentSentiment]
) -> dict[str, float | None]:
    """Mean sentiment of the agent's and the customer's turns in each quarter of the call and
    overall, weighted by how much was said (words; Hangul syllables); None where a speaker
    said nothing in that quarter."""
    duration = max([transcript.duration_s or 0.0, *(s.end_s or 0.0 for s in transcript.segments)])
    buckets: dict[tuple[Speaker, int], list[tuple[float, float]]] = {}
    for sentiment in sentiments:
        segment = transcript.segments[sentiment.index]
        if segment.speaker not in SPEAKERS:
            continue
        weight = float(max(1, count_speech_units(segment.text)))
        quarter = _quarter(segment, sentiment.index, transcript, duration)
        for key in ((segment.speaker, quarter), (segment.speaker, 0)):
            buckets.setdefault(key, []).append((sentiment.score, weight))
    out: dict[str, float | None] = {}
    for speaker in SPEAKERS:
        for q in QUARTERS:
            out[f"{speaker.value}_sentiment_q{q}"] = _weighted_mean(buckets.get((speaker, q), []))
        out[f"{speaker.value}_sentiment"] = _weighted_mean(buckets.get((speaker, 0), []))
    return out


def sentiment_metadata(by_quarter: Mapping[str, float | None]) -> dict[str, Any]:
    """The customer's arc as one line for the UI, e.g. "-0.52 → -0.10 → 0.31 → 0.64"."""
    arc = [by_quarter.get(f"customer_sentiment_q{q}") for q in QUARTERS]
    return {
        "customer_sentiment_by_quarter": " → ".join("–" if v is None else f"{v:+.2f}" for v in arc)
    }
