"""Analysis prompts: one version-controlled YAML file per version under prompts/analysis/."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel

from .transcript import Transcript

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts" / "analysis"


class PromptTemplate(BaseModel):
    version: str
    description: str = ""
    system_instruction: str
    user_template: str

    def render(self, transcript: Transcript) -> str:
        return self.user_template.format(
            language=transcript.language or "unknown", transcript=format_transcript(transcript)
        )


def available_prompt_versions() -> list[str]:
    return sorted(p.stem for p in PROMPTS_DIR.glob("*.yaml"))


@lru_cache(maxsize=16)
def load_prompt(version: str) -> PromptTemplate:
    path = PROMPTS_DIR / f"{version}.yaml"
    if not path.exists():
        raise ValueError(
            f"unknown prompt version {version!r} (CSCOACH_PROMPT_VERSION); "
            f"available: {', '.join(available_prompt_versions())}"
        )
    prompt = PromptTemplate.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    if prompt.version != version:
        raise ValueError(f"{path} declares version {prompt.version!r}, expected {version!r}")
    return prompt


def format_transcript(transcript: Transcript) -> str:
    lines = []
    for segment in transcript.segments:
        stamp = f"[{segment.start_s:07.1f}s] " if segment.start_s is not None else ""
        # Angle brackets inside speech must not be able to close the data delimiter.
        text = segment.text.replace("<", "‹").replace(">", "›")
        lines.append(f"{stamp}{segment.speaker.value}: {text}")
    return "\n".join(lines)
