"""Analyzers behind one interface: Gemini (online) and local phrase rules (offline)."""

from __future__ import annotations

import importlib
import json
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import ValidationError

from .analysis_schema import ConsultationAnalysis
from .prompts import PromptTemplate
from .transcript import Transcript


class AnalysisError(Exception):
    """The analyzer could not produce a valid analysis; the message is shown to users."""


@dataclass(frozen=True)
class AnalysisOutcome:
    analysis: ConsultationAnalysis
    analyzer: str
    model: str
    elapsed_s: float
    input_tokens: int | None = None
    output_tokens: int | None = None


class Analyzer(ABC):
    name: ClassVar[str]
    model: str

    @abstractmethod
    def analyze(self, transcript: Transcript, prompt: PromptTemplate) -> AnalysisOutcome: ...


class LocalRulesAnalyzer(Analyzer):
    """Offline phrase rules and lexicons (English, Korean); labelled so nobody mistakes it for
    an LLM's judgement. The prompt is not used: rules are versioned with the code."""

    name = "local-rules"
    model = "local-rules-v1"

    def analyze(self, transcript: Transcript, prompt: PromptTemplate) -> AnalysisOutcome:
        from .local_rules import analyze_locally

        started = time.perf_counter()
        analysis = analyze_locally(transcript)
        return AnalysisOutcome(
            analysis=analysis,
            analyzer=self.name,
            model=self.model,
            elapsed_s=time.perf_counter() - started,
        )


RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})


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


class GeminiAnalyzer(Analyzer):
    """Google Gemini through `google-genai` with JSON-schema structured output."""

    name = "gemini"

    def __init__(
        self,
        api_key: str,
        model: str,
        *,
        base_url: str | None = None,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        backoff_base_s: float = 2.0,
    ) -> None:
        from google import genai
        from google.genai import types

        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        http_options = types.HttpOptions(timeout=int(timeout_s * 1000))
        if base_url:
            http_options.base_url = base_url
        self._client = genai.Client(api_key=api_key, http_options=http_options)

    def _config(self, prompt: PromptTemplate) -> Any:
        from google.genai import types

        return types.GenerateContentConfig(
            system_instruction=prompt.system_instruction,
            response_mime_type="application/json",
            response_json_schema=ConsultationAnalysis.model_json_schema(),
            temperature=0.2,
        )

    def _generate(self, contents: str, config: Any) -> Any:
        from google.genai import errors

        timeouts, connect_errors = _transport_errors()
        for attempt in range(self.max_retries + 1):
            try:
                return self._client.models.generate_content(
                    model=self.model, contents=contents, config=config
                )
            except errors.APIError as exc:
                retryable = exc.code in RETRYABLE_STATUS
                if not retryable or attempt == self.max_retries:
                    raise AnalysisError(
                        f"Gemini request failed with HTTP {exc.code} {exc.status or ''}: "
                        f"{exc.message or 'no message'}"
                        + (f" (after {attempt + 1} attempts)" if retryable else "")
                    ) from exc
            except (*timeouts, *connect_errors) as exc:
                if attempt == self.max_retries:
                    what = (
                        f"timed out after {self.timeout_s:g} s"
                        if isinstance(exc, timeouts)
                        else f"could not connect ({type(exc).__name__}: {exc})"
                    )
                    raise AnalysisError(
                        f"Gemini request {what} (after {attempt + 1} attempts)"
                    ) from exc
            time.sleep(self.backoff_base_s * 2**attempt)  # 2 s, 4 s, 8 s as in the origin
        raise AssertionError("unreachable")

    def analyze(self, transcript: Transcript, prompt: PromptTemplate) -> AnalysisOutcome:
        started = time.perf_counter()
        response = self._generate(prompt.render(transcript), self._config(prompt))
        text = _response_text(response)
        try:
            analysis = ConsultationAnalysis.model_validate_json(text)
        except ValidationError as exc:
            raise AnalysisError(
                f"Gemini returned JSON that does not match the analysis schema: "
                f"{exc.error_count()} errors, first: {exc.errors()[0]['msg']}"
            ) from exc
        usage = getattr(response, "usage_metadata", None)
        return AnalysisOutcome(
            analysis=analysis,
            analyzer=self.name,
            model=self.model,
            elapsed_s=time.perf_counter() - started,
            input_tokens=getattr(usage, "prompt_token_count", None),
            output_tokens=getattr(usage, "candidates_token_count", None),
        )


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
            f"Gemini returned invalid JSON (finish reason {finish or 'none'}): {exc.msg}"
        ) from exc
    return text
