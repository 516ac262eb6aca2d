"""The local rules' phrase book: one versioned YAML file per version under prompts/local_rules/.

`load_phrase_book("v1")` reads, validates and compiles a shipped version once per process;
`read_phrase_book(path)` does the same for any file (uncached, for tests and trials). A file
that is broken or incomplete fails with one `PhraseBookError` naming the file and every bad
key, before any transcript is scored.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Generic, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationError
from pydantic_core import ErrorDetails

from cscoach_pipeline.defs.analysis.local_rules.matching import (
    GAP,
    HANGUL,
    Cue,
    Normalizer,
    compact,
    compile_phrases,
)
from cscoach_pipeline.defs.analysis.schema import ResolutionStatus

PHRASE_BOOKS_DIR = Path(__file__).resolve().parents[3] / "prompts" / "local_rules"
DEFAULT_PHRASE_BOOK = "v2"


class PhraseBookError(ValueError):
    """A phrase book file is missing, not YAML, or does not match the schema."""


# --- schema: what a phrase book file must hold ----------------------------------------------


def _check_phrase(phrase: str) -> str:
    """Reject phrases the matcher would silently misread (see matching.py for the syntax)."""
    if phrase != " ".join(phrase.split()) or not phrase:
        raise ValueError(f"no leading, trailing or double spaces, and not empty: {phrase!r}")
    if HANGUL.search(phrase):
        if "*" in phrase:
            raise ValueError(f"'*' stems are for Latin words, not Hangul: {phrase!r}")
        if not all(compact(part) for part in phrase.split(GAP)):
            raise ValueError(f"'{GAP}' must stand between two parts: {phrase!r}")
        return phrase
    tokens = phrase.split()
    if GAP in (tokens[0], tokens[-1]):
        raise ValueError(f"'{GAP}' must stand between two words: {phrase!r}")
    for token in tokens:
        if token == GAP:
            continue
        if GAP in token:
            raise ValueError(f"'{GAP}' must be a separate word: {phrase!r}")
        if "*" in token.rstrip("*") or token.count("*") > 1:
            raise ValueError(f"'*' may only end a word, once: {phrase!r}")
        if not re.search(r"[^\W_]", token):
            raise ValueError(f"every word needs a letter or digit: {phrase!r}")
    return phrase


def _check_word(word: str) -> str:
    if not re.fullmatch(r"[^\W_]+", word) or word != word.lower():
        raise ValueError(f"one lowercase word without spaces or punctuation: {word!r}")
    return word


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc}): {pattern!r}") from exc
    return pattern


def _check_template(text: str) -> str:
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:  # an unmatched brace
        raise ValueError(f"not a valid template ({exc}): {text!r}") from exc
    if names - {"cues"}:
        raise ValueError(f"the only placeholder is {{cues}}, found {sorted(names)}: {text!r}")
    return text


Text = Annotated[str, Strict(), Field(min_length=1)]
Template = Annotated[str, Strict(), Field(min_length=1), AfterValidator(_check_template)]
Phrase = Annotated[str, Strict(), AfterValidator(_check_phrase)]
Phrases = Annotated[tuple[Phrase, ...], Field(min_length=1)]
Word = Annotated[str, Strict(), AfterValidator(_check_word)]
Regex = Annotated[str, Strict(), AfterValidator(_check_regex)]


class _Schema(BaseModel):
    # A misspelt key is an error, not a silently ignored section.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Bilingual(_Schema):
    en: Text
    ko: Text

    def pick(self, korean: bool) -> str:
        return self.ko if korean else self.en


class BilingualTemplate(Bilingual):
    """Wording with an optional {cues} placeholder."""

    en: Template
    ko: Template


W = TypeVar("W", bound=Bilingual)


class PerCriterion(_Schema, Generic[W]):
    """One entry per rubric criterion (schema.RUBRIC_CRITERIA, same order)."""

    greeting: W
    identification: W
    empathy: W
    problem_solving: W
    accuracy: W
    closing: W
    professionalism: W


class ReasonExtra(_Schema):
    late: BilingualTemplate
    refusal: BilingualTemplate
    hedge: BilingualTemplate
    rude: BilingualTemplate
    hold: BilingualTemplate
    no_agent: BilingualTemplate
    mono: BilingualTemplate


class StatusWording(_Schema):
    resolved: Bilingual
    partially_resolved: Bilingual
    unresolved: Bilingual
    escalated: Bilingual
    unknown: Bilingual


class Wording(_Schema):
    criterion_names: PerCriterion[Bilingual]
    reason_found: PerCriterion[BilingualTemplate]
    reason_missing: PerCriterion[BilingualTemplate]
    reason_extra: ReasonExtra
    improvement_points: PerCriterion[Bilingual]
    coaching_tips: PerCriterion[BilingualTemplate]
    status_sentences: StatusWording


class Contraction(_Schema):
    pattern: Regex
    replacement: Annotated[str, Strict()]


class Normalization(_Schema):
    contractions: tuple[Contraction, ...]
    bare_contractions: dict[Word, Annotated[str, Strict(), Field(min_length=1)]]

    def normalizer(self) -> Normalizer:
        return Normalizer(
            contractions=tuple((re.compile(c.pattern), c.replacement) for c in self.contractions),
            bare_contractions=dict(self.bare_contractions),
        )


class RubricCues(_Schema):
    greeting: Phrases
    identification: Phrases
    empathy: Phrases
    problem_solving: Phrases
    refusal_masks: Phrases
    accuracy: Phrases
    hedges: Phrases
    closing: Phrases
    rude: Phrases
    rude_excused: Phrases
    courtesy: Phrases
    hold: Phrases
    hold_thanks: Phrases
    # Since v2: asking before a hold (the scorecard's hold etiquette).
    hold_request: tuple[Phrase, ...] = ()


class OutcomeCues(_Schema):
    resolved: Phrases
    unresolved: Phrases
    escalated: Phrases
    benign: Phrases


class SentimentCues(_Schema):
    positive: Phrases
    negative: Phrases
    agent_formulae: Phrases


class Labelled(_Schema):
    """A topic or an action: its cues and what the summary calls it."""

    en: Text
    ko: Text
    cues: Phrases


class CustomerCues(_Schema):
    fillers: Annotated[tuple[Word, ...], Field(min_length=1)]
    issue: Phrases
    topics: Annotated[tuple[Labelled, ...], Field(min_length=1)]


class PhraseBookFile(_Schema):
    """The YAML file as written."""

    version: Text
    description: str = ""
    normalization: Normalization
    rubric: RubricCues
    outcome: OutcomeCues
    sentiment: SentimentCues
    customer: CustomerCues
    actions: Annotated[tuple[Labelled, ...], Field(min_length=1)]
    wording: Wording


# --- compiled form: what the rules read -----------------------------------------------------


@dataclass(frozen=True)
class LabelledCues:
    cues: tuple[Cue, ...]
    wording: Bilingual


@dataclass(frozen=True)
class PhraseBook:
    """A validated phrase book with every phrase compiled to a regex, built once per file."""

    version: str
    source: str  # the file it was read from, for messages
    normalizer: Normalizer
    greeting: tuple[Cue, ...]
    identification: tuple[Cue, ...]
    empathy: tuple[Cue, ...]
    problem_solving: tuple[Cue, ...]
    refusal_masks: tuple[Cue, ...]
    accuracy: tuple[Cue, ...]
    hedges: tuple[Cue, ...]
    closing: tuple[Cue, ...]
    rude: tuple[Cue, ...]
    rude_excused: tuple[Cue, ...]
    courtesy: tuple[Cue, ...]
    hold: tuple[Cue, ...]
    hold_thanks: tuple[Cue, ...]
    hold_request: tuple[Cue, ...]
    resolved: tuple[Cue, ...]
    unresolved: tuple[Cue, ...]
    escalated: tuple[Cue, ...]
    resolution_benign: tuple[Cue, ...]
    positive: tuple[Cue, ...]
    negative: tuple[Cue, ...]
    sentiment_formulae: tuple[Cue, ...]
    issue: tuple[Cue, ...]
    topics: tuple[LabelledCues, ...]
    actions: tuple[LabelledCues, ...]
    # Phrases that mark a mono recording's turn as the agent's, not the customer's.
    agent_formulae: tuple[Cue, ...]
    fillers: frozenset[str]
    criterion_names: Mapping[str, Bilingual]
    reason_found: Mapping[str, Bilingual]
    reason_missing: Mapping[str, Bilingual]
    reason_extra: Mapping[str, Bilingual]
    improvement_points: Mapping[str, Bilingual]
    coaching_tips: Mapping[str, Bilingual]
    status_sentences: Mapping[ResolutionStatus, Bilingual]


def compile_phrase_book(book: PhraseBookFile, source: str) -> PhraseBook:
    normalizer = book.normalization.normalizer()

    def cues(phrases: tuple[str, ...]) -> tuple[Cue, ...]:
        return compile_phrases(phrases, normalizer)

    def labelled(rows: tuple[Labelled, ...]) -> tuple[LabelledCues, ...]:
        return tuple(LabelledCues(cues(r.cues), Bilingual(en=r.en, ko=r.ko)) for r in rows)

    rubric, outcome, sentiment = book.rubric, book.outcome, book.sentiment
    greeting, identification = cues(rubric.greeting), cues(rubric.identification)
    empathy, problem_solving = cues(rubric.empathy), cues(rubric.problem_solving)
    closing = cues(rubric.closing)
    wording = book.wording
    return PhraseBook(
        version=book.version,
        source=source,
        normalizer=normalizer,
        greeting=greeting,
        identification=identification,
        empathy=empathy,
        problem_solving=problem_solving,
        refusal_masks=cues(rubric.refusal_masks),
        accuracy=cues(rubric.accuracy),
        hedges=cues(rubric.hedges),
        closing=closing,
        rude=cues(rubric.rude),
        rude_excused=cues(rubric.rude_excused),
        courtesy=cues(rubric.courtesy),
        hold=cues(rubric.hold),
        hold_thanks=cues(rubric.hold_thanks),
        hold_request=cues(rubric.hold_request),
        resolved=cues(outcome.resolved),
        unresolved=cues(outcome.unresolved),
        escalated=cues(outcome.escalated),
        resolution_benign=cues(outcome.benign),
        positive=cues(sentiment.positive),
        negative=cues(sentiment.negative),
        sentiment_formulae=cues(sentiment.agent_formulae),
        issue=cues(book.customer.issue),
        topics=labelled(book.customer.topics),
        actions=labelled(book.actions),
        # Each list keeps its own longest-first order: a concatenation, not a re-sort.
        agent_formulae=greeting + identification + empathy + problem_solving + closing,
        fillers=frozenset(book.customer.fillers),
        criterion_names=dict(wording.criterion_names),
        reason_found=dict(wording.reason_found),
        reason_missing=dict(wording.reason_missing),
        reason_extra=dict(wording.reason_extra),
        improvement_points=dict(wording.improvement_points),
        coaching_tips=dict(wording.coaching_tips),
        status_sentences={ResolutionStatus(k): v for k, v in wording.status_sentences},
    )


# --- loading --------------------------------------------------------------------------------


def _where(loc: tuple[int | str, ...]) -> str:
    """('rubric', 'greeting', 3) -> 'rubric.greeting[3]'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _problem(error: ErrorDetails) -> str:
    where, message = _where(error["loc"]), error["msg"]
    if error["type"] == "string_type" and isinstance(error["input"], bool | None):
        # YAML reads bare yes/no/on/off as booleans and an empty value as null.
        message += f", got {error['input']!r} (quote the word)"
    return f"  {where}: {message}"


def validation_problems(exc: ValidationError) -> str:
    """One line per problem, each naming where in the file it is."""
    return "\n".join(_problem(e) for e in exc.errors(include_url=False))


def parse_phrase_book(text: str, source: str) -> PhraseBookFile:
    """Validate a phrase book's YAML text; `source` names it in the error."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PhraseBookError(
            f"invalid local-rules phrase book {source}: not YAML: {problem}{at}"
        ) from exc
    try:
        return PhraseBookFile.model_validate(data)
    except ValidationError as exc:
        raise PhraseBookError(
            f"invalid local-rules phrase book {source}:\n{validation_problems(exc)}"
        ) from None


def read_phrase_book(path: Path) -> PhraseBook:
    """Read, validate and compile the phrase book at `path` (not cached)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PhraseBookError(f"cannot read local-rules phrase book {path}: {exc}") from exc
    return compile_phrase_book(parse_phrase_book(text, str(path)), str(path))


def available_phrase_books() -> list[str]:
    return sorted(p.stem for p in PHRASE_BOOKS_DIR.glob("*.yaml"))


def load_phrase_book(version: str = DEFAULT_PHRASE_BOOK) -> PhraseBook:
    """The shipped phrase book `version`, read and compiled once per process."""
    return _load_shipped(version)


@lru_cache(maxsize=4)  # keyed by the version alone, however the caller spelt the call
def _load_shipped(version: str) -> PhraseBook:
    path = PHRASE_BOOKS_DIR / f"{version}.yaml"
    if not path.is_file():
        raise PhraseBookError(
            f"unknown local-rules phrase book {version!r}; "
            f"available: {', '.join(available_phrase_books())}"
        )
    book = read_phrase_book(path)
    if book.version != version:
        raise PhraseBookError(
            f"invalid local-rules phrase book {path}:\n"
            f"  version: declares {book.version!r}, expected {version!r}"
        )
    return book
