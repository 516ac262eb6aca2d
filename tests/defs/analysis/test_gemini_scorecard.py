"""Proves that Gemini answers the scorecard itself with prompt v3, through the real sensor,
job and google-genai client, with only the Gemini HTTP server faked: the request carries
the active scorecard's questions and choices (prompts v1 and v2 do not, and their cache
keys are unchanged); the model's answers that fit the scorecard are stored with its
evidence quote, time and `answered_by = model`, while an answer it does not offer, an N/A
where none is allowed or a missing question is answered by the offline rules instead; the
scorecard is part of the cache key."""

from __future__ import annotations

from pathlib import Path

import pytest

from cscoach_pipeline.defs.analysis.cache import analysis_cache_key
from cscoach_pipeline.defs.analysis.prompts import load_prompt
from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from cscoach_pipeline.defs.scoring.scorecards import load_scorecard, scorecard_questions
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript
from cscoach_pipeline.defs.warehouse import tables
from tests.support.fake_gemini import FakeGemini, RecordedRequest, ok, valid_analysis_json
from tests.support.pipeline import PipelineHarness

pytestmark = pytest.mark.integration

API_KEY = "test-key-123"
CHAT = (
    b"Agent: Hello, thank you for calling Acme, this is Mina. How can I help?\n"
    b"Customer: My parcel never arrived.\n"
    b"Agent: I am sorry about that. I have rebooked the delivery for tomorrow morning.\n"
    b"Customer: Great, thank you. Bye.\n"
)
MODEL_ANSWERS = [
    {
        "question_id": "greeting",
        "answer": "yes",
        "evidence_quote": "thank you for calling Acme",
        "start_s": None,
    },
    {"question_id": "empathy", "answer": "Partly", "evidence_quote": "I am sorry about that"},
    {"question_id": "closing", "answer": "no", "evidence_quote": ""},
    {"question_id": "hold_etiquette", "answer": "n/a"},
    {"question_id": "accuracy", "answer": "maybe"},  # not a choice: the rules answer
    {"question_id": "compliance", "answer": "n/a"},  # N/A not allowed: the rules answer
    {"question_id": "tone", "answer": "yes"},  # not a question: ignored
]


def _generate(fake: FakeGemini) -> list[RecordedRequest]:
    return [r for r in fake.requests if r.path.endswith(":generateContent")]


def asks_scorecard(request: RecordedRequest) -> bool:
    return "<scorecard>" in request.prompt_text


def test_gemini_answers_the_scorecard_with_prompt_v3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    with FakeGemini(api_key=API_KEY) as fake:
        fake.respond_when(asks_scorecard, ok(valid_analysis_json(scorecard_answers=MODEL_ANSWERS)))
        harness = PipelineHarness(
            root=tmp_path / "run",
            analyzer=AnalyzerResource(
                analyzer="gemini", api_key=API_KEY, base_url=fake.url, prompt_version="v3"
            ),
        )
        harness.drop("chat.txt", CHAT)
        (result,) = harness.process().values()
        assert result.success
        (request,) = _generate(fake)
        assert asks_scorecard(request)
        assert "- compliance: Did the agent stay within policy" in request.prompt_text
        assert "Answer: yes, partly, no, n/a." in request.prompt_text  # hold etiquette

        rows = {
            r["question_id"]: r
            for r in harness.warehouse.fetch_rows(tables.scorecard_answers, prompt_version="v3")
        }
        by = {q: r["answered_by"] for q, r in rows.items()}
        assert {q for q, who in by.items() if who == "model"} == {
            "greeting", "empathy", "closing", "hold_etiquette",
        }  # fmt: skip
        assert rows["empathy"]["answer"] == "partly"
        assert rows["empathy"]["evidence"] == "I am sorry about that"
        assert bool(rows["hold_etiquette"]["na"])
        assert rows["accuracy"]["answer"] in {"yes", "partly", "no"}
        assert rows["compliance"]["answer"] in {"yes", "no"}
        assert by["compliance"] == by["accuracy"] == by["identification"] == "rules"

        # Prompt v1 asks nothing of the scorecard: every answer is the rules'.
        assert harness.reanalyze_all("v1").success
        assert not any(asks_scorecard(r) for r in _generate(fake)[1:])
        v1 = harness.warehouse.fetch_rows(tables.scorecard_answers, prompt_version="v1")
        assert v1 and {r["answered_by"] for r in v1} == {"rules"}


def test_the_scorecard_is_part_of_the_cache_key_only_for_prompts_that_ask_it() -> None:
    transcript = Transcript(
        segments=[Segment(speaker=Speaker.AGENT, text="Hello")], language="en", source="text"
    )
    card = load_scorecard("inbound/v1")
    v3 = load_prompt("v3")
    asked = v3.with_scorecard(card.label, scorecard_questions(card))
    other = v3.with_scorecard("inbound/v9", scorecard_questions(card))
    keys = {analysis_cache_key(transcript, p, "m") for p in (asked, other)}
    assert len(keys) == 2
    v1 = load_prompt("v1")
    assert v1.with_scorecard(card.label, "questions") is v1
    assert analysis_cache_key(transcript, v1, "m") == analysis_cache_key(
        transcript, v1.with_scorecard(card.label, "questions"), "m"
    )
