"""The settings object: the embedded offline defaults with nothing set, every variable read
under its documented name (CSCOACH_*, plus AWS_ENDPOINT_URL, SUPABASE_*, GEMINI_API_KEY,
GOOGLE_GEMINI_BASE_URL), empty meaning default, and every bad value reported at once by the
variable's name, without ever echoing a secret."""

from __future__ import annotations

import pytest

from cscoach_pipeline.defs.speech.text_import import DEFAULT_MAX_CHAT_CHARS
from cscoach_pipeline.settings import DEFAULT_DATA_DIR, SettingsError, load_settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "SUPABASE_URL", "SUPABASE_SERVICE_ROLE_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_embedded_offline_setup() -> None:
    settings = load_settings()
    assert settings.bucket_url == (DEFAULT_DATA_DIR / "bucket").as_uri()
    assert settings.warehouse_url == f"sqlite:///{DEFAULT_DATA_DIR / 'warehouse.db'}"
    assert settings.analyzer_name == "local-rules"
    assert settings.stt_engine == "faster-whisper" and settings.whisper_model == ""
    assert settings.max_file_bytes == 2048 * 1024 * 1024
    assert settings.max_chat_chars == DEFAULT_MAX_CHAT_CHARS
    assert (settings.sensor_interval_s, settings.settle_seconds) == (4, 10.0)


def test_variables_are_read_by_their_documented_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSCOACH_MAX_FILE_MB", "1.5")
    monkeypatch.setenv("CSCOACH_SENSOR_TICK_BUDGET_S", "12")
    monkeypatch.setenv("CSCOACH_S3_ADDRESSING_STYLE", "virtual")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("SUPABASE_URL", "http://127.0.0.1:54321")
    monkeypatch.setenv("GEMINI_API_KEY", "k-123")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "http://127.0.0.1:8080")
    monkeypatch.setenv("CSCOACH_WHISPER_LANGUAGE", "")  # empty: the default
    settings = load_settings()
    assert settings.max_file_bytes == int(1.5 * 1024 * 1024)
    assert settings.sensor_tick_budget_s == 12
    assert settings.s3_addressing_style == "virtual"
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"
    assert settings.supabase_url == "http://127.0.0.1:54321"
    assert settings.gemini_base_url == "http://127.0.0.1:8080"
    assert settings.analyzer_name == "gemini"  # chosen by the key, as before
    assert settings.whisper_language == ""
    assert "k-123" not in repr(settings)


def test_every_bad_value_is_listed_by_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSCOACH_GEMINI_FALLBACK", "maybe")
    monkeypatch.setenv("CSCOACH_STT_ENGINE", "whisper-cpp")
    monkeypatch.setenv("CSCOACH_PROMPT_VERSION", "v9")
    monkeypatch.setenv("CSCOACH_AGENT_CHANNEL", "2")
    monkeypatch.setenv("CSCOACH_GEMINI_RPM", "fast")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    lines = str(caught.value).splitlines()[1:]
    assert len(lines) == 5
    assert any(line.strip().startswith("CSCOACH_GEMINI_FALLBACK: 'maybe'") for line in lines)
    assert any("CSCOACH_STT_ENGINE" in line and "faster-whisper" in line for line in lines)
    assert any("CSCOACH_PROMPT_VERSION" in line and "v1, v2" in line for line in lines)
    assert any(line.strip().startswith("CSCOACH_AGENT_CHANNEL:") for line in lines)
    assert any("CSCOACH_GEMINI_RPM" in line and "'fast'" in line for line in lines)


def test_gemini_without_a_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSCOACH_ANALYZER", "gemini")
    with pytest.raises(SettingsError, match="CSCOACH_ANALYZER=gemini needs GEMINI_API_KEY"):
        load_settings()
    monkeypatch.setenv("CSCOACH_ANALYZER", "local-rules")
    monkeypatch.setenv("GEMINI_API_KEY", "k-123")
    assert load_settings().analyzer_name == "local-rules"  # configured beats the key


def test_a_secret_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSCOACH_ANALYZER", "nope")
    monkeypatch.setenv("GEMINI_API_KEY", "super-secret-value")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "super-secret-value" not in str(caught.value)


def test_a_missing_prices_file_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSCOACH_GEMINI_PRICES", "/nonexistent/prices.yaml")
    with pytest.raises(SettingsError, match="CSCOACH_GEMINI_PRICES: no such file"):
        load_settings()


def test_values_are_trimmed_blank_means_default_and_numbers_are_lenient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CSCOACH_PROMPT_VERSION", " v2 ")
    monkeypatch.setenv("CSCOACH_WHISPER_LANGUAGE", " ko ")
    monkeypatch.setenv("CSCOACH_BUCKET_URL", "   ")
    monkeypatch.setenv("CSCOACH_SENSOR_INTERVAL_S", "2.5")
    monkeypatch.setenv("CSCOACH_MAX_CHAT_SEGMENTS", "1e3")
    settings = load_settings()
    assert (settings.prompt_version, settings.whisper_language) == ("v2", "ko")
    assert settings.bucket_url == (DEFAULT_DATA_DIR / "bucket").as_uri()
    assert (settings.sensor_interval_s, settings.max_chat_segments) == (2, 1000)


def test_s3_addressing_style_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSCOACH_S3_ADDRESSING_STYLE", "sideways")
    with pytest.raises(SettingsError, match="CSCOACH_S3_ADDRESSING_STYLE"):
        load_settings()


def test_an_unknown_categories_version_is_refused_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CSCOACH_CATEGORIES", "v9")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "CSCOACH_CATEGORIES" in str(caught.value)
    assert "unknown categories version 'v9'" in str(caught.value)
    monkeypatch.setenv("CSCOACH_CATEGORIES", "v1")
    assert load_settings().categories == "v1"
