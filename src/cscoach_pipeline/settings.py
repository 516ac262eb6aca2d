"""Every setting a user can make, read from the environment once and validated when the code
location loads (pydantic-settings). A bad value is one clear error in the Dagster UI's code
location status, not a failed run per consultation.

The README's configuration table mirrors this class. Only the definitions and the command-line
entry points call `load_settings()`; everything below them receives resource fields. Secrets
are only checked for presence here: resources get them through dagster `EnvVar`.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from cscoach_pipeline.defs.speech.text_import import (
    DEFAULT_MAX_CHAT_CHARS,
    DEFAULT_MAX_CHAT_SEGMENTS,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"


class SettingsError(ValueError):
    """The environment holds an invalid setting: one line per bad variable."""


def _env(name: str) -> Any:
    """A field read from an environment variable that is not CSCOACH_-prefixed."""
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CSCOACH_",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        str_strip_whitespace=True,
    )

    # Where consultations arrive and results go.
    bucket_url: str = Field(default=(DEFAULT_DATA_DIR / "bucket").as_uri())
    warehouse_url: str = Field(default=f"sqlite:///{DEFAULT_DATA_DIR / 'warehouse.db'}")
    incoming_prefix: str = "incoming/"
    artifacts_prefix: str = "artifacts/"
    # QA reviewers' files (CSV / JSON lines) for the scorecard calibration.
    reviews_prefix: str = "reviews/"
    reviews_interval_s: int = Field(default=30, ge=1)
    # Supervisor aggregates: days in the centre's timezone, the first day partition, how
    # many consultations the review queue lists per day, how often changes are looked for.
    timezone: str = "UTC"
    aggregates_start: date = date(2024, 1, 1)
    review_queue_size: int = Field(default=20, ge=1, le=1000)
    aggregates_interval_s: int = Field(default=60, ge=1)
    # Daily team reports: where they go in the bucket, and the local hour they are written.
    reports_prefix: str = "reports/"
    reports_hour: int = Field(default=6, ge=0, le=23)
    # e.g. "incoming/{team}/{agent_id}/": folders that name the team and the agent.
    key_pattern: str = ""
    # Storage backends' options (credentials themselves come from boto3's chain / EnvVar).
    s3_endpoint_url: str | None = Field(default=None, validation_alias=_env("AWS_ENDPOINT_URL"))
    s3_addressing_style: Literal["auto", "path", "virtual"] | None = None
    supabase_url: str | None = Field(default=None, validation_alias=_env("SUPABASE_URL"))
    supabase_key: SecretStr | None = Field(
        default=None, validation_alias=_env("SUPABASE_SERVICE_ROLE_KEY")
    )

    # Input limits: larger files and longer chats fail with the limit as their reason.
    max_file_mb: float = Field(default=2048, gt=0)
    max_chat_segments: int = Field(default=DEFAULT_MAX_CHAT_SEGMENTS, ge=1)
    max_chat_chars: int = Field(default=DEFAULT_MAX_CHAT_CHARS, ge=1)
    ffmpeg_timeout_s: float = Field(default=900.0, gt=0)

    # Speech-to-text. An empty model means the bundled offline tiny.en.
    stt_engine: str = "faster-whisper"
    whisper_model: str = ""
    whisper_language: str = ""
    agent_channel: int = Field(default=0, ge=0, le=1)
    # detect: what the speakers say decides the agent (agent_channel a prior); channel: forced.
    speaker_roles: Literal["detect", "channel"] = "detect"
    diarization: Literal["auto", "off"] = "auto"
    max_speakers: int = Field(default=3, ge=1, le=6)
    stt_device: Literal["auto", "cpu", "cuda"] = "auto"
    stt_compute_type: str = "int8"
    stt_beam_size: int = Field(default=5, ge=1)
    # 0 = auto: the cores shared by the STT steps that run at once (defs/speech/sizing.py).
    stt_cpu_threads: int = Field(default=0, ge=0)
    stt_concurrency: int = Field(default=0, ge=0)
    # 0 = auto by model and device (engines/base.py auto_batch_size); 1 = never batch.
    stt_batch_size: int = Field(default=0, ge=0)
    stt_batch_beam_size: int = Field(default=1, ge=1)
    stt_batch_min_audio_s: float = Field(default=60.0, ge=0)
    # The Dagster instance's home: its dagster.yaml says how many runs go at once.
    dagster_home: Path | None = Field(default=None, validation_alias=_env("DAGSTER_HOME"))

    # Analysis. An empty analyzer means Gemini when GEMINI_API_KEY is set, else local rules.
    analyzer: str = ""
    prompt_version: str = "v1"
    # The scorecard consultations are scored against: scorecards/<name>/<version>.yaml.
    scorecard: str = "inbound/v1"
    # The call categories matched on every consultation: categories/<version>.yaml.
    categories: str = "v1"
    gemini_api_key: SecretStr | None = Field(default=None, validation_alias=_env("GEMINI_API_KEY"))
    gemini_base_url: str | None = Field(
        default=None, validation_alias=_env("GOOGLE_GEMINI_BASE_URL")
    )
    gemini_model: str = "gemini-2.5-flash"
    gemini_rpm: float = Field(default=60.0, gt=0)
    gemini_max_concurrency: int = Field(default=4, ge=1)
    gemini_timeout_s: float = Field(default=120.0, gt=0)
    gemini_fallback: str = "none"
    # The circuit breaker: opens after this many failed requests in a row, lets probes
    # through after the reset time, closes after this many probes succeed.
    gemini_breaker_failures: int = Field(default=5, ge=1)
    gemini_breaker_reset_s: float = Field(default=60.0, gt=0)
    gemini_breaker_successes: int = Field(default=3, ge=1)
    gemini_prices: str | None = None
    # redis://host:6379/0: the LLM quota and circuit breaker shared by every process.
    redis_url: SecretStr | None = None

    # Where steps run: in the run's own process, or on Celery workers (`make worker`).
    executor: Literal["in_process", "celery"] = "in_process"
    celery_broker_url: SecretStr | None = None

    # The bucket sensor.
    settle_seconds: float = Field(default=10.0, ge=0)
    settle_recheck_s: float = Field(default=1.0, ge=0, le=10)
    # Dagster's sensor daemon looks at sensors every 5 s: an interval of 4 ticks at every look,
    # where 5 skips about every other look (measured: 7.7 s from a drop to its first run).
    sensor_interval_s: int = Field(default=4, ge=1)
    max_runs_per_tick: int = Field(default=200, ge=1)
    # New chats found in one tick run this many per run (one launch serves many); 1 = one each.
    text_batch_size: int = Field(default=25, ge=1, le=200)
    # A burst of new recordings (more than run at once) shares runs, up to this many per run.
    audio_batch_size: int = Field(default=4, ge=1, le=50)
    # Seconds of hashing/recording work per tick, well inside Dagster's 60 s limit.
    sensor_tick_budget_s: float = Field(default=20.0, gt=0)
    # Seconds of listing per tick; a longer listing resumes where it stopped on the next tick.
    sensor_list_budget_s: float = Field(default=30.0, ge=0)

    # Recovery: outages (warehouse, bucket, disk, dead workers) are retried with a fresh run.
    max_attempts: int = Field(default=4, ge=1)
    retry_backoff_s: float = Field(default=60.0, ge=0)
    recovery_interval_s: int = Field(default=30, ge=1)
    step_retries: int = Field(default=2, ge=0)
    step_retry_base_s: float = Field(default=5.0, ge=0)
    stale_after_s: float = Field(default=120.0, gt=0)

    # Alerts: each channel is on when its URL is set (the URLs are secrets: EnvVar).
    alert_slack_webhook_url: SecretStr | None = None
    alert_teams_webhook_url: SecretStr | None = None
    alert_webhook_url: SecretStr | None = None
    alert_webhook_secret: SecretStr | None = None
    alert_interval_s: int = Field(default=60, ge=1)
    # The bucket unreachable this long before it is told; a recovery held this long.
    alert_unreachable_grace_s: float = Field(default=30.0, ge=0)
    alert_recovered_grace_s: float = Field(default=60.0, ge=0)
    # Where the Dagster UI is reached, for links in alerts.
    ui_url: str = "http://localhost:3000"

    # Retention of Dagster partitions (not of data): unset keeps every partition.
    partition_retention_days: float | None = Field(default=None, gt=0)
    retention_interval_s: int = Field(default=60, ge=1)
    retention_batch: int = Field(default=1000, ge=1)

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @property
    def alerts_enabled(self) -> bool:
        return any(
            (self.alert_slack_webhook_url, self.alert_teams_webhook_url, self.alert_webhook_url)
        )

    @property
    def analyzer_name(self) -> str:
        """The analyzer that answers: as configured, else chosen by whether a key is set."""
        return self.analyzer or ("gemini" if self.gemini_api_key else "local-rules")

    @model_validator(mode="before")
    @classmethod
    def _blank_means_default(cls, values: Any) -> Any:
        # As before: a variable that is empty or only spaces counts as unset (`VAR= make dev`).
        if isinstance(values, dict):
            return {k: v for k, v in values.items() if not (isinstance(v, str) and not v.strip())}
        return values

    @field_validator(
        "sensor_interval_s",
        "recovery_interval_s",
        "alert_interval_s",
        "retention_interval_s",
        "retention_batch",
        "max_runs_per_tick",
        "text_batch_size",
        "audio_batch_size",
        "max_attempts",
        "step_retries",
        "max_chat_segments",
        "max_chat_chars",
        "gemini_max_concurrency",
        "gemini_breaker_failures",
        "gemini_breaker_successes",
        "agent_channel",
        "max_speakers",
        "stt_beam_size",
        "stt_cpu_threads",
        "stt_concurrency",
        "stt_batch_size",
        "stt_batch_beam_size",
        mode="before",
    )
    @classmethod
    def _whole_number(cls, value: Any) -> Any:
        # As before: "2.5" or "1e3" are read as numbers and truncated to whole ones.
        if isinstance(value, str):
            try:
                return int(float(value))
            except ValueError:
                return value
        return value

    @field_validator("stt_engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        from cscoach_pipeline.defs.speech.engines import available_engines

        return _one_of(value, available_engines())

    @field_validator("analyzer")
    @classmethod
    def _known_analyzer(cls, value: str) -> str:
        from cscoach_pipeline.defs.analysis.analyzers import available_analyzers

        return _one_of(value, available_analyzers()) if value else value

    @field_validator("gemini_fallback")
    @classmethod
    def _known_fallback(cls, value: str) -> str:
        from cscoach_pipeline.defs.analysis.analyzers import available_analyzers

        return _one_of(value, ["none", *available_analyzers()])

    @field_validator("prompt_version")
    @classmethod
    def _known_prompt(cls, value: str) -> str:
        from cscoach_pipeline.defs.analysis.prompts import available_prompt_versions, load_prompt

        _one_of(value, available_prompt_versions())
        load_prompt(value)  # a broken file is refused here, not per consultation
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}; e.g. UTC, Asia/Seoul") from None
        return value

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, value: str) -> str:
        from cscoach_pipeline.defs.scoring.categories import load_categories

        load_categories(value)  # unknown or broken: refused here, naming the file and key
        return value

    @field_validator("scorecard")
    @classmethod
    def _known_scorecard(cls, value: str) -> str:
        from cscoach_pipeline.defs.scoring.answers import unanswerable_questions
        from cscoach_pipeline.defs.scoring.scorecards import load_scorecard

        scorecard = load_scorecard(value)  # unknown or broken: refused here, naming the file
        missing = unanswerable_questions(scorecard)
        if missing:
            raise ValueError(
                f"scorecard {value}: no rule answers {', '.join(missing)} and N/A is not "
                "allowed (set local_rule or na_allowed)"
            )
        return value

    @field_validator("gemini_prices")
    @classmethod
    def _prices_file_exists(cls, value: str | None) -> str | None:
        if value and not Path(value).expanduser().is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @model_validator(mode="after")
    def _gemini_has_a_key(self) -> Settings:
        if self.executor == "celery" and not self.celery_broker_url:
            raise ValueError("CSCOACH_EXECUTOR=celery needs CSCOACH_CELERY_BROKER_URL")
        if self.analyzer_name == "gemini" and not self.gemini_api_key:
            raise ValueError("CSCOACH_ANALYZER=gemini needs GEMINI_API_KEY (or local-rules)")
        return self


def _one_of(value: str, allowed: list[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of: {', '.join(allowed)}")
    return value


def _variable(settings_field: str) -> str:
    field = Settings.model_fields.get(settings_field)
    alias = field.validation_alias if field else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"CSCOACH_{settings_field.upper()}"


def load_settings(**overrides: Any) -> Settings:
    """The settings from the environment (overrides win, for tests and CLIs); an invalid
    value raises SettingsError naming each variable and what is wrong with it."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            name = _variable(where) if where else "settings"
            # Our own checks quote the value; never echo a secret's.
            quoted = error["type"] == "value_error" or "key" in where
            shown = "" if quoted else f" (got {error.get('input')!r})"
            lines.append(f"{name}: {error['msg'].removeprefix('Value error, ')}{shown}")
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(lines)) from None
