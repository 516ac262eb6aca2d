"""The analysis resource: Gemini when GEMINI_API_KEY is set, offline local rules otherwise;
circuit-breaker fallback, cost per call and the configuration checked at start-up."""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from dagster import ConfigurableResource
from pydantic import Field

from cscoach_pipeline.defs.analysis.analyzers import (
    AnalysisError,
    AnalysisOutcome,
    Analyzer,
    ConfigurationError,
    GeminiAnalyzer,
    LocalRulesAnalyzer,
)
from cscoach_pipeline.defs.analysis.pricing import ModelPrice, cost_usd, load_prices
from cscoach_pipeline.defs.analysis.prompts import PromptTemplate, load_prompt
from cscoach_pipeline.defs.speech.transcript import Transcript
from cscoach_pipeline.resilience import CircuitOpenError

FALLBACKS = ("none", "local-rules")


class AnalyzerResource(ConfigurableResource):
    gemini_api_key: str | None = Field(
        default=None, description="from EnvVar('GEMINI_API_KEY'); unset = local-rules analyzer"
    )
    gemini_model: str = "gemini-2.5-flash"
    gemini_base_url: str | None = Field(
        default=None, description="override endpoint (proxy, gateway, test server)"
    )
    prompt_version: str = "v1"
    max_retries: int = 3
    backoff_base_s: float = 2.0
    timeout_s: float = 120.0
    requests_per_minute: float = Field(default=60.0, description="client-side quota")
    max_concurrent: int = Field(default=4, description="concurrent Gemini requests per process")
    fallback: str = Field(
        default="none", description="when the circuit is open: none (fail fast) | local-rules"
    )
    prices_file: str | None = Field(default=None, description="JSON/YAML price overrides")

    def prompt(self) -> PromptTemplate:
        return load_prompt(self.prompt_version)

    @property
    def uses_gemini(self) -> bool:
        return bool(self.gemini_api_key)

    @property
    def model_name(self) -> str:
        return self.gemini_model if self.uses_gemini else LocalRulesAnalyzer.model

    def load(self) -> Analyzer:
        if not self.gemini_api_key:
            return LocalRulesAnalyzer()
        return _gemini(
            self.gemini_api_key,
            self.gemini_model,
            self.gemini_base_url,
            self.timeout_s,
            self.max_retries,
            self.backoff_base_s,
            self.requests_per_minute,
            self.max_concurrent,
        )

    def analyze(self, transcript: Transcript, prompt: PromptTemplate) -> AnalysisOutcome:
        """Analyse with the configured analyzer; an open circuit fails fast or, if configured,
        falls back to local rules and says so in the outcome."""
        if self.fallback not in FALLBACKS:
            raise AnalysisError(f"CSCOACH_GEMINI_FALLBACK must be one of {FALLBACKS}")
        try:
            return self.load().analyze(transcript, prompt)
        except CircuitOpenError as exc:
            if self.fallback != "local-rules":
                raise AnalysisError(str(exc)) from None
            outcome = LocalRulesAnalyzer().analyze(transcript, prompt)
            return replace(outcome, fallback_reason=f"local-rules used: {exc}")
        except ConfigurationError as exc:
            raise AnalysisError(f"configuration error: {exc}") from None

    def verify(self) -> None:
        """The start-up check: raises ConfigurationError for an unknown model or bad key."""
        analyzer = self.load()
        if isinstance(analyzer, GeminiAnalyzer):
            analyzer.verify_model()

    def cost(self, outcome: AnalysisOutcome) -> float | None:
        if outcome.analyzer != GeminiAnalyzer.name:
            return 0.0
        return cost_usd(
            _prices(self.prices_file),
            outcome.model,
            outcome.input_tokens,
            outcome.output_tokens,
            outcome.cached_tokens,
        )


@lru_cache(maxsize=8)
def _gemini(
    api_key: str,
    model: str,
    base_url: str | None,
    timeout_s: float,
    max_retries: int,
    backoff_base_s: float,
    requests_per_minute: float,
    max_concurrent: int,
) -> GeminiAnalyzer:
    # One client per configuration per process: pooled HTTP connections across analyses.
    return GeminiAnalyzer(
        api_key,
        model,
        base_url=base_url,
        timeout_s=timeout_s,
        max_retries=max_retries,
        backoff_base_s=backoff_base_s,
        requests_per_minute=requests_per_minute,
        max_concurrent=max_concurrent,
    )


@lru_cache(maxsize=4)
def _prices(path: str | None) -> dict[str, ModelPrice]:
    return load_prices(path)
