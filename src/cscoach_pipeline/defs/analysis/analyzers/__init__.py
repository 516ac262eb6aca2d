"""Analyzers behind one interface, found by name. Adding one is a new module in this folder
and one line in `ANALYZERS`; `CSCOACH_ANALYZER` (and the fallback) then accept its name."""

from __future__ import annotations

from cscoach_pipeline.defs.analysis.analyzers.base import (
    AnalysisError,
    AnalysisOutcome,
    Analyzer,
    AnalyzerConfig,
    ConfigurationError,
)
from cscoach_pipeline.defs.analysis.analyzers.gemini import GeminiAnalyzer
from cscoach_pipeline.defs.analysis.analyzers.local_rules import LocalRulesAnalyzer

ANALYZERS: dict[str, type[Analyzer]] = {
    LocalRulesAnalyzer.name: LocalRulesAnalyzer,
    GeminiAnalyzer.name: GeminiAnalyzer,
}


def available_analyzers() -> list[str]:
    return sorted(ANALYZERS)


def analyzer_class(name: str) -> type[Analyzer]:
    try:
        return ANALYZERS[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown analyzer {name!r}: choose one of {', '.join(available_analyzers())}"
        ) from None


def build_analyzer(name: str, config: AnalyzerConfig) -> Analyzer:
    return analyzer_class(name).from_config(config)


__all__ = [
    "ANALYZERS",
    "AnalysisError",
    "AnalysisOutcome",
    "Analyzer",
    "AnalyzerConfig",
    "ConfigurationError",
    "GeminiAnalyzer",
    "LocalRulesAnalyzer",
    "analyzer_class",
    "available_analyzers",
    "build_analyzer",
]
