"""Call categories: rules in a versioned data file (categories/<version>.yaml), matched
against every consultation, as Amazon Transcribe Call Analytics' categories are.

A category fires when all of its rules hold (or any, with `match: any`). A rule is one of:
- `said`: a phrase (English or Korean, the phrase book's syntax) said by the speaker within
  the window; a mention the speaker negates ("I don't want to cancel", "해지는 안 할게요")
  does not count unless the rule says `negation: false`;
- `not_said`: none of the phrases said (un-negated) by the speaker within the window, e.g. a
  mandatory greeting missing;
- `non_talk`: a stretch of at least `min_s` seconds with nobody talking (timed calls only);
- `interruptions`: at least `min` interruptions by the speaker (timed calls only);
- `sentiment`: the speaker's mean sentiment in the window below or above a value.
Windows are the first or last N seconds of a timed call; typed chats use the first or last N
turns when the rule gives them, else the whole conversation.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from cscoach_pipeline.defs.analysis.local_rules.matching import (
    HANGUL,
    Cue,
    Normalizer,
    compact,
    compile_phrases,
)
from cscoach_pipeline.defs.analysis.local_rules.phrases import (
    Normalization,
    Phrase,
    validation_problems,
)
from cscoach_pipeline.defs.scoring.metrics import interruption_events, speech_gaps
from cscoach_pipeline.defs.scoring.sentiment import SegmentSentiment
from cscoach_pipeline.defs.speech.transcript import Segment, Transcript

CATEGORIES_DIR = Path(__file__).resolve().parents[2] / "categories"
_CLAUSE = re.compile(r"[.!?;,…\n]+")
_EVIDENCE_CHARS = 300


class CategoryFileError(ValueError):
    """A categories file is missing, not YAML, or does not match the schema."""


# --- schema ---------------------------------------------------------------------------------


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Severity(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


SpeakerFilter = Literal["agent", "customer", "any"]


class Window(_Schema):
    first_s: float | None = Field(default=None, gt=0)
    last_s: float | None = Field(default=None, gt=0)
    first_turns: int | None = Field(default=None, gt=0)
    last_turns: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_side(self) -> Window:
        if self.first_s is not None and self.last_s is not None:
            raise ValueError("a window is the first or the last seconds, not both")
        if self.first_turns is not None and self.last_turns is not None:
            raise ValueError("a window is the first or the last turns, not both")
        if all(v is None for v in (self.first_s, self.last_s, self.first_turns, self.last_turns)):
            raise ValueError("a window needs first_s, last_s, first_turns or last_turns")
        return self

    def describe(self, timed: bool) -> str:
        if timed and self.first_s is not None:
            return f"in the first {self.first_s:g} s"
        if timed and self.last_s is not None:
            return f"in the last {self.last_s:g} s"
        if self.first_turns is not None:
            return f"in the first {self.first_turns} turns"
        if self.last_turns is not None:
            return f"in the last {self.last_turns} turns"
        return "in the whole conversation"


def _hangul_only(phrases: tuple[str, ...]) -> tuple[str, ...]:
    for phrase in phrases:
        if not HANGUL.search(phrase):
            raise ValueError(f"a Korean phrase needs Hangul: {phrase!r}")
    return phrases


def _latin_only(phrases: tuple[str, ...]) -> tuple[str, ...]:
    for phrase in phrases:
        if HANGUL.search(phrase):
            raise ValueError(f"Korean phrases go under ko: {phrase!r}")
    return phrases


class PhraseRule(_Schema):
    speaker: SpeakerFilter = "any"
    window: Window | None = None
    en: tuple[Phrase, ...] = ()
    ko: tuple[Phrase, ...] = ()
    # A negated mention ("I don't want to cancel") does not count, unless this is false.
    negation: bool = True

    @model_validator(mode="after")
    def _has_phrases(self) -> PhraseRule:
        if not self.en and not self.ko:
            raise ValueError("a phrase rule needs en or ko phrases")
        _latin_only(self.en)
        _hangul_only(self.ko)
        return self


class NonTalkRule(_Schema):
    min_s: float = Field(gt=0)
    window: Window | None = None


class InterruptionsRule(_Schema):
    by: SpeakerFilter = "any"
    min: int = Field(ge=1)
    window: Window | None = None


class SentimentRule(_Schema):
    speaker: SpeakerFilter = "customer"
    below: float | None = Field(default=None, ge=-1, le=1)
    above: float | None = Field(default=None, ge=-1, le=1)
    window: Window | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> SentimentRule:
        if (self.below is None) == (self.above is None):
            raise ValueError("a sentiment rule needs exactly one of below or above")
        return self


class Rule(_Schema):
    said: PhraseRule | None = None
    not_said: PhraseRule | None = None
    non_talk: NonTalkRule | None = None
    interruptions: InterruptionsRule | None = None
    sentiment: SentimentRule | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Rule:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "a rule is exactly one of said, not_said, non_talk, interruptions, sentiment"
                + (f"; got {', '.join(given)}" if given else "")
            )
        return self


class Category(_Schema):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    severity: Severity = Severity.MEDIUM
    match: Literal["all", "any"] = "all"
    rules: tuple[Rule, ...] = Field(min_length=1)


class EnglishNegation(_Schema):
    words: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z]+$")], ...] = Field(min_length=1)
    within_words: int = Field(ge=1, le=8)
    # Words that end the negated stretch: "no choice but to cancel" is a cancellation.
    stop_words: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z]+$")], ...] = ()


class KoreanNegation(_Schema):
    after: str  # regex over the space-free clause right after the phrase
    within_chars: int = Field(ge=1, le=20)
    before: str  # regex that must end right before the phrase

    @model_validator(mode="after")
    def _compiles(self) -> KoreanNegation:
        for pattern in (self.after, self.before):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc}): {pattern!r}") from exc
        return self


class Negation(_Schema):
    en: EnglishNegation
    ko: KoreanNegation


class CategoryFile(_Schema):
    version: str
    description: str = ""
    normalization: Normalization
    negation: Negation
    categories: tuple[Category, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> CategoryFile:
        ids = [c.id for c in self.categories]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"category ids repeat: {', '.join(repeated)}")
        return self


# --- loading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategorySet:
    """A validated categories file with its phrases compiled."""

    version: str
    categories: tuple[Category, ...]
    normalizer: Normalizer
    negation: Negation
    cues: dict[int, tuple[Cue, ...]]  # id(PhraseRule) -> its compiled phrases

    def cues_of(self, rule: PhraseRule) -> tuple[Cue, ...]:
        return self.cues[id(rule)]


def available_category_versions(directory: Path = CATEGORIES_DIR) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml"))


def parse_categories(text: str, source: str) -> CategoryFile:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CategoryFileError(f"invalid categories file {source}: not YAML: {exc}") from None
    try:
        return CategoryFile.model_validate(data)
    except ValidationError as exc:
        raise CategoryFileError(
            f"invalid categories file {source}:\n{validation_problems(exc)}"
        ) from None


def compile_categories(file: CategoryFile) -> CategorySet:
    normalizer = file.normalization.normalizer()
    cues: dict[int, tuple[Cue, ...]] = {}
    for category in file.categories:
        for rule in category.rules:
            phrases = rule.said or rule.not_said
            if phrases is not None:
                cues[id(phrases)] = compile_phrases((*phrases.en, *phrases.ko), normalizer)
    return CategorySet(file.version, file.categories, normalizer, file.negation, cues)


@lru_cache(maxsize=4)
def load_categories(version: str, directory: Path = CATEGORIES_DIR) -> CategorySet:
    """The categories file `version` (e.g. v1), validated and compiled once per process."""
    path = directory / f"{version}.yaml"
    if not path.is_file():
        raise CategoryFileError(
            f"unknown categories version {version!r} (CSCOACH_CATEGORIES); available: "
            f"{', '.join(available_category_versions(directory)) or 'none'}"
        )
    file = parse_categories(path.read_text(encoding="utf-8"), str(path))
    if file.version != version:
        raise CategoryFileError(f"{path} declares version {file.version!r}, expected {version!r}")
    return compile_categories(file)


# --- matching -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryMatch:
    category_id: str
    title: str
    severity: Severity
    segment_index: int | None  # the evidence segment, when there is one
    start_s: float | None
    evidence: str
    hits: int  # segments (or gaps, interruptions) that met the rules

    def row(self) -> dict[str, Any]:
        """The `category_matches` columns of this match (the store adds the key)."""
        return {
            "category_id": self.category_id,
            "title": self.title,
            "severity": self.severity.value,
            "segment_index": self.segment_index,
            "start_s": self.start_s,
            "evidence": self.evidence,
            "hits": self.hits,
        }


@dataclass(frozen=True)
class _Evidence:
    segment_index: int | None
    start_s: float | None
    text: str
    hits: int


@dataclass(frozen=True)
class _Call:
    """One consultation as the rules see it."""

    transcript: Transcript
    sentiments: dict[int, float]
    turn_of: list[int]  # segment position -> its turn number (runs of one speaker)
    turns: int
    duration: float

    @property
    def timed(self) -> bool:
        return self.transcript.is_timed

    def in_window(self, index: int, window: Window | None) -> bool:
        if window is None:
            return True
        segment = self.transcript.segments[index]
        if self.timed and window.first_s is not None:
            return (segment.start_s or 0.0) < window.first_s
        if self.timed and window.last_s is not None:
            return (segment.end_s or 0.0) > self.duration - window.last_s
        if window.first_turns is not None:
            return self.turn_of[index] < window.first_turns
        if window.last_turns is not None:
            return self.turn_of[index] >= self.turns - window.last_turns
        return True

    def time_in_window(self, at: float, window: Window | None) -> bool:
        if window is None or (window.first_s is None and window.last_s is None):
            return True
        if window.first_s is not None:
            return at < window.first_s
        return at > self.duration - (window.last_s or 0.0)

    def segments(self, speaker: SpeakerFilter, window: Window | None) -> list[tuple[int, Segment]]:
        return [
            (i, s)
            for i, s in enumerate(self.transcript.segments)
            if (speaker == "any" or s.speaker.value == speaker) and self.in_window(i, window)
        ]


def _build_call(transcript: Transcript, sentiments: Sequence[SegmentSentiment]) -> _Call:
    turn_of: list[int] = []
    turn, previous = -1, None
    for segment in transcript.segments:
        if segment.speaker != previous:
            turn, previous = turn + 1, segment.speaker
        turn_of.append(turn)
    duration = max([transcript.duration_s or 0.0, *(s.end_s or 0.0 for s in transcript.segments)])
    return _Call(transcript, {s.index: s.score for s in sentiments}, turn_of, turn + 1, duration)


def _quote(segment: Segment) -> str:
    text = " ".join(segment.text.split())
    if len(text) > _EVIDENCE_CHARS:
        text = text[: _EVIDENCE_CHARS - 1] + "…"
    return f'{segment.speaker.value}: "{text}"'


def _negated_en(words_before: str, negation: EnglishNegation) -> bool:
    for word in reversed(words_before.split()[-negation.within_words :]):
        if word in negation.stop_words:
            return False
        if word in negation.words:
            return True
    return False


def _negated_ko(clause: str, start: int, end: int, negation: KoreanNegation) -> bool:
    after = clause[end : end + negation.within_chars]
    return bool(re.search(negation.after, after) or re.search(negation.before, clause[:start]))


def _mentions(text: str, cues: tuple[Cue, ...], categories: CategorySet, negation: bool) -> bool:
    """Whether `text` says one of the phrases, not negated (unless negation is off)."""
    for clause in _CLAUSE.split(text):
        words, squeezed = categories.normalizer.words(clause), compact(clause)
        for cue in cues:
            target = squeezed if cue.compact else words
            for match in cue.pattern.finditer(target):
                if not negation:
                    return True
                if cue.compact:
                    negated = _negated_ko(
                        squeezed, match.start(), match.end(), categories.negation.ko
                    )
                else:
                    negated = _negated_en(words[: match.start()], categories.negation.en)
                if not negated:
                    return True
    return False


def _said(call: _Call, rule: PhraseRule, categories: CategorySet) -> list[int]:
    cues = categories.cues_of(rule)
    return [
        i
        for i, segment in call.segments(rule.speaker, rule.window)
        if _mentions(segment.text, cues, categories, rule.negation)
    ]


def _speaker_name(speaker: SpeakerFilter) -> str:
    return "anyone" if speaker == "any" else f"the {speaker}"


def _evaluate(rule: Rule, call: _Call, categories: CategorySet) -> _Evidence | None:
    segments = call.transcript.segments
    if rule.said is not None:
        hits = _said(call, rule.said, categories)
        if not hits:
            return None
        first = hits[0]
        return _Evidence(first, segments[first].start_s, _quote(segments[first]), len(hits))
    if rule.not_said is not None:
        speaker = rule.not_said.speaker
        if speaker != "any" and not call.segments(speaker, None):
            return None  # nobody is labelled so: whether they said it cannot be told
        if _said(call, rule.not_said, categories):
            return None
        where = rule.not_said.window.describe(call.timed) if rule.not_said.window else ""
        text = f"not said by {_speaker_name(rule.not_said.speaker)} {where}".strip()
        return _Evidence(None, None, text, 1)
    if rule.non_talk is not None:
        gaps = [
            (start, end)
            for start, end in speech_gaps(call.transcript)
            if end - start >= rule.non_talk.min_s
            and call.time_in_window(start, rule.non_talk.window)
        ]
        if not gaps:
            return None
        start, end = max(gaps, key=lambda g: g[1] - g[0])
        before = [i for i, s in enumerate(segments) if (s.end_s or 0.0) <= start + 1e-6]
        index = max(before, key=lambda i: segments[i].end_s or 0.0) if before else None
        text = f"{end - start:.0f} s with nobody talking from {start:.0f} s"
        return _Evidence(index, round(start, 3), text, len(gaps))
    if rule.interruptions is not None:
        if not call.timed:
            return None
        ordered = sorted(range(len(segments)), key=lambda i: segments[i].start_s or 0.0)
        events = [
            ordered[position]
            for position, segment in interruption_events([segments[i] for i in ordered])
            if (rule.interruptions.by == "any" or segment.speaker.value == rule.interruptions.by)
            and call.in_window(ordered[position], rule.interruptions.window)
        ]
        if len(events) < rule.interruptions.min:
            return None
        first = min(events, key=lambda i: segments[i].start_s or 0.0)
        text = (
            f"{len(events)} interruptions by {_speaker_name(rule.interruptions.by)}; "
            f"first: {_quote(segments[first])}"
        )
        return _Evidence(first, segments[first].start_s, text, len(events))
    assert rule.sentiment is not None
    return _sentiment_evidence(rule.sentiment, call)


def _sentiment_evidence(rule: SentimentRule, call: _Call) -> _Evidence | None:
    scored = [
        (i, call.sentiments[i])
        for i, _ in call.segments(rule.speaker, rule.window)
        if i in call.sentiments
    ]
    if not scored:
        return None
    mean = sum(score for _, score in scored) / len(scored)
    if rule.below is not None:
        if mean >= rule.below:
            return None
        index, _ = min(scored, key=lambda item: item[1])
        bound = f"below {rule.below:+.2f}"
    else:
        assert rule.above is not None
        if mean <= rule.above:
            return None
        index, _ = max(scored, key=lambda item: item[1])
        bound = f"above {rule.above:+.2f}"
    where = rule.window.describe(call.timed) if rule.window else "over the conversation"
    segment = call.transcript.segments[index]
    text = (
        f"sentiment of {_speaker_name(rule.speaker)} {mean:+.2f} {where} ({bound}); "
        f"e.g. {_quote(segment)}"
    )
    return _Evidence(index, segment.start_s, text, len(scored))


def match_categories(
    transcript: Transcript, sentiments: Sequence[SegmentSentiment], categories: CategorySet
) -> list[CategoryMatch]:
    """The categories that fire on this consultation, each with its evidence."""
    if not transcript.segments:
        return []
    call = _build_call(transcript, sentiments)
    matches = []
    for category in categories.categories:
        found = [_evaluate(rule, call, categories) for rule in category.rules]
        held = [e for e in found if e is not None]
        fired = len(held) == len(found) if category.match == "all" else bool(held)
        if not fired:
            continue
        # The evidence shown is the first rule's that points at a moment of the call.
        lead = next((e for e in held if e.segment_index is not None), held[0])
        matches.append(
            CategoryMatch(
                category.id,
                category.title,
                category.severity,
                lead.segment_index,
                lead.start_s,
                "; ".join(e.text for e in held) if len(held) > 1 else lead.text,
                sum(e.hits for e in held),
            )
        )
    return matches


def matches_metadata(matches: Sequence[CategoryMatch]) -> dict[str, Any]:
    return {
        "categories_fired": len(matches),
        "categories": ", ".join(m.category_id for m in matches) or "none",
    }
