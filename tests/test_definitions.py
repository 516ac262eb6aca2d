"""The real code location: `cscoach_pipeline.definitions:defs` loads every stage's assets,
jobs, sensors and resources from the settings; importing the module reads nothing; the
analyzer's start-up check runs when the code server loads it and not when a run worker
rebuilds it; a bad setting is one error that names the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey
from dagster._core.definitions.definitions_load_context import (
    DefinitionsLoadContext,
    DefinitionsLoadType,
)

from cscoach_pipeline.settings import SettingsError
from tests.support.fake_gemini import FakeGemini

API_KEY = "test-key-definitions"


@pytest.fixture
def embedded_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CSCOACH_BUCKET_URL", (tmp_path / "bucket").as_uri())
    monkeypatch.setenv("CSCOACH_WAREHOUSE_URL", f"sqlite:///{tmp_path / 'w.db'}")
    return tmp_path


def _load(load_type: DefinitionsLoadType):
    from cscoach_pipeline.definitions import defs

    with DefinitionsLoadContext.scoped(DefinitionsLoadContext(load_type=load_type)):
        return defs()


def test_real_definitions_list_every_stage(embedded_env: Path) -> None:
    loaded = _load(DefinitionsLoadType.INITIALIZATION)
    assets = {spec.key.to_user_string() for spec in loaded.resolve_all_asset_specs()}
    assert assets == {
        "consultation_upload",
        "consultation_audio",
        "raw_transcript",
        "transcript",
        "consultation_analysis",
        "quality_metrics",
        "call_categories",
        "qa_reviews",
        "scorecard_calibration",
        "agent_daily_scorecards",
        "team_daily_trends",
        "review_queue",
        "daily_team_reports",
        "weekly_team_reports",
    }
    checks = {
        (key.asset_key.path[-1], key.name)
        for key in loaded.get_repository_def().asset_graph.asset_check_keys
    }
    assert checks == {
        ("consultation_upload", "input_readable"),
        ("consultation_audio", "input_readable"),
        ("raw_transcript", "input_readable"),
        ("transcript", "transcript_confidence"),
        ("transcript", "no_pii_left"),
        ("consultation_analysis", "analysis_valid"),
    }
    jobs = {job.name for job in loaded.jobs or []}
    assert jobs == {
        "process_consultation", "reanalyze_consultations", "requeue_consultations",
        "load_qa_reviews", "refresh_daily_aggregates", "daily_team_reports_job",
        "weekly_team_reports_job",
    }  # fmt: skip
    sensors = {sensor.name for sensor in loaded.sensors or []}
    assert sensors == {
        "consultation_bucket_sensor",
        "recover_stranded_consultations",
        "record_failed_consultation_run",
        "record_cancelled_consultation_run",
        "qa_review_files",
        "daily_aggregates",
        "supervisor_alerts",
    }
    resources = loaded.resources or {}
    assert set(resources) == {
        "bucket", "media", "speech_to_text", "analyzer", "warehouse", "recovery", "reviews",
        "supervision", "alerting",
    }  # fmt: skip
    assert resources["bucket"].url == (embedded_env / "bucket").as_uri()
    assert resources["analyzer"].analyzer == "local-rules"
    # Every job resolves (its assets and resources fit together).
    repository = loaded.get_repository_def()
    for name in jobs:
        assert repository.get_job(name).name == name


def test_settings_reach_definitions_as_resource_fields_and_intervals(
    embedded_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSCOACH_SETTLE_SECONDS", "2.5")
    monkeypatch.setenv("CSCOACH_SENSOR_INTERVAL_S", "7")
    monkeypatch.setenv("CSCOACH_PROMPT_VERSION", "v2")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    loaded = _load(DefinitionsLoadType.INITIALIZATION)
    bucket = loaded.resources["bucket"]
    assert bucket.settle_seconds == 2.5
    assert bucket.s3.endpoint_url == "http://127.0.0.1:9000"
    assert loaded.get_sensor_def("consultation_bucket_sensor").minimum_interval_seconds == 7
    analysis = loaded.get_assets_def("consultation_analysis")
    assert analysis.code_versions_by_key[analysis.keys_by_output_name["consultation_analysis"]] == (
        "prompt-v2+scorecard-inbound/v1+vader+ko-v1"
    )
    assert analysis.code_versions_by_key[AssetKey("call_categories")] == (
        "prompt-v2+categories-v1+vader+ko-v1"
    )


def test_a_bad_setting_is_one_error_naming_each_variable(
    embedded_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CSCOACH_GEMINI_FALLBACK", "sometimes")
    monkeypatch.setenv("CSCOACH_MAX_ATTEMPTS", "zero")
    with pytest.raises(SettingsError) as caught:
        _load(DefinitionsLoadType.INITIALIZATION)
    message = str(caught.value)
    assert (
        "CSCOACH_GEMINI_FALLBACK: 'sometimes' is not one of: none, gemini, local-rules" in message
    )
    assert "CSCOACH_MAX_ATTEMPTS" in message


def test_importing_the_module_reads_no_settings(tmp_path: Path) -> None:
    # An invalid environment only fails when the definitions are loaded, not on import.
    code = (
        "import cscoach_pipeline.definitions as d\n"
        "try:\n    d.defs()\nexcept Exception as e:\n    print(type(e).__name__)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={"CSCOACH_STT_ENGINE": "nope", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "SettingsError"


def test_analyzer_is_checked_at_start_up_only(
    embedded_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with FakeGemini(api_key=API_KEY) as fake:
        monkeypatch.setenv("GEMINI_API_KEY", API_KEY)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        _load(DefinitionsLoadType.RECONSTRUCTION)  # a run worker: no request
        assert fake.requests == []
        loaded = _load(DefinitionsLoadType.INITIALIZATION)  # the code server: one check
        assert [r.method for r in fake.requests] == ["GET"]
        assert loaded.resources["analyzer"].analyzer == "gemini"


def test_the_executor_follows_the_settings(
    embedded_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = _load(DefinitionsLoadType.INITIALIZATION)
    assert loaded.resolve_job_def("process_consultation").executor_def.name == "in_process"
    monkeypatch.setenv("CSCOACH_EXECUTOR", "celery")
    with pytest.raises(SettingsError, match="needs CSCOACH_CELERY_BROKER_URL"):
        _load(DefinitionsLoadType.INITIALIZATION)
    monkeypatch.setenv("CSCOACH_CELERY_BROKER_URL", "redis://127.0.0.1:6379/13")
    loaded = _load(DefinitionsLoadType.INITIALIZATION)
    for job in ("process_consultation", "reanalyze_consultations"):
        assert loaded.resolve_job_def(job).executor_def.name == "celery"
    # Steps are routed to queues by what they need.
    assert loaded.get_assets_def("raw_transcript").op.tags["dagster-celery/queue"] == "stt"
    assert loaded.get_assets_def("quality_metrics").op.tags["dagster-celery/queue"] == "analysis"
