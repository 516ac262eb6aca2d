"""The analysis resource: Gemini when GEMINI_API_KEY is set, offline local rules otherwise."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from ..lib.analyzers import Analyzer, GeminiAnalyzer, LocalRulesAnalyzer
from ..lib.prompts import PromptTemplate, load_prompt


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

    def prompt(self) -> PromptTemplate:
        return load_prompt(self.prompt_version)

    def load(self) -> Analyzer:
        if self.gemini_api_key:
            return GeminiAnalyzer(
                self.gemini_api_key,
                self.gemini_model,
                base_url=self.gemini_base_url,
                max_retries=self.max_retries,
                backoff_base_s=self.backoff_base_s,
            )
        return LocalRulesAnalyzer()
