"""Proves the `analysis_valid` check: an analysis quoting the transcript passes (case,
punctuation and "..." elisions allowed); a made-up quote, a scored segment that does not
exist or a phone number in the model's text fails it, with counts and the missing quote
redacted."""

from __future__ import annotations

from cscoach_pipeline.defs.analysis.checks import analysis_validity, quote_found
from cscoach_pipeline.defs.analysis.schema import ConsultationAnalysis
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript
from tests.support.fake_gemini import valid_analysis

TRANSCRIPT = Transcript(
    source="text",
    segments=[
        Segment(speaker=Speaker.AGENT, text="Thank you for calling Acme. How can I help?"),
        Segment(speaker=Speaker.CUSTOMER, text="My order, number [ACCOUNT], has not arrived."),
        Segment(speaker=Speaker.AGENT, text="I'm sorry about that; it ships today."),
    ],
)


def _analysis(**overrides: object) -> ConsultationAnalysis:
    return ConsultationAnalysis.model_validate(valid_analysis(**overrides))


def test_quotes_match_up_to_case_punctuation_and_elision() -> None:
    said = "thank you for calling acme how can i help my order number [account] has not arrived"
    assert quote_found("Thank you for calling ACME!", said)
    assert quote_found("thank you ... has not arrived", said)
    assert not quote_found("we will refund you twice", said)


def test_an_analysis_that_quotes_the_transcript_passes() -> None:
    analysis = _analysis(
        improvement_points=[{"point": "apologise sooner", "evidence_quote": "it ships today"}]
    )
    outcome = analysis_validity(analysis, TRANSCRIPT)
    assert outcome.passed, outcome.description
    assert outcome.metadata["evidence_quotes"] == 1 and outcome.metadata["quotes_not_found"] == 0


def test_a_made_up_quote_fails_it_as_a_warning() -> None:
    analysis = _analysis(
        improvement_points=[
            {
                "point": "no refund promises",
                "evidence_quote": "I promise a refund, call 010-1234-5678",
            }
        ]
    )
    outcome = analysis_validity(analysis, TRANSCRIPT)
    assert not outcome.passed and not outcome.error
    assert "1 of 1 evidence quotes are not in the transcript" in outcome.description
    assert outcome.metadata["first_missing_quote"] == "I promise a refund, call [PHONE]"


def test_pii_in_the_model_text_or_segments_that_do_not_exist_fail_it() -> None:
    analysis = _analysis(
        summary="The customer (call back on 010-2222-3333) asked about an order.",
        turn_sentiment=[{"segment": 7, "sentiment": 0.5}],
    )
    outcome = analysis_validity(analysis, TRANSCRIPT)
    assert not outcome.passed and outcome.error
    assert outcome.metadata["pii_findings"] >= 1 and outcome.metadata["segments_out_of_range"] == 1
    assert "2222" not in outcome.description + repr(outcome.metadata)
