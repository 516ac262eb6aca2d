"""Analyzers are found by name: the registry lists them, an unknown name says which exist, a
newly registered analyzer answers through the real AnalyzerResource (no other file touched)
and can be the fallback; only billed analyzers cost money."""

from __future__ import annotations

import time

import pytest

from cscoach_pipeline.defs.analysis import analyzers
from cscoach_pipeline.defs.analysis.analyzers import (
    AnalysisOutcome,
    Analyzer,
    AnalyzerConfig,
    ConfigurationError,
    analyzer_class,
    available_analyzers,
)
from cscoach_pipeline.defs.analysis.prompts import PromptTemplate, load_prompt
from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from cscoach_pipeline.defs.analysis.schema import ConsultationAnalysis
from cscoach_pipeline.defs.speech.transcript import Segment, Speaker, Transcript
from cscoach_pipeline.resilience import CircuitOpenError
from tests.support.fake_gemini import valid_analysis

TRANSCRIPT = Transcript(
    source="text",
    segments=[
        Segment(speaker=Speaker.AGENT, text="Hello, how can I help you today?"),
        Segment(speaker=Speaker.CUSTOMER, text="My card does not work."),
    ],
)


class EchoAnalyzer(Analyzer):
    """A stand-in for a new analyzer (an on-premise LLM, say)."""

    name = "echo"
    billed = True

    def __init__(self, model: str) -> None:
        self.model = model

    @classmethod
    def from_config(cls, config: AnalyzerConfig) -> EchoAnalyzer:
        return cls(config.model)

    def analyze(self, transcript: Transcript, prompt: PromptTemplate) -> AnalysisOutcome:
        started = time.perf_counter()
        analysis = ConsultationAnalysis.model_validate(valid_analysis())
        return AnalysisOutcome(
            analysis, self.name, self.model, time.perf_counter() - started, 1000, 100, 0, 1
        )


class OpenCircuitAnalyzer(EchoAnalyzer):
    name = "open-circuit"

    def analyze(self, transcript: Transcript, prompt: PromptTemplate) -> AnalysisOutcome:
        raise CircuitOpenError(30.0, "open-circuit", 5)


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(analyzers.ANALYZERS, EchoAnalyzer.name, EchoAnalyzer)
    monkeypatch.setitem(analyzers.ANALYZERS, OpenCircuitAnalyzer.name, OpenCircuitAnalyzer)


def test_registry_lists_the_shipped_analyzers() -> None:
    assert available_analyzers() == ["gemini", "local-rules"]
    with pytest.raises(ConfigurationError, match="unknown analyzer 'gpt': choose one of gemini"):
        analyzer_class("gpt")


def test_a_registered_analyzer_answers_through_the_resource(registered: None) -> None:
    resource = AnalyzerResource(analyzer="echo", model="echo-1", prices_file=None)
    outcome = resource.analyze(TRANSCRIPT, load_prompt("v1"))
    assert (outcome.analyzer, outcome.model) == ("echo", "echo-1")
    assert resource.model_name == "echo-1"
    assert resource.cost(outcome) is None  # billed, but no price for echo-1: unknown, not 0


def test_local_rules_cost_nothing_and_gemini_is_priced() -> None:
    local = AnalyzerResource().analyze(TRANSCRIPT, load_prompt("v1"))
    assert local.analyzer == "local-rules" and AnalyzerResource().cost(local) == 0.0
    priced = AnalysisOutcome(local.analysis, "gemini", "gemini-2.5-flash", 1.0, 1_000_000, 0)
    assert AnalyzerResource().cost(priced) == pytest.approx(0.30)


def test_fallback_is_any_registered_analyzer(registered: None) -> None:
    resource = AnalyzerResource(analyzer="open-circuit", model="m", fallback="echo")
    outcome = resource.analyze(TRANSCRIPT, load_prompt("v1"))
    assert outcome.analyzer == "echo"
    assert outcome.fallback_reason is not None and outcome.fallback_reason.startswith("echo used")
    no_fallback = AnalyzerResource(analyzer="open-circuit", model="m")
    with pytest.raises(analyzers.AnalysisError):
        no_fallback.analyze(TRANSCRIPT, load_prompt("v1"))
