"""Stored analyses: the key (everything that determines the answer, nothing else) and the
cache over the warehouse's `analysis_cache` table."""

from __future__ import annotations

import hashlib
import json

from cscoach_pipeline.defs.analysis.analyzers import AnalysisOutcome
from cscoach_pipeline.defs.analysis.prompts import PromptTemplate
from cscoach_pipeline.defs.analysis.schema import ANALYSIS_SCHEMA_VERSION, ConsultationAnalysis
from cscoach_pipeline.defs.speech.transcript import Transcript
from cscoach_pipeline.defs.warehouse.stores import AnalysisCacheStore


def analysis_cache_key(transcript: Transcript, prompt: PromptTemplate, model: str) -> str:
    """sha256 over the redacted transcript as the analyzer sees it, the prompt (version and
    text: an edited prompt file must not reuse old answers), the model, the schema and, for
    prompts that ask them, the scorecard's questions."""
    payload = {
        "transcript": prompt.render(transcript),
        "system": prompt.system_instruction,
        "prompt_version": prompt.version,
        "model": model,
        "schema_version": ANALYSIS_SCHEMA_VERSION,
    }
    if prompt.scorecard:  # its questions are in the text already; the label names them
        payload["scorecard"] = prompt.scorecard
    canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(canonical).hexdigest()


class AnalysisCache:
    """Stored answers by `analysis_cache_key`: identical input is never paid for twice.
    Fallback answers are not stored (the next run should get the real analyzer's)."""

    def __init__(self, store: AnalysisCacheStore) -> None:
        self.store = store

    def get(self, cache_key: str) -> AnalysisOutcome | None:
        row = self.store.get(cache_key)
        if row is None:
            return None
        return AnalysisOutcome(
            analysis=ConsultationAnalysis.model_validate(row["result_json"]),
            analyzer=row["analyzer"],
            model=row["model"],
            elapsed_s=0.0,
            input_tokens=row["input_tokens"],
            output_tokens=row["output_tokens"],
            cached_tokens=row["cached_tokens"],
        )

    def put(self, cache_key: str, prompt_version: str, outcome: AnalysisOutcome) -> None:
        if outcome.fallback_reason is not None:
            return
        self.store.put(
            cache_key,
            {
                "prompt_version": prompt_version,
                "model": outcome.model,
                "schema_version": ANALYSIS_SCHEMA_VERSION,
                "analyzer": outcome.analyzer,
                "result_json": outcome.analysis.model_dump(mode="json"),
                "input_tokens": outcome.input_tokens,
                "output_tokens": outcome.output_tokens,
                "cached_tokens": outcome.cached_tokens,
            },
        )
