"""What every analyzer is: a name, a model, `analyze(transcript, prompt)`, and how it is
built from the analyzer resource's configuration."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Self

from cscoach_pipeline.defs.analysis.prompts import PromptTemplate
from cscoach_pipeline.defs.analysis.schema import ConsultationAnalysis
from cscoach_pipeline.defs.speech.transcript import Transcript


class AnalysisError(Exception):
    """The analyzer could not produce a valid analysis; the message is shown to users.
    `raw_text` keeps the model's last answer when it was unusable, for an artifact."""

    def __init__(self, message: str, raw_text: str | None = None) -> None:
        super().__init__(message)
        self.raw_text = raw_text


class ConfigurationError(Exception):
    """The analyzer is misconfigured (e.g. an unknown model): no retry can fix it."""


@dataclass(frozen=True)
class AnalysisOutcome:
    analysis: ConsultationAnalysis
    analyzer: str
    model: str
    elapsed_s: float
    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int | None = None
    requests: int = 0
    repaired: bool = False
    fallback_reason: str | None = None


@dataclass(frozen=True)
class AnalyzerConfig:
    """What an analyzer may be configured with (fields it does not use are ignored)."""

    model: str = ""
    api_key: str | None = None
    base_url: str | None = None
    timeout_s: float = 120.0
    max_retries: int = 3
    backoff_base_s: float = 2.0
    requests_per_minute: float = 60.0
    max_concurrent: int = 4
    breaker_failures: int = 5
    breaker_reset_s: float = 60.0
    breaker_successes: int = 3
    # Redis for a deployment-wide quota and breaker; None keeps them per process.
    shared_limits_url: str | None = None


class Analyzer(ABC):
    name: ClassVar[str]
    # Whether answers cost money (priced per token from the price table).
    billed: ClassVar[bool] = False
    model: str

    @classmethod
    @abstractmethod
    def from_config(cls, config: AnalyzerConfig) -> Self: ...

    @abstractmethod
    def analyze(self, transcript: Transcript, prompt: PromptTemplate) -> AnalysisOutcome: ...

    def verify(self) -> None:  # noqa: B027 - most analyzers have nothing to check
        """The start-up check; raises ConfigurationError when no analysis could succeed."""
