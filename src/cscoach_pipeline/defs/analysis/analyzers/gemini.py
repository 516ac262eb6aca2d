"""Google Gemini through `google-genai`: structured JSON output, retries, repair, breaker."""

from __future__ import annotations

import importlib
import json
import time
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from cscoach_pipeline import shared_limits
from cscoach_pipeline.defs.analysis.analyzers.base import (
    AnalysisError,
    AnalysisOutcome,
    Analyzer,
    AnalyzerConfig,
    ConfigurationError,
)
from cscoach_pipeline.defs.analysis.prompts import PromptTemplate
from cscoach_pipeline.defs.analysis.schema import ConsultationAnalysis
from cscoach_pipeline.defs.speech.transcript import Transcript
from cscoach_pipeline.resilience import (
    CircuitBreaker,
    RateLimiter,
    backoff_delays,
    shared_breaker,
    shared_limiter,
)
from cscoach_pipeline.shared_limits import RedisCircuitBreaker, RedisRateLimiter

RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


@lru_cache(maxsize=1)
def _transport_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(timeouts, connection failures) of the HTTP library google-genai uses (httpx, or its
    fork httpx2 in newer releases); both are transient and retried like 5xx answers."""
    timeouts: list[type[Exception]] = []
    connects: list[type[Exception]] = []
    for module_name in ("httpx", "httpx2"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        timeouts.append(module.TimeoutException)
        connects.append(module.ConnectError)
    return tuple(timeouts), tuple(connects)


REPAIR_INSTRUCTION = (
    "Your previous answer could not be used: {problem}. Answer again with ONLY a JSON object "
    "that matches the response schema exactly: every required field, scores as integers 0-5, "
    "no extra fields, no text outside the JSON."
)


class GeminiAnalyzer(Analyzer):
    """Google Gemini through `google-genai` with JSON-schema structured output, retries with
    jittered exponential backoff, one repair round for unusable JSON, a process-wide circuit
    breaker and a client-side rate limiter shared by every analysis in the process."""

    name = "gemini"
    billed = True

    @classmethod
    def from_config(cls, config: AnalyzerConfig) -> GeminiAnalyzer:
        if not config.api_key:
            raise ConfigurationError("the Gemini analyzer needs GEMINI_API_KEY")
        return _cached_client(config)

    def __init__(
        self,
        api_key: str,
        model: str,
        *,
        base_url: str | None = None,
        api_version: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        backoff_base_s: float = 2.0,
        backoff_cap_s: float = 60.0,
        requests_per_minute: float = 60.0,
        max_concurrent: int = 4,
        breaker_failures: int = 5,
        breaker_reset_s: float = 60.0,
        breaker_successes: int = 3,
        shared_limits_url: str | None = None,
    ) -> None:
        from google import genai
        from google.genai import types

        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        http_options = types.HttpOptions(timeout=int(timeout_s * 1000))
        if base_url:
            http_options.base_url = base_url
        if api_version:  # "v1" (the client's default) or "v1beta" for preview features
            http_options.api_version = api_version
        self._client = genai.Client(api_key=api_key, http_options=http_options)
        # Shared per model: every concurrent analysis sees the same health and spends from the
        # same quota; with a Redis URL across the whole deployment, else within this process.
        name = f"gemini:{model}"
        self.breaker: CircuitBreaker | RedisCircuitBreaker
        self.limiter: RateLimiter | RedisRateLimiter
        if shared_limits_url:
            self.breaker = shared_limits.shared_breaker(
                shared_limits_url, name, breaker_failures, breaker_reset_s, breaker_successes
            )
            self.limiter = shared_limits.shared_limiter(
                shared_limits_url, name, requests_per_minute, max_concurrent
            )
        else:
            self.breaker = shared_breaker(
                name,
                failure_threshold=breaker_failures,
                reset_timeout_s=breaker_reset_s,
                success_threshold=breaker_successes,
            )
            self.limiter = shared_limiter(name, requests_per_minute, max_concurrent)

    def verify(self) -> None:
        self.verify_model()

    def verify_model(self) -> None:
        """Fail fast on a model name the API does not know (a typo in CSCOACH_GEMINI_MODEL)."""
        from google.genai import errors

        try:
            self._client.models.get(model=self.model)
        except errors.APIError as exc:
            if exc.code == 404:
                raise ConfigurationError(
                    f"unknown Gemini model {self.model!r} (CSCOACH_GEMINI_MODEL): the API "
                    f"answered {exc.message or 'not found'}"
                ) from None
            if exc.code in (400, 401, 403):
                raise ConfigurationError(
                    f"Gemini rejected the API key or project (HTTP {exc.code} {exc.status}): "
                    "check GEMINI_API_KEY"
                ) from None
            raise

    def _config(self, prompt: PromptTemplate) -> Any:
        from google.genai import types

        return types.GenerateContentConfig(
            system_instruction=prompt.system_instruction,
            response_mime_type="application/json",
            response_json_schema=ConsultationAnalysis.model_json_schema(),
            temperature=0.2,
        )

    def _generate(self, contents: Any, config: Any) -> tuple[Any, int]:
        """One logical request: rate-limited, retried, guarded by the circuit breaker.
        Returns the response and how many HTTP requests it took."""
        from google.genai import errors

        timeouts, connect_errors = _transport_errors()
        delays = backoff_delays(self.max_retries, self.backoff_base_s, self.backoff_cap_s)
        for attempt in range(self.max_retries + 1):
            if not self.breaker.allow():
                raise self.breaker.open_error()
            try:
                with self.limiter.acquire():
                    response = self._client.models.generate_content(
                        model=self.model, contents=contents, config=config
                    )
                self.breaker.record_success()
                return response, attempt + 1
            except errors.APIError as exc:
                retryable = exc.code in RETRYABLE_STATUS
                if not retryable:
                    # A 4xx says nothing about the service's health.
                    if exc.code == 404:
                        raise ConfigurationError(
                            f"unknown Gemini model {self.model!r} (CSCOACH_GEMINI_MODEL)"
                        ) from None
                    raise AnalysisError(
                        f"Gemini request failed with HTTP {exc.code} {exc.status or ''}: "
                        f"{exc.message or 'no message'}"
                    ) from exc
                self.breaker.record_failure()
                if attempt == self.max_retries:
                    raise AnalysisError(
                        f"Gemini request failed with HTTP {exc.code} {exc.status or ''}: "
                        f"{exc.message or 'no message'} (after {attempt + 1} attempts)"
                    ) from exc
            except (*timeouts, *connect_errors) as exc:
                self.breaker.record_failure()
                if attempt == self.max_retries:
                    what = (
                        f"timed out after {self.timeout_s:g} s"
                        if isinstance(exc, timeouts)
                        else f"could not connect ({type(exc).__name__}: {exc})"
                    )
                    raise AnalysisError(
                        f"Gemini request {what} (after {attempt + 1} attempts)"
                    ) from exc
            time.sleep(delays[attempt])
        raise AssertionError("unreachable")

    def analyze(self, transcript: Transcript, prompt: PromptTemplate) -> AnalysisOutcome:
        from google.genai import types

        started = time.perf_counter()
        config = self._config(prompt)
        user_text = prompt.render(transcript)
        response, requests = self._generate(user_text, config)
        usage = [getattr(response, "usage_metadata", None)]
        repaired = False
        try:
            analysis = _parse_analysis(response)
        except AnalysisError as first:
            if first.raw_text is None:
                raise  # blocked or empty: nothing to repair
            # One repair round: show the model its answer and what was wrong with it.
            contents = [
                types.Content(role="user", parts=[types.Part(text=user_text)]),
                types.Content(role="model", parts=[types.Part(text=first.raw_text or "")]),
                types.Content(
                    role="user",
                    parts=[types.Part(text=REPAIR_INSTRUCTION.format(problem=first))],
                ),
            ]
            response, more = self._generate(contents, config)
            requests += more
            usage.append(getattr(response, "usage_metadata", None))
            try:
                analysis = _parse_analysis(response)
            except AnalysisError as second:
                raise AnalysisError(
                    f"{second} (also after one repair attempt)", second.raw_text
                ) from None
            repaired = True
        return AnalysisOutcome(
            analysis=analysis,
            analyzer=self.name,
            model=self.model,
            elapsed_s=time.perf_counter() - started,
            input_tokens=_total(usage, "prompt_token_count"),
            output_tokens=_total(usage, "candidates_token_count"),
            cached_tokens=_total(usage, "cached_content_token_count"),
            requests=requests,
            repaired=repaired,
        )


def _total(usages: list[Any], field: str) -> int | None:
    values = [getattr(u, field, None) for u in usages if u is not None]
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def _parse_analysis(response: Any) -> ConsultationAnalysis:
    text = _response_text(response)
    try:
        return ConsultationAnalysis.model_validate_json(text)
    except ValidationError as exc:
        raise AnalysisError(
            f"Gemini returned JSON that does not match the analysis schema: "
            f"{exc.error_count()} errors, first: {exc.errors()[0]['msg']} at "
            f"{'.'.join(str(p) for p in exc.errors()[0]['loc'])}",
            text,
        ) from exc


def _response_text(response: Any) -> str:
    candidates = getattr(response, "candidates", None) or []
    feedback = getattr(response, "prompt_feedback", None)
    if not candidates:
        reason = getattr(feedback, "block_reason", None)
        raise AnalysisError(
            f"Gemini returned no answer (prompt blocked: {reason})"
            if reason
            else "Gemini returned no candidates"
        )
    finish = str(getattr(candidates[0], "finish_reason", "") or "")
    text = response.text
    if not text:
        raise AnalysisError(f"Gemini returned an empty answer (finish reason {finish or 'none'})")
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnalysisError(
            f"Gemini returned invalid JSON (finish reason {finish or 'none'}): {exc.msg}", text
        ) from exc
    return text


@lru_cache(maxsize=8)
def _cached_client(config: AnalyzerConfig) -> GeminiAnalyzer:
    # One client per configuration per process: pooled HTTP connections across analyses.
    return GeminiAnalyzer(
        config.api_key or "",
        config.model,
        base_url=config.base_url,
        timeout_s=config.timeout_s,
        max_retries=config.max_retries,
        backoff_base_s=config.backoff_base_s,
        requests_per_minute=config.requests_per_minute,
        max_concurrent=config.max_concurrent,
        breaker_failures=config.breaker_failures,
        breaker_reset_s=config.breaker_reset_s,
        breaker_successes=config.breaker_successes,
        shared_limits_url=config.shared_limits_url,
    )
