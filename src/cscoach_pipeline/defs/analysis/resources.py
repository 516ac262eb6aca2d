"""The analyzer resource: which analyzer answers (by registry name), its configuration, the
fallback when its circuit is open, and what an answer costs."""

from __future__ import annotations

from dataclasses import fields, replace
from functools import lru_cache

from dagster import ConfigurableResource
from pydantic import Field

from cscoach_pipeline.defs.analysis.analyzers import (
    AnalysisError,
    AnalysisOutcome,
    Analyzer,
    AnalyzerConfig,
    ConfigurationError,
    analyzer_class,
    build_analyzer,
)
from cscoach_pipeline.defs.analysis.pricing import ModelPrice, cost_usd, load_prices
from cscoach_pipeline.defs.analysis.prompts import PromptTemplate
from cscoach_pipeline.defs.speech.transcript import Transcript
from cscoach_pipeline.resilience import BreakerState, CircuitOpenError

NO_FALLBACK = "none"


class AnalyzerResource(ConfigurableResource):
    analyzer: str = Field(default="local-rules", description="registry name: local-rules | gemini")
    model: str = Field(default="gemini-2.5-flash", description="model, for analyzers that take one")
    api_key: str | None = Field(default=None, description="from EnvVar('GEMINI_API_KEY')")
    base_url: str | None = Field(
        default=None, description="override endpoint (proxy, gateway, test server)"
    )
    prompt_version: str = "v1"
    scorecard: str = Field(default="inbound/v1", description="scorecard <name>/<version>")
    categories: str = Field(default="v1", description="call categories <version>")
    max_retries: int = 3
    backoff_base_s: float = 2.0
    timeout_s: float = 120.0
    requests_per_minute: float = Field(default=60.0, description="client-side quota")
    max_concurrent: int = Field(default=4, description="concurrent LLM requests per process")
    shared_limits_url: str | None = Field(
        default=None,
        description="redis:// URL: one quota and breaker for the deployment; unset = per process",
    )
    breaker_failures: int = Field(default=5, description="failed requests in a row to open")
    breaker_reset_s: float = Field(default=60.0, description="open this long, then probes")
    breaker_successes: int = Field(default=3, description="successful probes to close")
    fallback: str = Field(
        default=NO_FALLBACK,
        description="analyzer used while the circuit is open: none (fail fast) | local-rules",
    )
    prices_file: str | None = Field(default=None, description="JSON/YAML price overrides")

    @property
    def config(self) -> AnalyzerConfig:
        """What the analyzer is built from (the fields both share)."""
        return AnalyzerConfig(**{f.name: getattr(self, f.name) for f in fields(AnalyzerConfig)})

    def load(self) -> Analyzer:
        return build_analyzer(self.analyzer, self.config)

    @property
    def model_name(self) -> str:
        return self.load().model

    def analyze(self, transcript: Transcript, prompt: PromptTemplate) -> AnalysisOutcome:
        """Analyse with the configured analyzer; an open circuit fails fast or, if configured,
        falls back to another analyzer and says so in the outcome."""
        try:
            return self.load().analyze(transcript, prompt)
        except CircuitOpenError as exc:
            if self.fallback == NO_FALLBACK:
                raise AnalysisError(str(exc)) from None
            fallback = build_analyzer(self.fallback, self.config)
            try:
                outcome = fallback.analyze(transcript, prompt)
            except CircuitOpenError as also:
                raise AnalysisError(f"{exc}; the fallback's too: {also}") from None
            return replace(outcome, fallback_reason=f"{fallback.name} used: {exc}")
        except ConfigurationError as exc:
            raise AnalysisError(f"configuration error: {exc}") from None

    @property
    def service(self) -> str:
        """The service's name in `service_health`."""
        return f"llm:{self.analyzer}:{self.model}"

    def breaker_state(self) -> BreakerState | None:
        """The configured analyzer's circuit breaker state; None for one without a breaker
        (the offline rules)."""
        breaker = getattr(self.load(), "breaker", None)
        return breaker.state if breaker is not None else None

    def verify(self) -> None:
        """The start-up check: raises ConfigurationError for an unknown model or a bad key."""
        self.load().verify()

    def cost(self, outcome: AnalysisOutcome) -> float | None:
        """USD for one answer; 0 for analyzers that are not billed, None when no price."""
        if not analyzer_class(outcome.analyzer).billed:
            return 0.0
        return cost_usd(
            _prices(self.prices_file),
            outcome.model,
            outcome.input_tokens,
            outcome.output_tokens,
            outcome.cached_tokens,
        )


@lru_cache(maxsize=4)
def _prices(path: str | None) -> dict[str, ModelPrice]:
    return load_prices(path)
