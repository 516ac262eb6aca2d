"""The offline analyzer: phrase rules and lexicons in English and Korean (no network)."""

from __future__ import annotations

import time

from cscoach_pipeline.defs.analysis.analyzers.base import (
    AnalysisOutcome,
    Analyzer,
    AnalyzerConfig,
)
from cscoach_pipeline.defs.analysis.local_rules import DEFAULT_PHRASE_BOOK, analyze_locally
from cscoach_pipeline.defs.analysis.prompts import PromptTemplate
from cscoach_pipeline.defs.speech.transcript import Transcript


class LocalRulesAnalyzer(Analyzer):
    """Offline phrase rules and lexicons (English, Korean); labelled so nobody mistakes it for
    an LLM's judgement. The prompt is not used: the rules' phrase book is versioned under
    prompts/local_rules/."""

    name = "local-rules"
    model = f"local-rules-{DEFAULT_PHRASE_BOOK}"

    @classmethod
    def from_config(cls, config: AnalyzerConfig) -> LocalRulesAnalyzer:
        return cls()

    def analyze(self, transcript: Transcript, prompt: PromptTemplate) -> AnalysisOutcome:
        started = time.perf_counter()
        analysis = analyze_locally(transcript)
        return AnalysisOutcome(
            analysis=analysis,
            analyzer=self.name,
            model=self.model,
            elapsed_s=time.perf_counter() - started,
        )
