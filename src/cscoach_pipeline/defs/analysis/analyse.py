"""One consultation analysed: the prompt (and A/B arm) it gets, a stored answer when the
input is identical, else the analyzer's; what it cost; the `analyses` row and what the UI
shows."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from dagster import MetadataValue

from cscoach_pipeline.defs.analysis.analyzers import AnalysisError, AnalysisOutcome
from cscoach_pipeline.defs.analysis.cache import AnalysisCache, analysis_cache_key
from cscoach_pipeline.defs.analysis.prompts import PromptTemplate
from cscoach_pipeline.defs.analysis.resources import AnalyzerResource
from cscoach_pipeline.defs.analysis.schema import (
    RUBRIC_CRITERIA,
    ConsultationAnalysis,
    overall_score,
)
from cscoach_pipeline.defs.ingest.resources import ConsultationArtifacts
from cscoach_pipeline.defs.privacy.pii import redact, redact_text
from cscoach_pipeline.defs.speech.transcript import Transcript
from cscoach_pipeline.defs.warehouse.stores import HealthStore
from cscoach_pipeline.resilience import BreakerState


def analysis_artifact(prompt_version: str) -> str:
    return f"analysis.{prompt_version}.json"


@dataclass(frozen=True)
class Analysed:
    prompt: PromptTemplate  # the consultation's arm of the prompt version
    outcome: AnalysisOutcome
    cache_hit: bool
    cost_usd: float | None
    # PII found in the model's own text, redacted before anything stored it.
    answer_pii: int = 0

    def _billed(self, value: int | None) -> int | None:
        return 0 if self.cache_hit else value

    def row(self, consultation_id: str) -> dict[str, Any]:
        """The `analyses` row (one per prompt version)."""
        analysis = self.outcome.analysis
        return {
            "consultation_id": consultation_id,
            "prompt_version": self.prompt.version,
            "prompt_variant": self.prompt.variant,
            "analyzer": self.outcome.analyzer,
            "model": self.outcome.model,
            "summary": analysis.summary,
            "customer_intent": analysis.customer_intent,
            "issue": analysis.issue,
            "resolution_status": analysis.resolution_status.value,
            "sentiment_start": analysis.customer_sentiment.start.value,
            "sentiment_end": analysis.customer_sentiment.end.value,
            "result_json": analysis.model_dump(mode="json"),
            "elapsed_s": round(self.outcome.elapsed_s, 3),
            "input_tokens": self._billed(self.outcome.input_tokens),
            "output_tokens": self._billed(self.outcome.output_tokens),
            "cached_tokens": self._billed(self.outcome.cached_tokens),
            "cost_usd": self.cost_usd,
            "requests": self._billed(self.outcome.requests),
            "cache_hit": self.cache_hit,
            "repaired": self.outcome.repaired,
            "fallback_reason": self.outcome.fallback_reason,
        }

    def metadata(self) -> dict[str, Any]:
        analysis = self.outcome.analysis
        return {
            "analyzer": self.outcome.analyzer,
            "model": self.outcome.model,
            "prompt_version": self.prompt.version,
            "prompt_variant": self.prompt.variant or "",
            "resolution_status": analysis.resolution_status.value,
            "rubric_mean": overall_score(analysis.rubric),
            "summary": MetadataValue.md(analysis.summary),
            "rubric": MetadataValue.json(
                {name: getattr(analysis.rubric, name).score for name in RUBRIC_CRITERIA}
            ),
            "input_tokens": self._billed(self.outcome.input_tokens) or 0,
            "output_tokens": self._billed(self.outcome.output_tokens) or 0,
            "cached_tokens": self._billed(self.outcome.cached_tokens) or 0,
            "requests": self._billed(self.outcome.requests) or 0,
            "cost_usd": (
                self.cost_usd if self.cost_usd is not None else "unknown (no price for this model)"
            ),
            "cache_hit": self.cache_hit,
            "repaired": self.outcome.repaired,
            "fallback": self.outcome.fallback_reason or "",
            "elapsed_s": round(self.outcome.elapsed_s, 3),
        }


def analyse_transcript(
    transcript: Transcript,
    prompt: PromptTemplate,
    analyzer: AnalyzerResource,
    cache: AnalysisCache,
    artifacts: ConsultationArtifacts,
    health: HealthStore | None = None,
) -> Analysed:
    """Analyse (or reuse a stored answer) and keep the analysis in the artifacts. An
    unusable model answer is kept as an artifact for whoever tunes the prompt. The
    analyzer's breaker state after the call goes to `health` (an outage's alerts)."""
    cache_key = analysis_cache_key(transcript, prompt, analyzer.model_name)
    outcome = cache.get(cache_key)
    cache_hit = outcome is not None
    answer_pii = 0
    if outcome is None:
        try:
            outcome = analyzer.analyze(transcript, prompt)
        except AnalysisError as exc:
            observe_llm_health(health, analyzer, answered=False, reason=str(exc))
            if exc.raw_text is None:
                raise
            name = f"analysis.{prompt.version}.raw.txt"
            artifacts.write_text(name, exc.raw_text, "text/plain")
            raise AnalysisError(
                f"{exc}; the model's answer is kept at {artifacts.locate(name)}"
            ) from None
        observe_llm_health(
            health, analyzer, answered=outcome.fallback_reason is None,
            reason=outcome.fallback_reason,
        )  # fmt: skip
        clean, answer_pii = redact_answer(outcome.analysis)
        outcome = replace(outcome, analysis=clean)
        cache.put(cache_key, prompt.version, outcome)
    artifacts.write_json(
        analysis_artifact(prompt.version), outcome.analysis.model_dump(mode="json")
    )
    cost = 0.0 if cache_hit else analyzer.cost(outcome)
    return Analysed(prompt, outcome, cache_hit, cost, answer_pii)


def redact_answer(analysis: ConsultationAnalysis) -> tuple[ConsultationAnalysis, int]:
    """The model saw redacted text only, so PII in its answer is invented or leaked: every
    text in it is redacted before it is stored; returns how many findings were replaced."""
    found = 0

    def clean(value: Any) -> Any:
        nonlocal found
        if isinstance(value, str):
            result = redact(value)
            found += result.total
            return result.text
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    data = clean(analysis.model_dump(mode="json"))
    return (ConsultationAnalysis.model_validate(data) if found else analysis), found


def observe_llm_health(
    health: HealthStore | None,
    analyzer: AnalyzerResource,
    *,
    answered: bool,
    reason: str | None = None,
) -> None:
    """An open breaker is an outage; an answer from the model itself with the breaker closed
    ends one, whichever process saw it open (each run has its own breaker unless Redis is
    shared). Half-open says nothing yet."""
    state = analyzer.breaker_state() if health is not None else None
    if health is None or state is None:
        return
    if state is BreakerState.OPEN:
        detail = redact_text(reason)[:300] if reason else "the circuit breaker opened"
        health.observe(analyzer.service, "open", healthy="closed", detail=detail)
    elif state is BreakerState.CLOSED and answered:
        health.observe(analyzer.service, "closed", healthy="closed", detail="answering again")
