"""Proves the scorecard files and their arithmetic (defs/scoring/scorecards.py).

The shipped default `inbound/v1` loads and validates. A score is the weighted scores of the
applicable questions over their weighted potential, 0-100, checked against values worked
out by hand: N/A answers leave the potential, a failed critical question fails the
consultation whatever its score, an all-N/A card is not scored. Answers that do not fit
(unknown question, missing one, a choice not offered, N/A where not allowed) are refused
with every problem named, and broken scorecard files fail with one error naming the file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cscoach_pipeline.defs.scoring.scorecards import (
    Answer,
    InvalidAnswers,
    PassState,
    available_scorecards,
    load_scorecard,
    score_answers,
)

INBOUND = load_scorecard("inbound/v1")


def _answers(**choices: str) -> list[Answer]:
    base = {q.id: q.answers[0].answer for q in INBOUND.questions}  # the best choice each
    return [Answer(qid, choice) for qid, choice in (base | choices).items()]


def test_the_default_scorecard_ships_and_validates() -> None:
    assert "inbound/v1" in available_scorecards()
    ids = [q.id for q in INBOUND.questions]
    assert ids == [
        "greeting", "identification", "empathy", "active_listening", "problem_solving",
        "accuracy", "hold_etiquette", "closing", "compliance",
    ]  # fmt: skip
    assert [q.id for q in INBOUND.questions if q.critical] == ["compliance"]
    assert {q.id for q in INBOUND.questions if q.na_allowed} == {"identification", "hold_etiquette"}


def test_all_best_answers_score_100_and_pass() -> None:
    result = score_answers(INBOUND, _answers())

    assert result.overall_score == 100.0
    assert result.pass_state == PassState.PASSED


def test_weighted_score_by_hand() -> None:
    # Potential: weights x max = 1*2 + 1*2 + 1.5*2 + 1*2 + 3*4 + 2*2 + 1*2 + 1*2 + 2*2 = 33.
    # Lost: empathy partly (1.5 * 1), problem solving next_step (3 * 2), closing no (1 * 2).
    result = score_answers(
        INBOUND, _answers(empathy="partly", problem_solving="next_step", closing="no")
    )

    assert result.overall_score == round(100 * (33 - 1.5 - 6 - 2) / 33, 1) == 71.2
    assert result.pass_state == PassState.PASSED


def test_na_answers_leave_the_potential() -> None:
    # Without identification and hold etiquette the potential is 33 - 2 - 2 = 29.
    result = score_answers(
        INBOUND,
        _answers(identification="N/A", hold_etiquette="n/a", problem_solving="no"),
    )

    assert result.overall_score == round(100 * (29 - 12) / 29, 1) == 58.6
    assert result.pass_state == PassState.BELOW_PASS_MARK
    rows = {r["question_id"]: r for r in result.rows("c1", "v1")}
    assert rows["identification"]["na"] is True and rows["identification"]["score"] is None
    assert (rows["problem_solving"]["score"], rows["problem_solving"]["max_score"]) == (0, 4)
    assert {r["scorecard_version"] for r in rows.values()} == {"inbound/v1"}


def test_a_failed_critical_question_fails_the_consultation_whatever_the_score() -> None:
    result = score_answers(INBOUND, _answers(compliance="no"))

    assert result.overall_score == round(100 * 29 / 33, 1)  # high, yet
    assert result.pass_state == PassState.FAILED
    assert "compliance" in result.reason


def test_answers_that_do_not_fit_are_refused_with_every_problem_named() -> None:
    answers = [a for a in _answers(greeting="maybe", empathy="n/a") if a.question_id != "closing"]
    answers.append(Answer("upsell", "yes"))

    with pytest.raises(InvalidAnswers) as raised:
        score_answers(INBOUND, answers)

    message = str(raised.value)
    for problem in (
        "greeting: 'maybe' is not one of yes, partly, no",
        "empathy: N/A is not allowed",
        "closing: not answered",
        "upsell: not a question of inbound/v1",
    ):
        assert problem in message


def test_an_all_na_card_is_not_scored(tmp_path: Path) -> None:
    card = tmp_path / "tiny" / "v1.yaml"
    card.parent.mkdir()
    card.write_text(
        "name: tiny\nversion: v1\ntitle: T\npass_mark: 50\nquestions:\n"
        "  - {id: hold, text: 'Hold?', criteria: [asks], na_allowed: true,\n"
        "     answers: [{answer: 'yes', score: 1}, {answer: 'no', score: 0}]}\n"
    )
    scorecard = load_scorecard("tiny/v1", tmp_path)

    result = score_answers(scorecard, [Answer("hold", "N/A")])

    assert (result.overall_score, result.pass_state) == (None, PassState.NOT_SCORED)


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ("name: bad\nversion: v1\ntitle: T\npass_mark: 50\nquestions: []\n", "questions"),
        (
            "name: bad\nversion: v1\ntitle: T\npass_mark: 50\nquestions:\n"
            "  - {id: c, text: 'C?', criteria: [x], critical: true,\n"
            "     answers: [{answer: 'yes', score: 1}, {answer: 'no', score: 0}]}\n",
            "critical, but no answer choice fails",
        ),
        ("name: bad\nversion: v2\ntitle: T\npass_mark: 50\nquestions: [", "invalid"),
    ],
)
def test_broken_scorecard_files_fail_naming_the_file(
    tmp_path: Path, body: str, complaint: str
) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "v1.yaml").write_text(body)

    with pytest.raises(ValueError, match=r"bad/v1\.yaml") as raised:
        load_scorecard("bad/v1", tmp_path)
    assert complaint in str(raised.value)


def test_an_unknown_scorecard_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match=r"available: .*inbound/v1"):
        load_scorecard("outbound/v9")
