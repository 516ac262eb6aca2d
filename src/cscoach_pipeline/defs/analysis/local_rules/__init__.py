"""Offline consultation analyzer built from phrase rules and lexicons (English and Korean).

`analyze_locally` produces the same `ConsultationAnalysis` as the LLM analyzers, without any
network or model, so the pipeline can score calls when no LLM is configured or allowed. It is
deliberately simple and explainable: every rubric score names the phrases it matched.

The phrases and wording are data: the versioned phrase book prompts/local_rules/<version>.yaml,
validated and compiled by `phrases`; `matching` turns phrases into regexes and finds them;
`rules` holds the scoring logic.
"""

from cscoach_pipeline.defs.analysis.local_rules.phrases import (
    DEFAULT_PHRASE_BOOK,
    PhraseBook,
    PhraseBookError,
    available_phrase_books,
    load_phrase_book,
    read_phrase_book,
)
from cscoach_pipeline.defs.analysis.local_rules.rules import analyze_locally

__all__ = [
    "DEFAULT_PHRASE_BOOK",
    "PhraseBook",
    "PhraseBookError",
    "analyze_locally",
    "available_phrase_books",
    "load_phrase_book",
    "read_phrase_book",
]
