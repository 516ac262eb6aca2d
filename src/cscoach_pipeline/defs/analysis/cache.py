"""The key of a stored analysis: everything that determines the answer, nothing else."""

from __future__ import annotations

import hashlib
import json

from cscoach_pipeline.defs.analysis.prompts import PromptTemplate
from cscoach_pipeline.defs.analysis.schema import ANALYSIS_SCHEMA_VERSION
from cscoach_pipeline.defs.speech.transcript import Transcript


def analysis_cache_key(transcript: Transcript, prompt: PromptTemplate, model: str) -> str:
    """sha256 over the redacted transcript as the analyzer sees it, the prompt (version and
    text: an edited prompt file must not reuse old answers), the model and the schema."""
    payload = {
        "transcript": prompt.render(transcript),
        "system": prompt.system_instruction,
        "prompt_version": prompt.version,
        "model": model,
        "schema_version": ANALYSIS_SCHEMA_VERSION,
    }
    canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode("utf-8")
    return hashlib.sha256(canonical).hexdigest()
