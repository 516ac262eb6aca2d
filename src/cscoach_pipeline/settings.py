"""Configuration from environment variables, with defaults that give the embedded offline setup.

Everything a user can set is read here, once, so the README's configuration table has one
source of truth. Secrets are not read here: they reach resources through dagster `EnvVar`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cscoach_pipeline.defs.speech.text_import import (
    DEFAULT_MAX_CHAT_CHARS,
    DEFAULT_MAX_CHAT_SEGMENTS,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    bucket_url: str = field(
        default_factory=lambda: _env("CSCOACH_BUCKET_URL", (DEFAULT_DATA_DIR / "bucket").as_uri())
    )
    warehouse_url: str = field(
        default_factory=lambda: _env(
            "CSCOACH_WAREHOUSE_URL", f"sqlite:///{DEFAULT_DATA_DIR / 'warehouse.db'}"
        )
    )
    # Empty means: the bundled offline tiny.en model (see resources/speech_to_text.py).
    whisper_model: str = field(default_factory=lambda: _env("CSCOACH_WHISPER_MODEL", ""))
    stt_engine: str = field(default_factory=lambda: _env("CSCOACH_STT_ENGINE", "faster-whisper"))
    whisper_language: str = field(default_factory=lambda: _env("CSCOACH_WHISPER_LANGUAGE", ""))
    agent_channel: int = field(default_factory=lambda: int(_env_float("CSCOACH_AGENT_CHANNEL", 0)))
    gemini_model: str = field(
        default_factory=lambda: _env("CSCOACH_GEMINI_MODEL", "gemini-2.5-flash")
    )
    prompt_version: str = field(default_factory=lambda: _env("CSCOACH_PROMPT_VERSION", "v1"))
    gemini_rpm: float = field(default_factory=lambda: _env_float("CSCOACH_GEMINI_RPM", 60.0))
    gemini_max_concurrency: int = field(
        default_factory=lambda: int(_env_float("CSCOACH_GEMINI_MAX_CONCURRENCY", 4))
    )
    gemini_timeout_s: float = field(
        default_factory=lambda: _env_float("CSCOACH_GEMINI_TIMEOUT_S", 120.0)
    )
    gemini_fallback: str = field(default_factory=lambda: _env("CSCOACH_GEMINI_FALLBACK", "none"))
    gemini_prices: str = field(default_factory=lambda: _env("CSCOACH_GEMINI_PRICES", ""))
    incoming_prefix: str = field(
        default_factory=lambda: _env("CSCOACH_INCOMING_PREFIX", "incoming/")
    )
    artifacts_prefix: str = field(
        default_factory=lambda: _env("CSCOACH_ARTIFACTS_PREFIX", "artifacts/")
    )
    max_file_bytes: int = field(
        default_factory=lambda: int(_env_float("CSCOACH_MAX_FILE_MB", 2048) * 1024 * 1024)
    )
    # Longer chats fail with the limit as their reason (memory and analysis time stay bounded).
    max_chat_segments: int = field(
        default_factory=lambda: int(
            _env_float("CSCOACH_MAX_CHAT_SEGMENTS", DEFAULT_MAX_CHAT_SEGMENTS)
        )
    )
    max_chat_chars: int = field(
        default_factory=lambda: int(_env_float("CSCOACH_MAX_CHAT_CHARS", DEFAULT_MAX_CHAT_CHARS))
    )
    ffmpeg_timeout_s: float = field(
        default_factory=lambda: _env_float("CSCOACH_FFMPEG_TIMEOUT_S", 900.0)
    )
    settle_seconds: float = field(
        default_factory=lambda: _env_float("CSCOACH_SETTLE_SECONDS", 10.0)
    )
    sensor_interval_s: int = field(
        default_factory=lambda: int(_env_float("CSCOACH_SENSOR_INTERVAL_S", 10))
    )
    max_runs_per_tick: int = field(
        default_factory=lambda: int(_env_float("CSCOACH_MAX_RUNS_PER_TICK", 200))
    )
    # Seconds of hashing/recording work per sensor tick, well inside Dagster's 60 s limit.
    tick_budget_s: float = field(
        default_factory=lambda: _env_float("CSCOACH_SENSOR_TICK_BUDGET_S", 20.0)
    )
    # Seconds of listing per tick; a longer listing resumes where it stopped on the next tick.
    list_budget_s: float = field(
        default_factory=lambda: _env_float("CSCOACH_SENSOR_LIST_BUDGET_S", 30.0)
    )
    # Outages (warehouse, bucket, disk, dead workers) are retried with a fresh run.
    max_attempts: int = field(default_factory=lambda: int(_env_float("CSCOACH_MAX_ATTEMPTS", 4)))
    retry_backoff_s: float = field(
        default_factory=lambda: _env_float("CSCOACH_RETRY_BACKOFF_S", 60.0)
    )
    recovery_interval_s: int = field(
        default_factory=lambda: int(_env_float("CSCOACH_RECOVERY_INTERVAL_S", 30))
    )
    step_retries: int = field(default_factory=lambda: int(_env_float("CSCOACH_STEP_RETRIES", 2)))
    step_retry_base_s: float = field(
        default_factory=lambda: _env_float("CSCOACH_STEP_RETRY_BASE_S", 5.0)
    )
    stale_after_s: float = field(default_factory=lambda: _env_float("CSCOACH_STALE_AFTER_S", 120.0))
    # e.g. "incoming/{team}/{agent_id}/": folders that name the team and the agent.
    key_pattern: str = field(default_factory=lambda: _env("CSCOACH_KEY_PATTERN", ""))


def load_settings() -> Settings:
    return Settings()
