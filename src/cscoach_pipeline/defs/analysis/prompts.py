"""Analysis prompts: one version-controlled YAML file per version under prompts/analysis/."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

from cscoach_pipeline.defs.speech.transcript import Transcript

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts" / "analysis"
# Run tag a QA lead sets (UI backfill dialog "Add tags", or `--tags` on the CLI) to rescore
# with another prompt version than the configured one.
PROMPT_VERSION_TAG = "cscoach/prompt_version"


class PromptVariant(BaseModel):
    """An A/B variant: overrides some of the version's texts for a share of consultations."""

    weight: float = Field(default=1.0, gt=0)
    description: str = ""
    system_instruction: str | None = None
    user_template: str | None = None


class PromptTemplate(BaseModel):
    version: str
    description: str = ""
    system_instruction: str
    user_template: str
    variants: dict[str, PromptVariant] = Field(default_factory=dict)
    variant: str | None = Field(default=None, description="set once a variant is chosen")
    # The scorecard's questions, rendered into `{scorecard}` (with_scorecard).
    scorecard: str | None = None
    scorecard_text: str = ""

    @property
    def asks_scorecard(self) -> bool:
        return "{scorecard}" in self.user_template

    def with_scorecard(self, label: str, questions: str) -> PromptTemplate:
        """This prompt with the scorecard's questions, if its template asks them; a prompt
        that does not ask them is unchanged (and so are its cached answers)."""
        if not self.asks_scorecard:
            return self
        return self.model_copy(update={"scorecard": label, "scorecard_text": questions})

    def for_consultation(self, consultation_id: str) -> PromptTemplate:
        """The variant this consultation gets: stable (a hash of the id and the version, so a
        re-run keeps its arm) and split by the variants' weights."""
        if not self.variants:
            return self
        digest = hashlib.sha256(f"{self.version}:{consultation_id}".encode()).digest()
        arms = sorted(self.variants.items())
        point = int.from_bytes(digest[:8], "big") / 2**64 * sum(v.weight for _, v in arms)
        name, variant = arms[-1]
        for arm_name, arm in arms:
            if point < arm.weight:
                name, variant = arm_name, arm
                break
            point -= arm.weight
        return self.model_copy(
            update={
                "system_instruction": variant.system_instruction or self.system_instruction,
                "user_template": variant.user_template or self.user_template,
                "variants": {},
                "variant": name,
            }
        )

    def render(self, transcript: Transcript) -> str:
        return self.user_template.format(
            language=transcript.language or "unknown",
            transcript=format_transcript(transcript),
            # Prompts that score each turn refer to segments by number.
            numbered_transcript=format_transcript(transcript, numbered=True),
            scorecard=self.scorecard_text,
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
    try:
        prompt = PromptTemplate.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ValueError(f"prompt file {path.name} is invalid: {exc}") from None
    if prompt.version != version:
        raise ValueError(f"{path} declares version {prompt.version!r}, expected {version!r}")
    return prompt


def format_transcript(transcript: Transcript, *, numbered: bool = False) -> str:
    lines = []
    for index, segment in enumerate(transcript.segments):
        stamp = f"[{segment.start_s:07.1f}s] " if segment.start_s is not None else ""
        if numbered:
            stamp = f"#{index} {stamp}"
        # Angle brackets inside speech must not be able to close the data delimiter.
        text = segment.text.replace("<", "‹").replace(">", "›")
        lines.append(f"{stamp}{segment.speaker.value}: {text}")
    return "\n".join(lines)


def prompt_for_run(run_tags: Mapping[str, str], configured: str) -> PromptTemplate:
    """The run's `cscoach/prompt_version` tag (a reanalysis), else the configured version."""
    return load_prompt(run_tags.get(PROMPT_VERSION_TAG) or configured)
