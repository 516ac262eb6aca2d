"""QA reviewers' own answers, from files dropped under `reviews/` in the bucket.

A review file is CSV with a header, or JSON lines, one answer per row: the consultation
(`consultation_id`, or the `source_key` of its original), the `reviewer`, the `question_id`
and the `answer` (a choice of the question, or n/a) or its `score`, with an optional
`comment` and `scorecard_version` (default: the active scorecard). Every row is checked on
its own: a bad row becomes an error with its reason and row number, the good rows of the
same file still load. Comments are PII-redacted like every other text the pipeline keeps.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cscoach_pipeline.defs.privacy.pii import redact_text
from cscoach_pipeline.defs.scoring.scorecards import NA, Question, Scorecard
from cscoach_pipeline.defs.speech.text_import.base import TextImportError
from cscoach_pipeline.defs.speech.text_import.decoding import decode_text

REVIEW_EXTENSIONS = (".csv", ".jsonl", ".ndjson")
MAX_COMMENT_CHARS = 2000
MAX_REVIEW_FILE_BYTES = 50 * 1024 * 1024
# The row number of a problem with the whole file (no header, not a review format).
FILE_ROW = 0

_REQUIRED = ("reviewer", "question_id")
_KNOWN = {
    "source_key", "consultation_id", "reviewer", "question_id", "answer", "score",
    "comment", "scorecard_version",
}  # fmt: skip
MAX_FIELD_CHARS = 10_000


@dataclass(frozen=True)
class ReviewRow:
    """One reviewer's answer to one question of one consultation."""

    consultation_id: str
    scorecard_version: str
    reviewer: str
    question_id: str
    answer: str
    score: float | None  # None: N/A
    max_score: float
    comment: str
    row_number: int

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.consultation_id, self.scorecard_version, self.reviewer, self.question_id)

    def row(self, review_file: str) -> dict[str, Any]:
        return {
            "consultation_id": self.consultation_id,
            "scorecard_version": self.scorecard_version,
            "reviewer": self.reviewer,
            "question_id": self.question_id,
            "answer": self.answer,
            "score": self.score,
            "max_score": self.max_score,
            "na": self.score is None,
            "comment": self.comment or None,
            "review_file": review_file,
            "row_number": self.row_number,
        }


@dataclass(frozen=True)
class ReviewError:
    row_number: int  # 0: the whole file
    reason: str  # quotes what the row said: redacted before it is kept

    def __post_init__(self) -> None:
        object.__setattr__(self, "reason", redact_text(self.reason)[:1000])

    def row(self, review_file: str) -> dict[str, Any]:
        return {"review_file": review_file, "row_number": self.row_number, "reason": self.reason}


@dataclass
class ParsedReviews:
    rows: list[ReviewRow] = field(default_factory=list)
    errors: list[ReviewError] = field(default_factory=list)


# source key or consultation id -> consultation id, or None when the pipeline has no such one.
ConsultationResolver = Callable[[str | None, str | None], str | None]
ScorecardLoader = Callable[[str], Scorecard]


def is_review_file(key: str) -> bool:
    return key.lower().endswith(REVIEW_EXTENSIONS)


def parse_review_file(
    key: str,
    data: bytes,
    *,
    default_scorecard: str,
    load_scorecard: ScorecardLoader,
    resolve: ConsultationResolver,
) -> ParsedReviews:
    """Every row of one review file checked: the rows that load and the reasons of those
    that do not. A repeated (consultation, scorecard, reviewer, question) keeps the first
    row and refuses the later one."""
    parsed = ParsedReviews()
    if not is_review_file(key):
        parsed.errors.append(
            ReviewError(FILE_ROW, f"not a review file: use {' or '.join(REVIEW_EXTENSIONS)}")
        )
        return parsed
    if len(data) > MAX_REVIEW_FILE_BYTES:
        limit = MAX_REVIEW_FILE_BYTES // (1024 * 1024)
        parsed.errors.append(ReviewError(FILE_ROW, f"file is over {limit} MB: split it"))
        return parsed
    try:
        text, _encoding = decode_text(data)
    except TextImportError as exc:
        parsed.errors.append(ReviewError(FILE_ROW, str(exc)))
        return parsed
    try:
        records = _csv_records(text) if key.lower().endswith(".csv") else _json_records(text)
    except _FileProblem as exc:
        parsed.errors.append(ReviewError(FILE_ROW, str(exc)))
        return parsed
    seen: dict[tuple[str, str, str, str], int] = {}
    for number, record in records:
        if isinstance(record, ReviewError):
            parsed.errors.append(record)
            continue
        try:
            row = _review_row(number, record, default_scorecard, load_scorecard, resolve)
        except _RowProblem as exc:
            parsed.errors.append(ReviewError(number, str(exc)))
            continue
        if row.key in seen:
            parsed.errors.append(
                ReviewError(
                    number,
                    f"repeats row {seen[row.key]} (same consultation, "
                    "scorecard, reviewer and question)",
                )
            )
            continue
        seen[row.key] = number
        parsed.rows.append(row)
    return parsed


class _FileProblem(ValueError):
    pass


class _RowProblem(ValueError):
    pass


Record = Mapping[str, str]


def _csv_records(text: str) -> list[tuple[int, Record | ReviewError]]:
    # The delimiter is the header's (spreadsheets export ",", ";" or tab); quoting is
    # Excel's. Sniffing the body instead misreads apostrophes in comments as quotes.
    first_line = text.lstrip("\ufeff").split("\n", 1)[0]
    delimiter = max(",;\t", key=first_line.count)
    reader = csv.reader(io.StringIO(text), csv.excel, delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise _FileProblem(f"not readable as CSV: {exc}") from None
    if not header:
        raise _FileProblem("empty file: expected a header row")
    names = [name.strip().lower() for name in header]
    _check_header(names)
    records: list[tuple[int, Record | ReviewError]] = []
    # Row numbers are the file's lines as a spreadsheet shows them: the header is row 1.
    rows = enumerate(reader, start=2)
    while True:
        try:
            number, values = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:  # a field over the csv module's limit, a stray NUL
            raise _FileProblem(f"not readable as CSV: {exc}") from None
        if not any(value.strip() for value in values):
            continue
        if len(values) > len(names):
            records.append((number, ReviewError(number, f"{len(values)} fields, header has "
                                                        f"{len(names)}")))  # fmt: skip
            continue
        records.append((number, dict(zip(names, values, strict=False))))
    return records


def _json_records(text: str) -> list[tuple[int, Record | ReviewError]]:
    records: list[tuple[int, Record | ReviewError]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            records.append((number, ReviewError(number, f"not JSON: {exc.msg}")))
            continue
        if not isinstance(value, dict):
            records.append((number, ReviewError(number, "not a JSON object")))
            continue
        # Each object names its own fields: a missing one is that row's problem.
        record = {str(k).strip().lower(): "" if v is None else str(v) for k, v in value.items()}
        records.append((number, record))
    if not records:
        raise _FileProblem("empty file: expected one JSON object per line")
    return records


def _check_header(names: list[str]) -> None:
    missing = [name for name in _REQUIRED if name not in names]
    if "source_key" not in names and "consultation_id" not in names:
        missing.insert(0, "source_key or consultation_id")
    if "answer" not in names and "score" not in names:
        missing.append("answer or score")
    if missing:
        raise _FileProblem(f"missing column(s): {', '.join(missing)}")


def _review_row(
    number: int,
    record: Record,
    default_scorecard: str,
    load_scorecard: ScorecardLoader,
    resolve: ConsultationResolver,
) -> ReviewRow:
    value = {name: (record.get(name) or "").strip() for name in _KNOWN}
    too_long = [name for name, v in value.items() if len(v) > MAX_FIELD_CHARS]
    if too_long:
        raise _RowProblem(f"{', '.join(sorted(too_long))} over {MAX_FIELD_CHARS} characters")
    for name in ("reviewer", "question_id"):
        if not value[name]:
            raise _RowProblem(f"{name} is empty")
    if redact_text(value["reviewer"]) != value["reviewer"]:
        # Reviewers are kept as named: an email or phone number would be personal data.
        raise _RowProblem("reviewer looks like personal data (an email or number): use an id")
    if not value["source_key"] and not value["consultation_id"]:
        raise _RowProblem("source_key and consultation_id are both empty")
    label = value["scorecard_version"] or default_scorecard
    try:
        scorecard = load_scorecard(label)
    except ValueError:
        raise _RowProblem(f"unknown scorecard_version {label!r}") from None
    try:
        question = scorecard.question(value["question_id"])
    except KeyError:
        raise _RowProblem(
            f"question_id {value['question_id']!r} is not a question of {scorecard.label}"
        ) from None
    answer, score = _answer(question, value["answer"], value["score"])
    consultation_id = resolve(value["consultation_id"] or None, value["source_key"] or None)
    if consultation_id is None:
        shown = value["consultation_id"] or value["source_key"]
        raise _RowProblem(f"no consultation {shown!r} in the pipeline")
    comment = redact_text(value["comment"])[:MAX_COMMENT_CHARS]
    return ReviewRow(
        consultation_id=consultation_id,
        scorecard_version=scorecard.label,
        reviewer=value["reviewer"][:200],
        question_id=question.id,
        answer=answer,
        score=score,
        max_score=question.max_score,
        comment=comment,
        row_number=number,
    )


def _answer(question: Question, answer: str, score: str) -> tuple[str, float | None]:
    """(choice, its score) from the answer or the score; N/A gives (n/a, None)."""
    choice = None
    if answer:
        if answer.lower() in (NA, "na"):
            if not question.na_allowed:
                raise _RowProblem(f"{question.id}: N/A is not allowed")
            if score:
                raise _RowProblem(f"{question.id}: answer n/a with a score {score!r}")
            return NA, None
        choice = question.choice(answer)
        if choice is None:
            offered = ", ".join(c.answer for c in question.answers)
            raise _RowProblem(f"{question.id}: answer {answer!r} is not one of {offered}")
    if score:
        try:
            points = float(score)
        except ValueError:
            raise _RowProblem(f"{question.id}: score {score!r} is not a number") from None
        scored = [c for c in question.answers if c.score == points]
        if not scored:
            offered = ", ".join(f"{c.score:g}" for c in question.answers)
            raise _RowProblem(f"{question.id}: score {points:g} is not one of {offered}")
        if choice is not None and choice.score != points:
            raise _RowProblem(
                f"{question.id}: answer {choice.answer!r} scores {choice.score:g}, not {points:g}"
            )
        choice = choice or scored[0]
    if choice is None:
        raise _RowProblem(f"{question.id}: answer and score are both empty")
    return choice.answer, choice.score
