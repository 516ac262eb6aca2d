"""Proves the local rules are driven by their versioned phrase book; a bad book fails clearly.

The shipped prompts/local_rules/v1.yaml loads, is compiled once per process and is what
`analyze_locally` uses by default; a phrase added to a copy of the file changes the score (so
the data file, not code, decides what matches). A file with a missing section, a misspelt key,
a bad regular expression, a phrase the matcher would misread, a bad template or broken YAML is
rejected with one PhraseBookError that names the file and each bad key.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cscoach_pipeline.defs.analysis.local_rules import (
    DEFAULT_PHRASE_BOOK,
    PhraseBookError,
    analyze_locally,
    available_phrase_books,
    load_phrase_book,
    read_phrase_book,
)
from cscoach_pipeline.defs.analysis.local_rules.phrases import (
    PHRASE_BOOKS_DIR,
    PerCriterion,
    StatusWording,
)
from cscoach_pipeline.defs.analysis.schema import RUBRIC_CRITERIA, ResolutionStatus, overall_score
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript

V1 = PHRASE_BOOKS_DIR / "v1.yaml"

# An agent whose greeting no v1 phrase knows.
HOWDY_CALL = Transcript(
    segments=[
        Segment(speaker=Speaker.AGENT, text="Howdy, partner."),
        Segment(speaker=Speaker.CUSTOMER, text="My parcel never arrived and I need it today."),
        Segment(speaker=Speaker.AGENT, text="Let me check the tracking for you."),
    ],
    language="en",
    source="text",
)


def _edited_copy(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    data = yaml.safe_load(V1.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "book.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _rejection(path: Path) -> str:
    with pytest.raises(PhraseBookError) as caught:
        read_phrase_book(path)
    message = str(caught.value)
    assert str(path) in message
    return message


# --- the shipped book ------------------------------------------------------------------------


def test_shipped_v1_loads_once_and_v2_is_the_default() -> None:
    assert DEFAULT_PHRASE_BOOK == "v2"
    assert {"v1", "v2"} <= set(available_phrase_books())
    assert load_phrase_book("v2").hold_request and not load_phrase_book("v1").hold_request
    book = load_phrase_book("v1")
    assert book.version == "v1"
    assert book.source == str(V1)
    assert load_phrase_book("v1") is book  # compiled once per process, however it is asked for
    assert book.greeting and book.topics and book.actions and "네" in book.fillers
    assert set(book.status_sentences) == set(ResolutionStatus)

    by_name = analyze_locally(HOWDY_CALL, phrase_book="v1")
    assert analyze_locally(HOWDY_CALL, phrase_book=book) == by_name
    assert analyze_locally(HOWDY_CALL) == analyze_locally(HOWDY_CALL, phrase_book="v2")


def test_wording_schema_covers_every_criterion_and_status() -> None:
    assert tuple(PerCriterion.model_fields) == RUBRIC_CRITERIA
    assert set(StatusWording.model_fields) == {s.value for s in ResolutionStatus}


def test_a_copy_of_the_shipped_file_scores_like_it(tmp_path: Path) -> None:
    copy = _edited_copy(tmp_path, lambda data: None)
    assert analyze_locally(HOWDY_CALL, phrase_book=read_phrase_book(copy)) == analyze_locally(
        HOWDY_CALL
    )


def test_a_phrase_added_to_the_file_changes_the_score(tmp_path: Path) -> None:
    text = V1.read_text(encoding="utf-8")
    assert "  greeting:\n" in text
    copy = tmp_path / "v1-howdy.yaml"
    copy.write_text(text.replace("  greeting:\n", "  greeting:\n    - howdy\n", 1), "utf-8")

    before = analyze_locally(HOWDY_CALL)
    after = analyze_locally(HOWDY_CALL, phrase_book=read_phrase_book(copy))

    assert before.rubric.greeting.score == 0
    assert after.rubric.greeting.score == 3
    assert "'howdy'" in after.rubric.greeting.reason
    assert overall_score(after.rubric) > overall_score(before.rubric)


def test_wording_comes_from_the_file(tmp_path: Path) -> None:
    def reword(data: dict[str, Any]) -> None:
        data["wording"]["reason_found"]["problem_solving"]["en"] = "Did things: {cues}."

    book = read_phrase_book(_edited_copy(tmp_path, reword))
    analysis = analyze_locally(HOWDY_CALL, phrase_book=book)
    assert analysis.rubric.problem_solving.reason == "Did things: 'let me check'."


# --- broken books ----------------------------------------------------------------------------


def test_missing_section_is_named(tmp_path: Path) -> None:
    message = _rejection(_edited_copy(tmp_path, lambda data: data["rubric"].pop("closing")))
    assert "rubric.closing: Field required" in message


def test_missing_top_level_section_is_named(tmp_path: Path) -> None:
    message = _rejection(_edited_copy(tmp_path, lambda data: data.pop("wording")))
    assert "wording: Field required" in message


def test_bad_regex_is_named(tmp_path: Path) -> None:
    def break_regex(data: dict[str, Any]) -> None:
        data["normalization"]["contractions"][1]["pattern"] = "(won't"

    message = _rejection(_edited_copy(tmp_path, break_regex))
    assert "normalization.contractions[1].pattern" in message
    assert "not a valid regular expression" in message
    assert "(won't" in message


@pytest.mark.parametrize(
    ("phrase", "complaint"),
    [
        ("hel*lo", "'*' may only end a word"),
        ("… my name", "'…' must stand between two words"),
        ("my…name", "'…' must be a separate word"),
        ("!!!", "every word needs a letter or digit"),
        ("hello  there", "double spaces"),
        ("안녕*", "'*' stems are for Latin words"),
        ("…입니다", "'…' must stand between two parts"),
    ],
)
def test_phrase_the_matcher_would_misread_is_named(
    tmp_path: Path, phrase: str, complaint: str
) -> None:
    message = _rejection(
        _edited_copy(tmp_path, lambda data: data["rubric"]["greeting"].append(phrase))
    )
    index = len(yaml.safe_load(V1.read_text(encoding="utf-8"))["rubric"]["greeting"])
    assert f"rubric.greeting[{index}]" in message
    assert complaint in message


def test_misspelt_key_is_not_silently_ignored(tmp_path: Path) -> None:
    def misspell(data: dict[str, Any]) -> None:
        data["outcome"]["escalation"] = data["outcome"].pop("escalated")

    message = _rejection(_edited_copy(tmp_path, misspell))
    assert "outcome.escalated: Field required" in message
    assert "outcome.escalation: Extra inputs are not permitted" in message


def test_bare_yes_read_as_boolean_says_to_quote_it(tmp_path: Path) -> None:
    copy = tmp_path / "book.yaml"
    copy.write_text(V1.read_text(encoding="utf-8").replace('- "yes"\n', "- yes\n"), "utf-8")
    message = _rejection(copy)
    assert (
        "customer.fillers[3]: Input should be a valid string, got True (quote the word)" in message
    )


def test_unknown_template_placeholder_is_named(tmp_path: Path) -> None:
    def typo(data: dict[str, Any]) -> None:
        data["wording"]["coaching_tips"]["professionalism"]["ko"] = "표현{cue} 대신"

    message = _rejection(_edited_copy(tmp_path, typo))
    assert "wording.coaching_tips.professionalism.ko" in message
    assert "the only placeholder is {cues}" in message


def test_every_problem_is_listed_in_one_error(tmp_path: Path) -> None:
    def two_faults(data: dict[str, Any]) -> None:
        data["sentiment"]["positive"] = []
        data["customer"]["topics"][0].pop("ko")

    message = _rejection(_edited_copy(tmp_path, two_faults))
    assert "sentiment.positive: Tuple should have at least 1 item" in message
    assert "customer.topics[0].ko: Field required" in message


def test_broken_yaml_is_named_with_its_line(tmp_path: Path) -> None:
    copy = tmp_path / "book.yaml"
    copy.write_text("version: v1\nrubric: [\n", encoding="utf-8")
    assert "not YAML" in _rejection(copy)
    assert "line 3" in _rejection(copy)


def test_unreadable_file_is_named(tmp_path: Path) -> None:
    assert "cannot read" in _rejection(tmp_path / "absent.yaml")


def test_unknown_version_lists_the_available_ones() -> None:
    with pytest.raises(PhraseBookError, match=r"unknown local-rules phrase book 'v9'.*v1"):
        load_phrase_book("v9")
    with pytest.raises(PhraseBookError):
        analyze_locally(HOWDY_CALL, phrase_book="v9")
