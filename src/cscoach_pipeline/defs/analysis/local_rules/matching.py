"""Phrase matching for the local rules: text normalization, phrase compilation and scanning.

Phrase syntax (the phrase book's header says the same):
- Latin phrases match whole words of normalized text (lowercase, contractions expanded, so
  "I'm", "Im" and "I am" are the same; punctuation dropped). A trailing "*" makes a word a
  stem ("refund*" matches "refunds"), and a separate "…" allows up to three words in between.
- Phrases containing Hangul match the text with all spaces and punctuation removed, because
  Korean spacing from STT (and from people) is unreliable; "…" allows up to ten characters.
Within one list longer phrases are tried first and their matches are masked, so
"just to confirm" is not also counted as "to confirm".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cscoach_pipeline.defs.speech.transcript import Speaker

HANGUL = re.compile(r"[\uac00-\ud7a3]")
GAP = "…"
_LATIN_GAP = r"(?: \S+){0,3}"
_HANGUL_GAP = ".{0,10}?"
_NON_WORD = re.compile(r"[\W_]+")


@dataclass(frozen=True)
class Normalizer:
    """Turns text into the lowercase, contraction-free word form Latin phrases match."""

    contractions: tuple[tuple[re.Pattern[str], str], ...]  # applied in order
    bare_contractions: Mapping[str, str]  # apostrophe-less forms, word by word

    def words(self, text: str) -> str:
        text = text.lower().replace("’", "'").replace("‘", "'")
        for pattern, replacement in self.contractions:
            text = pattern.sub(replacement, text)
        text = _NON_WORD.sub(" ", text.replace("'", ""))
        words = " ".join(self.bare_contractions.get(w, w) for w in text.split())
        return words.replace("can not", "cannot")


def compact(text: str) -> str:
    """Lowercase text without spaces or punctuation, the form Hangul phrases match."""
    return _NON_WORD.sub("", text.lower())


@dataclass(frozen=True)
class Cue:
    label: str  # the phrase as written in the phrase book
    pattern: re.Pattern[str]
    compact: bool  # matched against the space-free form (Hangul phrases)


@dataclass(frozen=True)
class View:
    """One segment with the two normalized forms the cues are matched against."""

    index: int
    speaker: Speaker
    raw: str
    words: str
    compact: str


@dataclass(frozen=True)
class Hit:
    label: str  # the book phrase: what distinct cues are counted by
    index: int  # segment position in the transcript
    offset: int  # position in the normalized segment text, to list cues in spoken order
    shown: str  # the text actually matched, for reasons


def compile_phrase(phrase: str, normalizer: Normalizer) -> Cue:
    if HANGUL.search(phrase):
        parts = (re.escape(compact(p)) for p in phrase.split(GAP))
        return Cue(phrase, re.compile(_HANGUL_GAP.join(parts)), compact=True)
    pieces: list[str] = []
    for token in phrase.split():
        if token == GAP:
            pieces.append(_LATIN_GAP)
            continue
        core = re.escape(normalizer.words(token.rstrip("*")))
        stem = r"\S*" if token.endswith("*") else ""
        pieces.append((" " if pieces else "") + core + stem)
    return Cue(phrase, re.compile(r"(?<!\S)" + "".join(pieces) + r"(?!\S)"), compact=False)


def compile_phrases(phrases: Sequence[str], normalizer: Normalizer) -> tuple[Cue, ...]:
    # Longest first so a long phrase masks the shorter phrases inside it; the sort is stable,
    # so the book's order decides between phrases of one length.
    cues = (compile_phrase(p, normalizer) for p in phrases)
    return tuple(sorted(cues, key=lambda c: -len(c.label)))


def _mask(cue: Cue, texts: dict[bool, str]) -> list[re.Match[str]]:
    """Blank out the cue's matches (so shorter cues cannot reuse them) and return them."""
    matches = list(cue.pattern.finditer(texts[cue.compact]))
    text = texts[cue.compact]
    for m in matches:
        text = text[: m.start()] + "\x00" * (m.end() - m.start()) + text[m.end() :]
    texts[cue.compact] = text
    return matches


def _shown(cue: Cue, match: re.Match[str]) -> str:
    # Space-free Korean matches read badly, and gaps may hold names: show the phrase instead.
    if cue.compact:
        return cue.label.replace(GAP, "○○")
    return re.sub("\x00+", "…", match.group())


def scan(cues: tuple[Cue, ...], views: Sequence[View], masks: tuple[Cue, ...] = ()) -> list[Hit]:
    """All occurrences of `cues` in `views`, after removing the `masks` phrases."""
    hits: list[Hit] = []
    for view in views:
        texts = {False: view.words, True: view.compact}
        for cue in masks:
            _mask(cue, texts)
        for cue in cues:
            hits.extend(
                Hit(cue.label, view.index, m.start(), _shown(cue, m)) for m in _mask(cue, texts)
            )
    return hits


def distinct(hits: Sequence[Hit]) -> tuple[str, ...]:
    """Distinct cues in order of first appearance, each shown as first matched."""
    first: dict[str, str] = {}
    for hit in sorted(hits, key=lambda h: (h.index, h.offset)):
        first.setdefault(hit.label, hit.shown)
    return tuple(first.values())
