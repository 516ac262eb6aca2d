"""Proves how a review file is read: CSV (comma, semicolon, Excel's BOM, CP949) and JSON
lines; answers given as a choice or as a score; N/A where the question allows it; the
consultation found by its id or its original's key. Every bad row gets its own reason and
row number while the good rows of the same file still load; a file that is not a review
file, or lacks a required column, is refused as a whole with the reason. Comments are
PII-redacted."""

from __future__ import annotations

import json

from cscoach_pipeline.defs.calibration.reviews import FILE_ROW, parse_review_file
from cscoach_pipeline.defs.scoring.scorecards import load_scorecard

KNOWN = {"call-1-abc", "chat-2-def"}
KEYS = {"incoming/call-1.wav": "call-1-abc", "chat-2.txt": "chat-2-def"}


def resolve(consultation_id: str | None, source_key: str | None) -> str | None:
    if consultation_id:
        return consultation_id if consultation_id in KNOWN else None
    return KEYS.get(source_key or "")


def parse(key: str, text: str | bytes):
    data = text.encode() if isinstance(text, str) else text
    return parse_review_file(
        key, data, default_scorecard="inbound/v1", load_scorecard=load_scorecard, resolve=resolve
    )


def test_good_and_bad_rows_of_one_csv() -> None:
    parsed = parse(
        "reviews/week-48.csv",
        "source_key,reviewer,question_id,answer,score,comment\n"
        "incoming/call-1.wav,qa-kim,greeting,yes,,warm greeting\n"  # 2: by choice
        "incoming/call-1.wav,qa-kim,problem_solving,,2,promised a callback\n"  # 3: by score
        "chat-2.txt,qa-kim,hold_etiquette,N/A,,\n"  # 4: N/A allowed
        "incoming/call-1.wav,qa-kim,compliance,n/a,,\n"  # 5: N/A not allowed
        "incoming/call-1.wav,qa-kim,empathy,maybe,,\n"  # 6: not a choice
        "incoming/call-1.wav,qa-kim,empathy,,3,\n"  # 7: not a score of the question
        "incoming/call-1.wav,qa-kim,empathy,yes,1,\n"  # 8: answer and score disagree
        "incoming/call-1.wav,qa-kim,tone,yes,,\n"  # 9: no such question
        "incoming/nope.wav,qa-kim,greeting,yes,,\n"  # 10: no such consultation
        ",qa-kim,greeting,yes,,\n"  # 11: no consultation named
        "incoming/call-1.wav,,greeting,yes,,\n"  # 12: no reviewer
        "incoming/call-1.wav,qa-kim,greeting,no,,\n"  # 13: repeats row 2
        "incoming/call-1.wav,qa-kim,closing,,,\n",  # 14: neither answer nor score
    )
    loaded = {(r.row_number, r.question_id, r.answer, r.score) for r in parsed.rows}
    assert loaded == {
        (2, "greeting", "yes", 2.0),
        (3, "problem_solving", "next_step", 2.0),
        (4, "hold_etiquette", "n/a", None),
    }
    assert {r.consultation_id for r in parsed.rows} == {"call-1-abc", "chat-2-def"}
    assert all(r.scorecard_version == "inbound/v1" for r in parsed.rows)
    reasons = {e.row_number: e.reason for e in parsed.errors}
    assert reasons == {
        5: "compliance: N/A is not allowed",
        6: "empathy: answer 'maybe' is not one of yes, partly, no",
        7: "empathy: score 3 is not one of 2, 1, 0",
        8: "empathy: answer 'yes' scores 2, not 1",
        9: "question_id 'tone' is not a question of inbound/v1",
        10: "no consultation 'incoming/nope.wav' in the pipeline",
        11: "source_key and consultation_id are both empty",
        12: "reviewer is empty",
        13: "repeats row 2 (same consultation, scorecard, reviewer and question)",
        14: "closing: answer and score are both empty",
    }


def test_json_lines_with_consultation_ids_and_a_named_scorecard() -> None:
    lines = [
        {"consultation_id": "chat-2-def", "reviewer": "qa-lee", "question_id": "empathy",
         "score": 1, "scorecard_version": "inbound/v1"},
        {"consultation_id": "chat-2-def", "reviewer": "qa-lee", "question_id": "closing",
         "answer": "no", "comment": "no goodbye"},
        {"consultation_id": "chat-2-def", "reviewer": "qa-lee", "question_id": "greeting",
         "answer": "yes", "scorecard_version": "inbound/v9"},
        {"consultation_id": "missing-1", "reviewer": "qa-lee", "question_id": "greeting",
         "answer": "yes"},
    ]  # fmt: skip
    text = "\n".join(json.dumps(line) for line in lines) + "\n\n{not json\n[1, 2]\n"
    parsed = parse("reviews/lee.jsonl", text)
    assert [(r.row_number, r.question_id, r.answer) for r in parsed.rows] == [
        (1, "empathy", "partly"),
        (2, "closing", "no"),
    ]
    assert parsed.rows[1].comment == "no goodbye"
    reasons = {e.row_number: e.reason for e in parsed.errors}
    assert reasons[3] == "unknown scorecard_version 'inbound/v9'"
    assert reasons[4] == "no consultation 'missing-1' in the pipeline"
    assert reasons[6].startswith("not JSON")
    assert reasons[7] == "not a JSON object"


def test_excel_exports_semicolons_bom_and_korean_cp949() -> None:
    text = (
        "\ufeffSource_Key;Reviewer;Question_ID;Answer;Comment\n"
        "chat-2.txt;qa-park;empathy;yes;공감 표현 좋음\n"
    )
    for data in (text.encode("utf-8"), text.lstrip("\ufeff").encode("cp949")):
        parsed = parse("reviews/park.csv", data)
        assert parsed.errors == []
        assert [(r.reviewer, r.answer, r.comment) for r in parsed.rows] == [
            ("qa-park", "yes", "공감 표현 좋음")
        ]


def test_comments_are_pii_redacted() -> None:
    parsed = parse(
        "reviews/pii.csv",
        "consultation_id,reviewer,question_id,answer,comment\n"
        "call-1-abc,qa-kim,identification,yes,checked card 4111 1111 1111 1111 and 010-1234-5678\n",
    )
    comment = parsed.rows[0].comment
    assert "4111" not in comment and "1234" not in comment
    assert "[CARD]" in comment and "[PHONE]" in comment


def test_whole_file_refusals() -> None:
    missing = parse("reviews/a.csv", "consultation_id,question_id,comment\nx,greeting,ok\n")
    assert missing.rows == []
    assert [(e.row_number, e.reason) for e in missing.errors] == [
        (FILE_ROW, "missing column(s): reviewer, answer or score")
    ]
    assert parse("reviews/b.csv", "").errors[0].reason == "file is empty (0 bytes)"
    assert (
        parse("reviews/b.csv", "\n\n").errors[0].reason == "file contains only whitespace (2 bytes)"
    )
    assert parse("reviews/notes.xlsx", b"PK\x03\x04").errors[0].reason == (
        "not a review file: use .csv or .jsonl or .ndjson"
    )
    binary = parse("reviews/c.csv", bytes(range(256)) * 8)
    assert binary.errors[0].row_number == FILE_ROW
    assert "not text" in binary.errors[0].reason


def test_apostrophes_and_quoted_delimiters_in_comments() -> None:
    parsed = parse(
        "reviews/quotes.csv",
        "consultation_id,reviewer,question_id,answer,comment\n"
        "call-1-abc,qa-kim,greeting,yes,she said 'hello' warmly\n"
        'call-1-abc,qa-kim,empathy,no,"late, rude; and ""curt"""\n',
    )
    assert parsed.errors == []
    assert [r.comment for r in parsed.rows] == ["she said 'hello' warmly", 'late, rude; and "curt"']


def test_oversized_fields_and_personal_data_in_reasons_or_reviewers() -> None:
    huge = parse(
        "reviews/huge.csv",
        "consultation_id,reviewer,question_id,answer,comment\n"
        f"call-1-abc,qa-kim,greeting,yes,{'x' * 200_000}\n",
    )
    assert huge.rows == [] and huge.errors[0].row_number == FILE_ROW
    assert huge.errors[0].reason.startswith("not readable as CSV")
    parsed = parse(
        "reviews/pii.csv",
        "source_key,reviewer,question_id,answer\n"
        "incoming/missing-010-1234-5678.wav,qa-kim,greeting,yes\n"
        "chat-2.txt,qa-kim,greeting,Customer Park 010-1234-5678 angry\n"
        "chat-2.txt,kim.minsu@acme.com,greeting,yes\n",
    )
    assert parsed.rows == []
    reasons = " ".join(e.reason for e in parsed.errors)
    assert "1234" not in reasons and "acme.com" not in reasons
    assert parsed.errors[2].reason == (
        "reviewer looks like personal data (an email or number): use an id"
    )
